/**
 * No silent divergence, end to end over every transport: changes lost between regions (a message
 * expired by the broker's retention, an entry deleted from a stream, a sealed batch deleted) are found
 * by their sequence numbers and flag the origin for resync with the range missed; a change lost at the
 * tail, before the origin went quiet, is found through its heartbeat; a replayed batch, even sealed and
 * older than the stale-event horizon, is dropped as a duplicate and raises nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { GeoSessionStore } from '../../src/index.js';
import { RELAY_GROUP } from '../../src/replication/relay.js';
import { groupsOf } from '../../src/streams/group-info.js';
import { decodeFrames } from '../../src/wire/broker-frame.js';
import { compareIds } from '../../src/wire/stream-entry.js';
import {
  createDeployment,
  type Deployment,
  TRANSPORT_KINDS,
  transportAvailable,
} from '../helpers/deployment.js';
import { generatePasetoKey, localSealer, session } from '../helpers/forgery.js';
import { eventually } from '../helpers/servers.js';

const WAIT = 20_000;
const FAST = { gapGraceMs: 300, heartbeatMs: 200 };

function gapOf(store: GeoSessionStore, origin: string) {
  return store.replicationStats()?.needsResync[origin];
}

for (const kind of TRANSPORT_KINDS) {
  const available = await transportAvailable(kind);

  describe.skipIf(!available)(`sequence numbers over ${kind}`, () => {
    let d: Deployment | undefined;
    afterEach(async () => {
      await d?.close();
      d = undefined;
    });

    for (const sealed of [false, true]) {
      it(`changes lost while a region was away are a gap with their range (${sealed ? 'sealed' : 'unsealed'})`, async () => {
        const sealer = sealed ? localSealer([generatePasetoKey().key]) : undefined;
        d = await createDeployment(kind, ['hk', 'kr'], {
          store: FAST,
          // The broker's retention drops what waits longer than this.
          transport: { amqp: { messageTtlMs: 400 }, nats: { maxAgeMs: 1000 } },
        });
        const hk = await d.start('hk', { sealer });
        let kr = await d.start('kr', { sealer });
        const first = `s${Date.now()}a`;
        await hk.set(first, session({ user: 'first' }));
        await eventually(async () => (await kr.get(first)) !== null, WAIT);
        await d.stop('kr');

        // While kr is away: a login, its logout and another login (numbers 2, 3 and 4 of hk).
        const gone = `s${Date.now()}b`;
        const other = `s${Date.now()}c`;
        const mark = kind === 'redis-streams' ? await lastEntryId(d, sealed) : '0-0';
        await hk.set(gone, session({ user: 'gone' }));
        await hk.destroy(gone);
        await hk.set(other, session({ user: 'other' }));

        let expected: { from: number; to: number };
        if (kind === 'redis-streams' && !sealed) {
          // Someone with write access to hk's Redis deletes the logout from the outbox kr reads.
          const outbox = d.keys.internal('outbox', 'hk');
          await eventually(async () => (await d?.clients.hk?.xlen(outbox)) !== undefined, WAIT);
          const entries = await (d.clients.hk as NonNullable<Deployment['clients']['hk']>).xrange(
            outbox,
            mark,
            '+',
          );
          const logout = entries.find(([, f]) => f[0] === 'q' && (f[1] ?? '').split('|')[1] === 'd');
          expect(logout).toBeDefined();
          await d.clients.hk?.xdel(outbox, logout?.[0] as string);
          expected = { from: 3, to: 3 };
        } else if (kind === 'redis-streams') {
          // Sealed: the relay's batches since kr left are deleted from the stream kr reads, once the
          // relay has published the three changes (heartbeats keep coming after them).
          const relay = d.keys.internal('relay', 'hk');
          const client = d.clients.hk as NonNullable<Deployment['clients']['hk']>;
          const outbox = d.keys.internal('outbox', 'hk');
          const last = (await client.xrevrange(outbox, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
          await eventually(async () => {
            const group = (await groupsOf(client, outbox)).find((g) => g.name === RELAY_GROUP);
            return group !== undefined && group.pending === 0 && compareIds(group.lastDeliveredId, last) >= 0;
          }, WAIT);
          for (const [id, fields] of await client.xrange(relay, `(${mark}`, '+')) {
            if ((fields[1] ?? '').startsWith('sealed ')) await client.xdel(relay, id);
          }
          expected = { from: 2, to: 4 };
        } else {
          // The broker's retention expires what kr did not take while it was away.
          await new Promise((r) => setTimeout(r, kind === 'nats' ? 2500 : 1200));
          expected = { from: 2, to: 4 };
        }

        kr = await d.start('kr', { sealer });
        // Flagged with the range missed. With Redis Streams the stream reader may notice the deleted
        // entries first (cause `trimmed`); the numbers then add the range.
        await eventually(() => gapOf(kr, 'hk')?.missed !== undefined, WAIT);
        const need = gapOf(kr, 'hk');
        expect(need?.cause).toMatch(kind === 'redis-streams' ? /^(gap|trimmed)$/ : /^gap$/);
        if (need?.cause === 'gap') expect(need.reason).toMatch(/^gap: /);
        expect(need?.missed).toMatchObject(expected);
        expect(kr.replicationStats()?.sequences.hk?.gaps).toContainEqual(expected);
        // Nothing made it look like a duplicate, and hk itself is fine.
        expect(kr.replicationStats()?.sequences.hk?.duplicates).toBe(0);
        expect(hk.replicationStats()?.needsResync).toEqual({});
      });
    }

    it('a replayed sealed batch older than the horizon is dropped as a duplicate and flags nothing', async () => {
      const sealer = localSealer([generatePasetoKey().key]);
      d = await createDeployment(kind, ['hk', 'kr'], {
        store: { ...FAST, heartbeatMs: 0, tombstoneTtl: 1 },
        transport: { 'redis-streams': { trimIntervalMs: 600_000 } },
      });
      const hk = await d.start('hk', { sealer });
      const kr = await d.start('kr', { sealer });
      const sid = `s${Date.now()}r`;
      await hk.set(sid, session({ user: 'replayed' }));
      await eventually(async () => (await kr.get(sid)) !== null, WAIT);
      const captured = await capturedSealed(d);
      expect(captured.length).toBeGreaterThan(0);

      // Two horizons later, someone with access to the broker replays what they captured.
      await new Promise((r) => setTimeout(r, 2200));
      await d.inject(captured);
      await eventually(() => (kr.replicationStats()?.sequences.hk?.duplicates ?? 0) >= 1, WAIT);
      await new Promise((r) => setTimeout(r, 500));
      expect(kr.replicationStats()?.needsResync).toEqual({});
      expect(kr.replicationStats()?.received.stale).toBe(0);
      expect(d.rejected.kr).toEqual([]);
    });
  });
}

/** The newest entry id of what kr reads from hk (the outbox, or the relay stream when sealed). */
async function lastEntryId(d: Deployment, sealed: boolean): Promise<string> {
  const key = d.keys.internal(sealed ? 'relay' : 'outbox', 'hk');
  const newest = await d.clients.hk?.xrevrange(key, '+', '-', 'COUNT', 1);
  return newest?.[0]?.[0] ?? '0-0';
}

/** The sealed envelopes that travelled so far, as they travelled. */
async function capturedSealed(d: Deployment): Promise<Envelope[]> {
  const out: Envelope[] = [];
  if (d.kind === 'redis-streams') {
    const entries = await d.clients.hk?.xrange(d.keys.internal('relay', 'hk'), '-', '+');
    for (const [, fields] of entries ?? []) {
      const value = fields[1] ?? '';
      const eol = value.indexOf('\n');
      const [kind = '', time = '', id = ''] = value.slice(0, eol).split(' ');
      if (kind === 'sealed')
        out.push({ id, origin: 'hk', kind, time: Number(time), body: value.slice(eol + 1) });
    }
    return out;
  }
  for (const text of await d.inTransit()) {
    const frames = decodeFrames(text);
    if (Array.isArray(frames)) out.push(...frames.filter((e) => e.kind === 'sealed' && e.origin === 'hk'));
  }
  return out;
}
