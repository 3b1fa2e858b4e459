/**
 * Changes an origin made before its Redis lost its data, handled after its new epoch is known here
 * (they were on their way, a broker delivering them late): the origin may not hold them, and this region
 * says so (`onLateEpoch`, which the node records as a `late` resync need). Heartbeats of the old epoch
 * say nothing. Real Redis (track.lua), the tracker as the pipeline drives it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import { createKeySpace } from '../../src/keys.js';
import { SequenceTracker } from '../../src/replication/sequence.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const client = sharedRedis({ lazyConnect: true });
const prefix = uniquePrefix('late-epoch');
afterAll(async () => {
  if (hasRedis) await dropKeys(client, prefix);
  if (hasRedis) await dropKeys(client, `{${prefix}`);
  client.disconnect();
});

const OLD = '1796597483616378';
const NEW = '1796597999000000';
const change = (epoch: string, n: number): Envelope => ({
  id: `hk:${epoch}.${n}`,
  origin: 'hk',
  kind: 'session',
  time: Date.now(),
  body: '{}',
});

describe.skipIf(!hasRedis)('changes of an earlier epoch of an origin', () => {
  it('handled after its new epoch are reported once per batch, heartbeats of that epoch are not', async () => {
    const late: string[] = [];
    const tracker = new SequenceTracker({
      client,
      keys: createKeySpace(prefix),
      region: 'kr',
      graceMs: 60_000,
      timeoutMs: 2000,
      onGap: () => {},
      onHealed: () => {},
      onLateEpoch: (origin, stream) => late.push(`${origin} ${stream}`),
    });
    const record = async (...envelopes: Envelope[]) => {
      const tally = tracker.tally();
      for (const envelope of envelopes) tracker.add(tally, envelope);
      await tracker.record(tally);
    };
    await record(change(OLD, 1), change(OLD, 2));
    expect(late).toEqual([]);
    // The origin restarted empty: its numbers start over under a new epoch.
    await record(change(NEW, 1));
    expect(late).toEqual([]);
    // Its third change of before arrives now.
    await record(change(OLD, 3));
    expect(late).toEqual(['hk hk']);
    // A heartbeat of the old epoch carries no change.
    await record({ ...change(OLD, 3), id: `hk:${OLD}.3.h${Date.now()}`, kind: 'heartbeat' });
    expect(late).toEqual(['hk hk']);
    expect(tracker.snapshot().hk?.epoch).toBe(NEW);
  });
});
