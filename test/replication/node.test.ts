/**
 * The generic replication node (src/replication/node.ts) with a test kind, `ping`, between two regions
 * over Redis Streams, AMQP and NATS, sealed and unsealed, on a channel of its own:
 * - envelopes appended with `append`, and by a module's own Lua script through `appendKeys` and
 *   `append_envelope` atomically with its own write, arrive in the other region in order;
 * - a replayed envelope (and, sealed, a replayed sealed batch) is dropped as a duplicate and counted;
 * - forged envelopes are refused and counted: unsealed, one the kind cannot decode; sealed, an unsealed
 *   one, one sealed with a key the deployment does not hold, and a batch sealed for another channel;
 * - numbers that never arrive are a gap: the origin is flagged for resync with the range missed.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { Sealer } from '../../src/contracts/sealer.js';
import { EventError, type GeoSessionError } from '../../src/errors.js';
import { ReplicationNode } from '../../src/replication/node.js';
import { sequenceKey } from '../../src/wire/internal-keys.js';
import {
  createDeployment,
  type Deployment,
  TRANSPORT_KINDS,
  transportAvailable,
} from '../helpers/deployment.js';
import { generatePasetoKey, localSealer, sealed } from '../helpers/forgery.js';
import { eventually } from '../helpers/servers.js';

const WAIT = 20_000;
const CHANNEL = 'nodetest:';
const REGIONS = ['hk', 'kr'] as const;

/** The test kind's body: `{"n": <number>}`. */
function decodePing(envelope: Envelope): number {
  const value = JSON.parse(envelope.body) as { n?: unknown };
  if (typeof value?.n !== 'number') throw new EventError(`ping ${envelope.id} has no n`);
  return value.n;
}

/** A module's own script: writes KEYS[3] and appends a `ping` in the same atomic call. */
const OWN_SCRIPT = `${readFileSync(new URL('../../src/redis/scripts/includes/common.lua', import.meta.url), 'utf8')}
redis.call('SET', KEYS[3], ARGV[2])
return append_envelope(KEYS[1], KEYS[2], ARGV[1], 'ping', ARGV[2])
`;

for (const kind of TRANSPORT_KINDS) {
  const available = await transportAvailable(kind);

  for (const sealedMode of [false, true]) {
    const mode = sealedMode ? 'sealed' : 'unsealed';
    describe.skipIf(!available)(`a replication node over ${kind} (${mode})`, () => {
      let d: Deployment;
      const sealer: Sealer | undefined = sealedMode ? localSealer([generatePasetoKey().key]) : undefined;
      const nodes: Record<string, ReplicationNode> = {};
      const received: Record<string, number[]> = { hk: [], kr: [] };
      const errors: Record<string, GeoSessionError[]> = { hk: [], kr: [] };
      const node = (r: string) => nodes[r] as ReplicationNode;
      const client = (r: string) => d.clients[r] as Redis;
      /** Where forged envelopes are written: what the receivers read of hk. */
      const stream = sealedMode ? 'relay' : 'outbox';

      beforeAll(async () => {
        d = await createDeployment(kind, REGIONS, { prefix: CHANNEL });
        for (const region of REGIONS) {
          const n = new ReplicationNode({
            region,
            channel: CHANNEL,
            client: client(region),
            transport: d.transport(region),
            sealer,
            gapGraceMs: 300,
            heartbeatMs: 200,
            onError: (error) => errors[region]?.push(error),
          });
          n.register<number>('ping', {
            decode: decodePing,
            apply: async (items) => {
              received[region]?.push(...items);
            },
          });
          nodes[region] = n;
        }
        await Promise.all(REGIONS.map((r) => node(r).start()));
      });
      afterAll(async () => {
        for (const region of REGIONS) await nodes[region]?.close();
        await d?.close();
      });

      it('envelopes appended in one region arrive in the other in order, also from a module’s own script', async () => {
        const ids = await node('hk').append(
          'ping',
          [1, 2, 3].map((n) => JSON.stringify({ n })),
        );
        expect(ids).toHaveLength(3);
        for (const id of ids) expect(id).toMatch(/^hk:\d{16}\.\d+$/);
        const { outbox, counter } = node('hk').appendKeys();
        expect(counter).toBe(sequenceKey(outbox));
        const own = await client('hk').eval(OWN_SCRIPT, 3, outbox, counter, 'nodetest-data', 'hk', '{"n":4}');
        expect(own).toMatch(/^hk:\d{16}\.4$/);
        expect(await client('hk').get('nodetest-data')).toBe('{"n":4}');
        await node('hk').append('ping', [JSON.stringify({ n: 5 })]);

        await eventually(() => received.kr?.length === 5, WAIT);
        expect(received.kr).toEqual([1, 2, 3, 4, 5]);
        expect(received.hk).toEqual([]);
        const stats = node('kr').stats();
        expect(stats.appliedByKind.ping).toBe(5);
        expect(stats.lagMs.hk).toBeGreaterThanOrEqual(0);
        expect(Math.abs(node('kr').now() - Date.now())).toBeLessThan(60_000);
        await eventually(() => (node('kr').stats().sequences.hk?.low ?? 0) >= 5, WAIT);
        expect(node('kr').stats().needsResync).toEqual({});
        // Counted when the broker confirms, which may come after the other region already has them.
        if (sealedMode || kind !== 'redis-streams')
          await eventually(() => node('hk').stats().published >= 5, WAIT);
      });

      it('a replayed envelope is dropped as a duplicate and counted', async () => {
        const [id] = await node('hk').append('ping', [JSON.stringify({ n: 6 })]);
        // Once kr recorded its number (a copy arriving before that is applied again: at least once).
        const n = Number((id as string).split('.').pop());
        await eventually(() => (node('kr').stats().sequences.hk?.low ?? 0) >= n, WAIT);
        expect(received.kr?.filter((x) => x === 6)).toEqual([6]);
        const before = node('kr').stats().sequences.hk?.duplicates ?? 0;
        const replay: Envelope = {
          id: id as string,
          origin: 'hk',
          kind: 'ping',
          time: Date.now(),
          body: '{"n":6}',
        };
        await d.inject([sealer ? await sealed(sealer, [replay], 'hk', CHANNEL) : replay], stream);
        await eventually(() => (node('kr').stats().sequences.hk?.duplicates ?? 0) > before, WAIT);
        expect(received.kr?.filter((x) => x === 6)).toEqual([6]);
      });

      it('forged envelopes are refused and counted', async () => {
        const forged = (n: number, body: string): Envelope => ({
          id: `hk:forged-${Date.now()}-${n}`,
          origin: 'hk',
          kind: 'ping',
          time: Date.now(),
          body,
        });
        if (!sealer) {
          await d.inject([forged(1, 'not json')], stream);
          await eventually(() => (node('kr').stats().rejected.malformed ?? 0) >= 1, WAIT);
        } else {
          const stranger = localSealer([generatePasetoKey().key]);
          await d.inject([forged(1, '{"n":-1}')], stream);
          await d.inject([await sealed(stranger, [forged(2, '{"n":-2}')], 'hk', CHANNEL)], stream);
          // A batch the deployment's own key sealed for another channel (the session store's).
          await d.inject([await sealed(sealer, [forged(3, '{"n":-3}')], 'hk', 'sess:')], stream);
          await eventually(() => {
            const r = node('kr').stats().rejected;
            return (
              (r.unsealed ?? 0) >= 1 &&
              (r['unknown-key'] ?? 0) + (r.tampered ?? 0) >= 1 &&
              (r['wrong-channel'] ?? 0) >= 1
            );
          }, WAIT);
        }
        // Each refusal is kept in the dead-letter stream (written in the background).
        await eventually(async () => (await node('kr').deadLettersLatest(10)).length > 0, WAIT);
        expect(received.kr?.some((n) => n < 0)).toBe(false);
      });

      it('numbers that never arrive are a gap: the origin is flagged with the range missed', async () => {
        // Three numbers given and lost (as a broker's retention or a too-large envelope loses them).
        const { counter } = node('hk').appendKeys();
        const last = Number(await client('hk').hincrby(counter, 'n', 3));
        await node('hk').append('ping', [JSON.stringify({ n: 7 })]);
        await eventually(() => node('kr').stats().needsResync.hk?.cause === 'gap', WAIT);
        const need = node('kr').stats().needsResync.hk;
        expect(need?.missed).toMatchObject({ from: last - 2, to: last });
        expect(received.kr).toContain(7);
        expect(errors.kr?.some((e) => e.code === 'ERR_GEOSESSION_RESYNC_NEEDED')).toBe(true);
      });

      it('nothing is lost while a region is away: it receives everything in order when it comes back', async () => {
        await node('kr').close();
        const bodies = Array.from({ length: 20 }, (_, i) => JSON.stringify({ n: 100 + i }));
        for (let i = 0; i < bodies.length; i += 5) await node('hk').append('ping', bodies.slice(i, i + 5));
        const back = new ReplicationNode({
          region: 'kr',
          channel: CHANNEL,
          client: client('kr'),
          transport: d.transport('kr'),
          sealer,
          gapGraceMs: 300,
          heartbeatMs: 200,
          onError: (error) => errors.kr?.push(error),
        });
        const after: number[] = [];
        back.register<number>('ping', {
          decode: decodePing,
          apply: async (items) => {
            after.push(...items);
          },
        });
        nodes.kr = back;
        await back.start();
        await eventually(() => after.length >= 20, WAIT);
        const sent = Array.from({ length: 20 }, (_, i) => 100 + i);
        expect([...new Set(after)].sort((a, b) => a - b)).toEqual(sent);
        // In order, unless a batch met a transient failure: a broker delivers it again after newer ones
        // (docs/replication.md, "Delivery"). Then it came again in full, nothing else twice.
        if (back.stats().transient.count === 0) expect(after).toEqual(sent);
        else expect(after.length).toBeLessThanOrEqual(20 + 10 * back.stats().transient.count);
        expect(back.stats().sequences.hk?.gaps ?? []).toHaveLength(1); // only the gap made on purpose above
      });

      it('refuses reserved, malformed and late kinds', async () => {
        expect(() => node('hk').register('heartbeat', { decode: () => 0, apply: async () => {} })).toThrow(
          /reserved/,
        );
        expect(() => node('hk').register('Bad Kind', { decode: () => 0, apply: async () => {} })).toThrow(
          /a-z/,
        );
        expect(() => node('hk').register('late', { decode: () => 0, apply: async () => {} })).toThrow(
          /after start/,
        );
        await expect(node('hk').append('sealed', ['x'])).rejects.toThrow(/kind/);
      });
    });
  }
}
