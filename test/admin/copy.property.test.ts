/**
 * The copy primitive races replication (property-based, fast-check, a private redis-server): a copy of
 * another region's current state, merged at any moment between any batches of replicated changes,
 * leaves a region exactly where the changes alone lead it.
 *
 * Three regions (databases 0..2, each a GeoSessionStore with a transport that never delivers) make
 * random sets, touches and logouts, and some of each other's changes are applied to them, so each
 * holds a partial join. Observer A (database 3) gets every change, shuffled, in random batches. Observer
 * B (database 4) gets them too, in another order, with copies (copySessionStates) of random regions'
 * and of A's states interleaved at random points. B must end byte-identical to A: value, every
 * metadata field, and when each key expires. That is what lets a resync run under live traffic.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySessionStates } from '../../src/admin/session-state.js';
import type { ReplicationTransport, Subscription } from '../../src/contracts/transport.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { Applier } from '../../src/replication/applier.js';
import type { ChangeEvent } from '../../src/replication/events.js';
import { TransportEvents } from '../../src/transports/transport-state.js';
import { changeOfEntry } from '../helpers/meta.js';
import { hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

/** A transport that never delivers: changes are read from the outboxes and applied by hand. */
class ManualTransport extends TransportEvents implements ReplicationTransport {
  readonly name = 'manual';
  readonly readsOutbox = true;
  constructor() {
    super();
    this.setState('ready');
  }
  async publish(): Promise<void> {
    throw new Error('the manual transport publishes nothing');
  }
  async subscribe(): Promise<Subscription> {
    return { close: async () => {} };
  }
  async close(): Promise<void> {
    this.setState('closed');
  }
}

const REGIONS = ['hk', 'kr', 'us'] as const;
const MAX_AGE = 3_600_000;
const prefix = 'cp:';
const keys = createKeySpace(prefix);

type Cmd =
  | { kind: 'set'; region: number; sid: number; user: string; lifeMs: number }
  | { kind: 'touch'; region: number; sid: number; lifeMs: number }
  | { kind: 'destroy'; region: number; sid: number }
  | { kind: 'deliver'; region: number; picks: number[] };

const target = { region: fc.nat(2), sid: fc.nat(2) };
const life = fc.integer({ min: 5 * 60_000, max: MAX_AGE });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      ...target,
      user: fc.constantFrom('a', 'b'),
      lifeMs: life,
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('touch' as const), ...target, lifeMs: life }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const), ...target }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('deliver' as const),
      region: fc.nat(2),
      picks: fc.array(fc.nat(), { maxLength: 5 }),
    }),
  },
);

function shuffle<T>(g: fc.GeneratorValue, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = g(fc.nat, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe.skipIf(!hasRedis)('a copy racing replication (property-based)', () => {
  let server: PrivateRedis;
  let clients: Redis[] = [];
  let stores: GeoSessionStore[] = [];
  beforeAll(async () => {
    server = await startRedis();
    clients = [0, 1, 2, 3, 4].map((db) => server.client({ db }));
    stores = REGIONS.map(
      (region, i) =>
        new GeoSessionStore({
          region,
          client: clients[i] as Redis,
          prefix,
          tombstoneTtl: 600,
          replicateTouchAfter: 0,
          transport: new ManualTransport(),
          sealer: 'none',
        }),
    );
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await server?.stop();
  });

  const applier = (client: Redis) =>
    new Applier({ client, keys, horizonMs: 600_000, maxSkewMs: 60_000, timeoutMs: 5000 });

  async function state(client: Redis, sid: string) {
    const [value, meta, valueAt, metaAt] = await Promise.all([
      client.get(keys.session(sid)),
      client.get(keys.meta(sid)),
      client.pexpiretime(keys.session(sid)),
      client.pexpiretime(keys.meta(sid)),
    ]);
    return { value, meta, valueAt, metaAt };
  }

  it('leaves a region where the changes alone lead it, copies merged at any moment', async () => {
    let run = 0;
    const cursors = REGIONS.map(() => '0-0');
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 4, maxLength: 30 }), fc.gen(), async (cmds, g) => {
        run++;
        const sids = [0, 1, 2].map((i) => `r${run}-s${i}`);
        const all: ChangeEvent[] = [];
        const pending: ChangeEvent[][] = REGIONS.map(() => []);
        for (const cmd of cmds) {
          const r = cmd.region;
          const client = clients[r] as Redis;
          if (cmd.kind === 'deliver') {
            const queue = pending[r] as ChangeEvent[];
            const batch = cmd.picks.flatMap((p) =>
              queue.length > 0 ? queue.splice(p % queue.length, 1) : [],
            );
            if (batch.length > 0) await applier(client).apply(batch);
            continue;
          }
          const store = stores[r] as GeoSessionStore;
          const sid = sids[cmd.sid] as string;
          const expires = new Date(Date.now() + (cmd.kind === 'destroy' ? 0 : cmd.lifeMs)).toISOString();
          const session = { cookie: { originalMaxAge: MAX_AGE, expires } } as SessionData;
          if (cmd.kind === 'set') await store.set(sid, { ...session, user: cmd.user } as SessionData);
          else if (cmd.kind === 'touch') await store.touch(sid, session);
          else await store.destroy(sid);
          const origin = REGIONS[r] as string;
          const outbox = keys.internal('outbox', origin);
          const entries = await client.xrange(outbox, `(${cursors[r]}`, '+');
          const last = entries.at(-1);
          if (last) cursors[r] = last[0];
          const made = entries.map(([id, fields]) => changeOfEntry(origin, id, fields));
          all.push(...made);
          for (const o of [0, 1, 2]) if (o !== r) pending[o]?.push(...made);
        }

        const a = clients[3] as Redis;
        const b = clients[4] as Redis;
        for (const e of shuffle(g, all)) await applier(a).apply([e]);
        // B: the changes in another order, in batches, with copies of regions' (partial) and A's (whole)
        // states merged in between, each copy also of a random subset of the ids.
        const order = shuffle(g, all);
        for (let i = 0; i <= order.length; ) {
          if (g(fc.boolean)) {
            const from = clients[g(fc.nat, 3)] as Redis;
            const some = sids.filter(() => g(fc.boolean));
            const counts = await copySessionStates(from, b, some, { prefix });
            expect(counts.malformed + counts.skewed).toBe(0);
          }
          const size = g(fc.integer, { min: 1, max: 4 });
          const batch = order.slice(i, i + size);
          if (batch.length > 0) await applier(b).apply(batch);
          i += size;
        }
        for (const sid of sids) expect(await state(b, sid), sid).toEqual(await state(a, sid));
        // And a copy of the whole state into an observer that got nothing is that state.
        for (const sid of sids) {
          await copySessionStates(a, b, [sid], { prefix });
          expect(await state(b, sid), sid).toEqual(await state(a, sid));
        }
      }),
      { numRuns: 60 },
    );
  }, 180_000);
});
