/**
 * The model of the replication property tests (fast-check): the conflict rules of DESIGN.md section 3,
 * checked on real Redis, one Redis per region (test/replication/properties.test.ts) or two Redis
 * Clusters with sharded outboxes (test/cluster/properties-on-cluster.test.ts).
 *
 * Each region is a GeoSessionStore given a {@link ManualTransport}: it declares `readsOutbox: true`, so
 * the store runs no relay, and its `subscribe` never delivers anything, so the stores' own replication
 * stays idle. The write scripts still append every change to the region's outbox(es); the test reads
 * those entries itself and hands them to the other regions through the real Applier (apply.lua) — in an
 * order, with duplicates and batch boundaries that fast-check chooses, interleaved with further local
 * writes. Two extra "observer" keyspaces (applying only) receive every event in two independent random
 * orders: their states must be byte-identical to each other and to every region's.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import type { ReplicationTransport, Subscription } from '../../src/contracts/transport.js';
import type { GeoSessionStore, SessionData } from '../../src/index.js';
import type { KeySpace } from '../../src/keys.js';
import type { Applier } from '../../src/replication/applier.js';
import type { ChangeEvent, SetEvent } from '../../src/replication/events.js';
import { TransportEvents } from '../../src/transports/transport-state.js';
import type { RedisClient } from '../../src/types.js';
import { metaField, readMeta, type SessionState, sessionState } from './meta.js';

/** A transport that never delivers: replication is driven by hand from the outboxes (see above). */
export class ManualTransport extends TransportEvents implements ReplicationTransport {
  readonly name = 'manual';
  /** True so that the store runs no relay; nothing reads the outbox but the test. */
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

export const MAX_AGE = 3_600_000;
const MIN_LIFE = 5 * 60_000; // far enough ahead that nothing expires during a run

export type Cmd =
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

/** 2 or 3 regions (as many as `maxRegions` allows), 1 to 3 sessions, 4 to 40 commands. */
export function scenarioArb(maxRegions = 3) {
  return fc.record({
    regions: fc.integer({ min: 2, max: maxRegions }),
    sids: fc.integer({ min: 1, max: 3 }),
    cmds: fc.array(cmdArb, { minLength: 4, maxLength: 40, size: 'large' }),
  });
}
export type Scenario = { regions: number; sids: number; cmds: Cmd[] };

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

/** A keyspace that receives changes: a region's own, or an observer's. */
export interface ModelCopy {
  readonly client: RedisClient;
  readonly keys: KeySpace;
  readonly applier: Applier;
}

/** A region of the model: its store, and the session changes its writes appended since the last call. */
export interface ModelRegion extends ModelCopy {
  readonly name: string;
  readonly store: GeoSessionStore;
  newEvents(): Promise<ChangeEvent[]>;
}

const stateOf = (copy: ModelCopy, sid: string): Promise<SessionState> =>
  sessionState(copy.client as Redis, copy.keys, sid);

async function sessionFor(
  region: ModelRegion,
  sid: string,
  cmd: Cmd & { kind: 'set' },
): Promise<SessionData> {
  const expires = new Date(Date.now() + cmd.lifeMs).toISOString();
  if (cmd.payload) return { cookie: { originalMaxAge: MAX_AGE, expires }, ...cmd.payload };
  const stored = await region.client.get(region.keys.session(sid));
  const session: SessionData = stored
    ? (JSON.parse(stored) as SessionData)
    : { cookie: { originalMaxAge: MAX_AGE }, user: 'ann', n: 0 };
  return { ...session, cookie: { ...session.cookie, expires } };
}

/**
 * Runs one scenario on the first `scenario.regions` of `world` with the sessions `sids` (new ids), and
 * checks, after every step: the expiry's version never goes back, nor the expiry within one version, and
 * a region that saw a logout never serves it; at the end: (1) convergence and delivery-order
 * independence (byte-identical state in every region and observer), (2) a logout is final, (3) the last
 * writer wins, (4) expiry is absolute and travels with the version, (5) idempotence.
 */
export async function runScenario(
  world: { regions: readonly ModelRegion[]; observers: readonly ModelCopy[] },
  scenario: Scenario,
  g: fc.GeneratorValue,
  sids: readonly string[],
): Promise<void> {
  const regions = world.regions.slice(0, scenario.regions);
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
    await (regions[r] as ModelRegion).applier.apply(batch);
    delivered[r]?.push(...batch);
    learn(r, batch);
  };
  const checkStep = async (r: number) => {
    const region = regions[r] as ModelRegion;
    for (const sid of sids) {
      if (loggedOut.has(`${r}/${sid}`)) {
        expect(await region.store.get(sid), `${sid} served after logout`).toBeNull();
        expect(await metaField(region.client, region.keys.meta(sid), 't')).toBe('1');
      }
      const meta = await readMeta(region.client, region.keys.meta(sid));
      const now = { v: meta.e ?? meta.v ?? '', x: Number(meta.x ?? 0) };
      const key = `${r}/${sid}`;
      const before = highest.get(key) ?? { v: '', x: 0 };
      expect(now.v >= before.v, `version of ${sid}'s expiry in ${region.name} went back`).toBe(true);
      if (now.v === before.v) {
        expect(now.x, `expiry of ${sid} in ${region.name} went back`).toBeGreaterThanOrEqual(before.x);
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
      const region = regions[r] as ModelRegion;
      const sid = sids[cmd.sid % sids.length] as string;
      if (cmd.kind === 'set') await region.store.set(sid, await sessionFor(region, sid, cmd));
      else if (cmd.kind === 'touch') {
        const expires = new Date(Date.now() + cmd.lifeMs).toISOString();
        await region.store.touch(sid, { cookie: { originalMaxAge: MAX_AGE, expires } });
      } else await region.store.destroy(sid);
      const made = await region.newEvents();
      all.push(...made);
      learn(r, made);
      for (const [other] of regions.entries()) if (other !== r) pending[other]?.push(...made);
    }
    await checkStep(r);
  }

  // Deliver everything left, shuffled, in random batches, with random duplicates of anything.
  for (const [r, region] of regions.entries()) {
    const fromOthers = all.filter((e) => e.origin !== region.name);
    const dupes =
      fromOthers.length === 0 ? [] : g(fc.array, fc.constantFrom(...fromOthers), { maxLength: 4 });
    for (const batch of batches(g, shuffle(g, [...(pending[r] as ChangeEvent[]), ...dupes]))) {
      await deliver(r, batch);
    }
    await checkStep(r);
  }
  // Two observers get every event in two independent orders.
  for (const observer of world.observers) {
    for (const batch of batches(g, shuffle(g, all))) await observer.applier.apply(batch);
  }

  const copies: ModelCopy[] = [...regions, ...world.observers];
  const states = async () => {
    const out: SessionState[][] = [];
    for (const sid of sids) {
      const row: SessionState[] = [];
      for (const copy of copies) row.push(await stateOf(copy, sid));
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
  for (const region of regions) {
    for (const batch of batches(g, shuffle(g, all))) {
      const { outcome } = await region.applier.apply(batch);
      expect(outcome.applied, `re-applying changed ${region.name}`).toBe(0);
    }
  }
  const observer = world.observers[0] as ModelCopy;
  for (const batch of batches(g, shuffle(g, all))) {
    expect((await observer.applier.apply(batch)).outcome.applied).toBe(0);
  }
  expect(await states()).toEqual(final);
}
