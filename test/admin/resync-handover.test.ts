/**
 * The handover's clearing of gap needs (src/admin/resync-handover.ts) with sharded outboxes: a gap
 * need names the shard's stream it was found in (`missed.stream`, `hk#3`), and is cleared only when the
 * copy's point for that stream covers the range; a need from an older version (no stream) only when
 * every stream of that origin in its epoch covers it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type CoverPoint, clearSettledNeeds } from '../../src/admin/resync-handover.js';
import { createKeySpace } from '../../src/keys.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const EPOCH = '1796599931165182';

describe.skipIf(!hasRedis)('clearSettledNeeds with outbox shards', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('handover');
  const keys = createKeySpace(prefix);
  afterAll(async () => {
    await dropKeys(client, prefix);
    await client.del(keys.internal('state', 'kr'), keys.internal('state', 'hk'));
    client.disconnect();
  });

  /** kr's need for hk: a gap found after the resync started (so only a covering copy clears it). */
  async function clearWith(missed: Record<string, unknown>, points: CoverPoint[]): Promise<string[]> {
    const startedAt = Date.now();
    const need = { reason: 'gap', cause: 'gap', since: startedAt + 1000, missed };
    await client.hset(keys.internal('state', 'kr'), 'resync:hk', JSON.stringify(need));
    return clearSettledNeeds(client, client, keys, { from: 'hk', to: 'kr', startedAt, points });
  }
  const point = (origin: string, low: number): CoverPoint => ({ origin, epoch: EPOCH, low, gaps: [] });

  it("clears a shard's gap when the copy covers that shard's range, not another shard's", async () => {
    const missed = { epoch: EPOCH, from: 5, to: 9, stream: 'hk#3' };
    expect(await clearWith(missed, [point('hk#2', 20), point('hk#3', 7)])).toEqual([]);
    expect(await clearWith(missed, [point('hk#2', 3), point('hk#3', 9)])).toEqual(['hk']);
    // The copied region's own gap in that range stays a gap.
    expect(await clearWith(missed, [{ ...point('hk#3', 20), gaps: [{ from: 8, to: 8 }] }])).toEqual([]);
  });

  it('a need without a stream is cleared only when every stream of the origin in its epoch covers it', async () => {
    const missed = { epoch: EPOCH, from: 5, to: 9 };
    expect(await clearWith(missed, [point('hk', 20), point('hk#3', 7)])).toEqual([]);
    expect(await clearWith(missed, [point('hk', 20), point('hk#3', 10)])).toEqual(['hk']);
    expect(await clearWith(missed, [point('jp#1', 20)])).toEqual([]);
  });
});
