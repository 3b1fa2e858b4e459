/**
 * Property-based tests (fast-check) of the conflict rules of DESIGN.md section 3, on real Redis.
 *
 * Model: 2 or 3 regions, each a GeoSessionStore on its own database of the machine's Redis (db 1..3,
 * same unique prefix, so no region ever sees another's keys). The stores get a {@link ManualTransport}:
 * it declares `readsOutbox: true`, so the store runs no relay, and its `subscribe` never delivers
 * anything, so the stores' own replication stays idle. The write scripts still append every change
 * to the region's outbox stream; the test reads those entries itself (XRANGE + eventFromOutbox) and
 * hands them to the other regions through the real Applier (apply.lua) — in an order, with duplicates
 * and batch boundaries that fast-check chooses, interleaved with further local writes.
 *
 * Two extra "observer" keyspaces (region 'zz', applying only) receive every event in two independent
 * random orders: their states must be byte-identical to each other and to every region's.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { ReplicationTransport, Subscription } from '../../src/contracts/transport.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { Applier } from '../../src/replication/applier.js';
import type { ChangeEvent, SetEvent } from '../../src/replication/events.js';
import { TransportEvents } from '../../src/transports/transport-state.js';
import { changeOfEntry, metaField, readMeta, type SessionState, sessionState } from '../helpers/meta.js';
import { hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

/** A transport that never delivers: replication is driven by hand from the outboxes (see above). */
class ManualTransport extends TransportEvents implements ReplicationTransport {
  readonly name = 'manual';
  /** True so that the store runs no relay; nothing reads the outbox but this test. */
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
const MIN_LIFE = 5 * 60_000; // far enough ahead that nothing expires during a run

type Cmd =
  | { kind: 'set'; region: number; sid: number; payload: { user: string; n: number } | null; lifeMs: number }
  | { kind: 'touch'; region: number; sid: number; lifeMs: number }
  | { kind: 'destroy'; region: number; sid: number }
  | { kind: 'deliver'; region: number; picks: number[]; dupes: number[] };

// Half within the cookie's maxAge (its rule stays maxAge, so later touches and rolling saves are touches
// of the same version), half beyond it (a longer rule: touches then become writes).
const lifeArb = fc.oneof(
  fc.integer({ min: MIN_LIFE, max: MAX_AGE }),
  fc.integer({ min: MIN_LIFE, max: 7 * 86_400_000 }),
);
/**
 * A touch's cookie expires within its maxAge, as express-session and fastify always make it: a touch
 * that reaches past the session's lifetime rule is refused by the other regions (tested in
 * applier.test.ts), and a longer maxAge reaches them through a write.
 */
const touchLifeArb = fc.integer({ min: MIN_LIFE, max: MAX_AGE });
const target = { region: fc.nat(2), sid: fc.nat(2) };
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      ...target,
      // null: the same content as stored locally, only cookie.expires changed (a rolling save)
      payload: fc.option(fc.record({ user: fc.constantFrom('ann', 'bob'), n: fc.nat(3) }), {
        nil: null,
        freq: 3,
      }),
      lifeMs: lifeArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('touch' as const), ...target, lifeMs: touchLifeArb }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const), ...target }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('deliver' as const),
      region: fc.nat(2),
      picks: fc.array(fc.nat(), { maxLength: 6 }),
      dupes: fc.array(fc.nat(), { maxLength: 2 }),
    }),
  },
);
const scenarioArb = fc.record({
  regions: fc.integer({ min: 2, max: 3 }),
  sids: fc.integer({ min: 1, max: 3 }),
  cmds: fc.array(cmdArb, { minLength: 4, maxLength: 40, size: 'large' }),
});

/** Fisher–Yates with fast-check's choices. */
function shuffle<T>(g: fc.GeneratorValue, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = g(fc.nat, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Cuts `items` into batches of 1..6 events, sizes chosen by fast-check. */
function batches<T>(g: fc.GeneratorValue, items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; ) {
    const size = g(fc.integer, { min: 1, max: 6 });
    out.push(items.slice(i, i + size));
    i += size;
  }
  return out;
}

describe.skipIf(!hasRedis)('replication invariants (property-based, real Redis)', () => {
  const base = uniquePrefix('repl-props');
  const prefix = `${base}g:`;
  const keys = createKeySpace(prefix);
  const clients = REGIONS.map((_, i) => sharedRedis({ db: i + 1, lazyConnect: true }));
  const errors: Error[] = [];
  const stores = REGIONS.map((region, i) => {
    const store = new GeoSessionStore({
      region,
      client: clients[i] as Redis,
      prefix,
      tombstoneTtl: 600,
      replicateTouchAfter: 0,
      transport: new ManualTransport(),
      sealer: 'none',
    });
    store.on('error', (e: Error) => errors.push(e));
    return store;
  });
  const applierOf = (client: Redis, k: typeof keys) =>
    new Applier({ client, keys: k, horizonMs: 600_000, maxSkewMs: 60_000, timeoutMs: 5000 });
  const appliers = REGIONS.map((_, i) => applierOf(clients[i] as Redis, keys));
  const observerKeys = [createKeySpace(`${base}o1:`), createKeySpace(`${base}o2:`)];
  const observerClient = clients[0] as Redis;
  const observers = observerKeys.map((k) => applierOf(observerClient, k));
  /** Last outbox entry read, per region (streams outlive runs; each run reads only what is new). */
  const cursors = REGIONS.map(() => '0-0');
  let run = 0;

  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    for (const c of clients) {
      const found = [...(await c.keys(`${base}*`)), ...(await c.keys(`{${base}*`))];
      if (found.length > 0) await c.del(...found);
      c.disconnect();
    }
  });

  async function newEvents(region: number): Promise<ChangeEvent[]> {
    const client = clients[region] as Redis;
    const entries = await client.xrange(
      keys.internal('outbox', REGIONS[region] as string),
      `(${cursors[region]}`,
      '+',
    );
    const last = entries.at(-1);
    if (last) cursors[region] = last[0];
    return entries.map(([id, fields]) => changeOfEntry(REGIONS[region] as string, id, fields));
  }

  async function sessionFor(region: number, sid: string, cmd: Cmd & { kind: 'set' }): Promise<SessionData> {
    const expires = new Date(Date.now() + cmd.lifeMs).toISOString();
    if (cmd.payload) return { cookie: { originalMaxAge: MAX_AGE, expires }, ...cmd.payload };
    const stored = await (clients[region] as Redis).get(keys.session(sid));
    const session: SessionData = stored
      ? (JSON.parse(stored) as SessionData)
      : { cookie: { originalMaxAge: MAX_AGE }, user: 'ann', n: 0 };
    return { ...session, cookie: { ...session.cookie, expires } };
  }

  it('converge, keep logouts final, let the last writer win, let expiry travel with the version, and are idempotent', async () => {
    await Promise.all(clients.map((c) => (c.status === 'wait' ? c.connect() : undefined)));
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.gen(), async (scenario, g) => {
        run++;
        const regions = REGIONS.slice(0, scenario.regions).map((_, i) => i);
        const sids = Array.from({ length: scenario.sids }, (_, i) => `r${run}-s${i}`);
        const all: ChangeEvent[] = [];
        const pending: ChangeEvent[][] = regions.map(() => []);
        const delivered: ChangeEvent[][] = regions.map(() => []);
        // (version the expiry belongs to, expiry) per region+sid: never goes back, compared in that order
        const highest = new Map<string, { v: string; x: number }>();
        const loggedOut = new Set<string>(); // region+sid pairs that have seen a destroy

        const learn = (r: number, events: readonly ChangeEvent[]) => {
          for (const e of events) if (e.op === 'destroy') loggedOut.add(`${r}/${e.sid}`);
        };
        const deliver = async (r: number, batch: ChangeEvent[]) => {
          await (appliers[r] as Applier).apply(batch);
          delivered[r]?.push(...batch);
          learn(r, batch);
        };
        /**
         * After every step: the expiry's version never went back, nor the expiry within one version, and a
         * region that saw a logout never serves it.
         */
        const checkStep = async (r: number) => {
          for (const sid of sids) {
            if (loggedOut.has(`${r}/${sid}`)) {
              expect(await (stores[r] as GeoSessionStore).get(sid), `${sid} served after logout`).toBeNull();
              expect(await metaField(clients[r] as Redis, keys.meta(sid), 't')).toBe('1');
            }
            const meta = await readMeta(clients[r] as Redis, keys.meta(sid));
            const now = { v: meta.e ?? meta.v ?? '', x: Number(meta.x ?? 0) };
            const key = `${r}/${sid}`;
            const before = highest.get(key) ?? { v: '', x: 0 };
            expect(now.v >= before.v, `version of ${sid}'s expiry in ${REGIONS[r]} went back`).toBe(true);
            if (now.v === before.v) {
              expect(now.x, `expiry of ${sid} in ${REGIONS[r]} went back`).toBeGreaterThanOrEqual(before.x);
            }
            highest.set(key, now);
          }
        };

        for (const cmd of scenario.cmds) {
          const r = cmd.region % regions.length;
          if (cmd.kind === 'deliver') {
            const queue = pending[r] as ChangeEvent[];
            const batch: ChangeEvent[] = [];
            for (const pick of cmd.picks) {
              if (queue.length === 0) break;
              batch.push(...queue.splice(pick % queue.length, 1));
            }
            const old = delivered[r] as ChangeEvent[];
            for (const d of cmd.dupes) if (old.length > 0) batch.push(old[d % old.length] as ChangeEvent);
            if (batch.length > 0) await deliver(r, batch);
          } else {
            const store = stores[r] as GeoSessionStore;
            const sid = sids[cmd.sid % sids.length] as string;
            if (cmd.kind === 'set') await store.set(sid, await sessionFor(r, sid, cmd));
            else if (cmd.kind === 'touch') {
              const expires = new Date(Date.now() + cmd.lifeMs).toISOString();
              await store.touch(sid, { cookie: { originalMaxAge: MAX_AGE, expires } });
            } else await store.destroy(sid);
            const made = await newEvents(r);
            all.push(...made);
            learn(r, made);
            for (const other of regions) if (other !== r) pending[other]?.push(...made);
          }
          await checkStep(r);
        }

        // Deliver everything left, shuffled, in random batches, with random duplicates of anything.
        for (const r of regions) {
          const fromOthers = all.filter((e) => e.origin !== REGIONS[r]);
          const dupes =
            fromOthers.length === 0 ? [] : g(fc.array, fc.constantFrom(...fromOthers), { maxLength: 4 });
          for (const batch of batches(g, shuffle(g, [...(pending[r] as ChangeEvent[]), ...dupes]))) {
            await deliver(r, batch);
          }
          await checkStep(r);
        }
        // Two observers get every event in two independent orders.
        for (const observer of observers) {
          for (const batch of batches(g, shuffle(g, all))) await observer.apply(batch);
        }

        const states = async () => {
          const out: SessionState[][] = [];
          for (const sid of sids) {
            const row: SessionState[] = [];
            for (const r of regions) row.push(await sessionState(clients[r] as Redis, keys, sid));
            for (const k of observerKeys) row.push(await sessionState(observerClient, k, sid));
            out.push(row);
          }
          return out;
        };
        const final = await states();

        for (const [i, sid] of sids.entries()) {
          const row = final[i] as SessionState[];
          const first = row[0] as SessionState;
          // (1) Convergence, and delivery-order independence (the observers): byte-identical state.
          for (const [j, other] of row.entries()) expect(other, `${sid} in copy ${j}`).toEqual(first);

          const mine = all.filter((e) => e.sid === sid);
          if (mine.length === 0) {
            expect(first).toEqual({ value: null, meta: {}, valueAt: -2, metaAt: -2 });
            continue;
          }
          const sets = mine.filter((e): e is SetEvent => e.op === 'set');
          const lives = mine.filter((e) => e.op !== 'destroy');
          // The metadata key outlives a shortened session as long as any write or touch asked for.
          const longest = Math.max(...lives.map((e) => e.expiresAt));
          if (mine.some((e) => e.op === 'destroy')) {
            // (2) Logout is final: no value anywhere, a tombstone everywhere that outlives every write.
            const until = Math.max(...mine.map((e) => e.expiresAt));
            const top = mine
              .map((e) => e.version)
              .sort()
              .at(-1);
            expect(first.value).toBeNull();
            expect(first.meta).toEqual({ t: '1', v: top, x: String(until) });
            expect(first.metaAt).toBe(until);
          } else if (sets.length === 0) {
            // Only touches of a session no region had (read-through served it, its write never came):
            // every region remembers the latest expiry, and nothing else.
            const until = Math.max(...lives.map((e) => e.expiresAt));
            expect(first.value).toBeNull();
            expect(first.meta.v).toBeUndefined();
            expect(first.meta.x).toBe(String(until));
          } else {
            // (3) Last writer wins: the data of the highest-versioned set.
            const winner = sets.reduce((a, b) => (b.version > a.version ? b : a));
            expect(first.value).toBe(winner.data);
            expect(first.meta.v).toBe(winner.version);
            expect(first.meta.f).toBe(winner.fingerprint);
            // (4) Expiry is absolute and travels with the version: the highest version's (set or touch)
            //     wins, the latest of that version's sets and touches.
            const top = lives.map((e) => e.version).reduce((a, b) => (b > a ? b : a), '');
            const until = Math.max(...lives.filter((e) => e.version === top).map((e) => e.expiresAt));
            expect(first.valueAt).toBe(until);
            expect(first.meta.x).toBe(String(until));
            expect(first.metaAt).toBe(longest);
            expect(first.meta.e).toBeUndefined();
          }
        }

        // (5) Idempotence: everything again, reshuffled, changes nothing and reports no change.
        for (const r of regions) {
          for (const batch of batches(g, shuffle(g, all))) {
            const { outcome } = await (appliers[r] as Applier).apply(batch);
            expect(outcome.applied, `re-applying changed ${REGIONS[r]}`).toBe(0);
          }
        }
        for (const batch of batches(g, shuffle(g, all))) {
          expect((await (observers[0] as Applier).apply(batch)).outcome.applied).toBe(0);
        }
        expect(await states()).toEqual(final);
      }),
      { numRuns: 100 },
    );
    expect(errors).toEqual([]);
  }, 120_000);
});
