/**
 * Random fault schedules (fast-check arbitraries) and the interpreter that plays one against a
 * {@link Deployment}, recording every store call as the model the checker judges the end state by.
 */
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { resyncRegion } from '../../src/admin/resync.js';
import type { SessionData } from '../../src/index.js';
import { CACHE_KEYS, type CachePlay, cacheKey } from './invalidation.js';
import { type Deployment, REGIONS, type RegionName, type Schedule, STORE } from './rig.js';
import { type LogoutRecord, USERS, userOf } from './users.js';

/** Session ids per schedule: few, so that regions keep writing the same ones. */
export const SIDS = 5;

export type StoreCall =
  | { op: 'set'; r: number; s: number }
  | { op: 'touch'; r: number; s: number }
  | { op: 'destroy'; r: number; s: number };

export type Step =
  | StoreCall
  /** Two or three calls at once: races between regions, or within one. */
  | { op: 'race'; calls: StoreCall[] }
  /** The `source` → `reader` link: reset (refused, like a port that is down) or frozen (silent). */
  | { op: 'cut'; source: number; reader: number; mode: 'reset' | 'freeze' }
  | { op: 'heal'; source: number; reader: number }
  /** SIGKILL a region's Redis; it comes back (with every acknowledged write) after `downMs`. */
  | { op: 'crash'; r: number; downMs: number }
  /** SIGKILL a region's Redis; it comes back empty after `downMs`. */
  | { op: 'wipe'; r: number; downMs: number }
  /** SIGSTOP a region's Redis for `ms`. */
  | { op: 'stall'; r: number; ms: number }
  /** Sets a region's host clock `offsetMs` off. */
  | { op: 'clock'; r: number; offsetMs: number }
  /**
   * Rewinds `reader`'s consumer group on the stream it reads of `source` (its outbox, or its relay stream
   * when sealed) to the start: every entry still there is delivered again.
   */
  | { op: 'duplicate'; source: number; reader: number }
  /**
   * Changes lost in transit, as a broker's retention or someone with write access loses them: the newest
   * entry of the stream the others read of `source` is deleted (Redis Streams), `reader`'s queue is
   * purged (AMQP), or `source`'s messages are purged from the stream (NATS). Whoever missed them must
   * find the gap and say so.
   */
  | { op: 'drop'; source: number; reader: number }
  /** A region's Redis out of memory (`noeviction`, `maxmemory` below what it holds) for `ms`. */
  | { op: 'oom'; r: number; ms: number }
  /** A region's Redis busy with a long script for `ms`: every other client gets BUSY replies. */
  | { op: 'busy'; r: number; ms: number }
  /** The oldest entries of `source`'s stream appended again, as a replay of captured traffic (Redis Streams). */
  | { op: 'replay'; source: number }
  /**
   * A region-local cache write of cache key `k`; an invalidation of it in region `r`, after writing it in
   * every region (test/faults/invalidation.ts).
   */
  | { op: 'cache'; r: number; k: number }
  | { op: 'invalidate'; r: number; k: number }
  /**
   * `store.logoutEverywhere(user u)` in region `r` (test/faults/users.ts); `saved`: right after a set of
   * one of the user's sessions in that region (`s`: its k-th session), which `r` may not have applied yet.
   */
  | { op: 'logoutEverywhere'; r: number; u: number; saved: { r: number; k: number } | null }
  | { op: 'wait'; ms: number };

const region = fc.integer({ min: 0, max: REGIONS.length - 1 });
const sid = fc.integer({ min: 0, max: SIDS - 1 });
const call: fc.Arbitrary<StoreCall> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), r: region, s: sid }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('touch' as const), r: region, s: sid }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('destroy' as const), r: region, s: sid }) },
);
const link = { source: region, reader: region };
const cacheIndex = fc.integer({ min: 0, max: CACHE_KEYS - 1 });

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 40, arbitrary: call },
  {
    weight: 12,
    arbitrary: fc.record({
      op: fc.constant('race' as const),
      calls: fc.array(call, { minLength: 2, maxLength: 3 }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('cut' as const),
      ...link,
      mode: fc.constantFrom('reset', 'freeze'),
    }),
  },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('heal' as const), ...link }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('crash' as const),
      r: region,
      downMs: fc.integer({ min: 0, max: 1500 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('wipe' as const),
      r: region,
      downMs: fc.integer({ min: 0, max: 1000 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('stall' as const),
      r: region,
      ms: fc.integer({ min: 100, max: 1200 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('clock' as const),
      r: region,
      offsetMs: fc.constantFrom(-7_200_000, -60_000, -1500, 0, 1500, 60_000, 7_200_000),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('duplicate' as const), ...link }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('drop' as const), ...link }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('oom' as const),
      r: region,
      ms: fc.integer({ min: 200, max: 1500 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('busy' as const),
      r: region,
      ms: fc.integer({ min: 300, max: 1500 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('replay' as const), source: region }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('cache' as const), r: region, k: cacheIndex }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('invalidate' as const), r: region, k: cacheIndex }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('logoutEverywhere' as const),
      r: region,
      u: fc.integer({ min: 0, max: USERS - 1 }),
      saved: fc.option(fc.record({ r: region, k: fc.integer({ min: 0, max: 1 }) })),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 400 }) }),
  },
);

export const scheduleArb = fc.array(stepArb, { minLength: 12, maxLength: 36 });

/** One store call as it happened: real time around it, and whether it was acknowledged. */
export interface CallRecord {
  readonly op: StoreCall['op'];
  readonly r: number;
  readonly s: number;
  /** The value's tag (sets only; unique in the schedule). */
  readonly n: number;
  readonly lifeMs: number;
  readonly start: number;
  end: number;
  /** Resolved. A call that failed (timeout, server away) may or may not have happened. */
  ok: boolean;
}

/** What happened to the deployment during a schedule, for the checker and the suite's tally. */
export interface Played {
  readonly calls: CallRecord[];
  /** Per region, when its Redis last came back empty (0: never). */
  readonly wipedAt: number[];
  readonly faults: Record<string, number>;
  /** When every fault had been undone (the checker moves it to when replication settled). */
  finishedAt: number;
  /** Regions whose changes were dropped in transit (`drop`): readers may flag a gap for them. */
  readonly dropped: Set<string>;
  /**
   * Per region that came back empty, the region it was resynced from (both ways) once every fault was
   * undone (-1: not resynced).
   */
  readonly resyncedFrom: number[];
  /** Resyncs that failed (with every server up, none may). */
  readonly resyncErrors: string[];
  /**
   * Gaps a resynced region flagged afterwards, `<region>:<origin>`, each followed by a resync from that
   * origin (see {@link followGapFlags}).
   */
  readonly followedGaps: Set<string>;
  /** Cache writes and invalidations (test/faults/invalidation.ts). */
  readonly cache: CachePlay;
  /** `logoutEverywhere` calls (test/faults/users.ts). */
  readonly logouts: LogoutRecord[];
}

/** Each session id's lifetime, ms: longer than a schedule, different per id. */
export const lifeOf = (s: number) => 90_000 + s * 7_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** A script that keeps Redis busy for ARGV[1] ms. */
const BUSY_SCRIPT = `
local function ms() local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000) end
local stop = ms() + tonumber(ARGV[1])
while ms() < stop do end
return 1`;

/** A client of a region's Redis for the fault steps themselves (never the store's). */
function adminClient(port: number): Redis {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => {});
  return client;
}

/** Plays `steps` on an open schedule; every fault is undone (links healed, servers up) before it returns. */
export async function play(deployment: Deployment, schedule: Schedule, sids: string[], steps: Step[]) {
  const played: Played = {
    calls: [],
    wipedAt: REGIONS.map(() => 0),
    faults: {},
    finishedAt: 0,
    dropped: new Set(),
    resyncedFrom: REGIONS.map(() => -1),
    resyncErrors: [],
    followedGaps: new Set(),
    cache: { writes: [], invalidations: [] },
    logouts: [],
  };
  const count = (kind: string) => {
    played.faults[kind] = (played.faults[kind] ?? 0) + 1;
  };
  /** Per region, the server fault in progress (a restart or a resume to come). */
  const busy: (Promise<void> | undefined)[] = REGIONS.map(() => undefined);
  let tag = 0;

  const nameOf = (r: number): RegionName => REGIONS[r] as RegionName;

  async function storeCall(c: StoreCall): Promise<void> {
    const region = schedule.regions[c.r];
    if (!region) return;
    const id = sids[c.s] as string;
    const lifeMs = lifeOf(c.s);
    const record: CallRecord = {
      op: c.op,
      r: c.r,
      s: c.s,
      n: c.op === 'set' ? ++tag : 0,
      lifeMs,
      start: Date.now(),
      end: 0,
      ok: false,
    };
    played.calls.push(record);
    // The cookie as express-session makes it: from the host's (possibly wrong) clock.
    const session: SessionData = {
      cookie: {
        originalMaxAge: lifeMs,
        expires: new Date(Date.now() + region.clockOffsetMs + lifeMs).toISOString(),
      },
      user: userOf(c.s),
      n: record.n,
    } as SessionData;
    try {
      if (c.op === 'set') await region.store.set(id, session);
      else if (c.op === 'touch') await region.store.touch(id, session);
      else await region.store.destroy(id);
      record.ok = true;
    } catch {
      record.ok = false;
    }
    record.end = Date.now();
  }

  function serverFault(r: number, run: () => Promise<void>) {
    const previous = busy[r] ?? Promise.resolve();
    const next = previous.then(run).catch(() => {});
    busy[r] = next;
  }

  for (const step of steps) {
    switch (step.op) {
      case 'set':
      case 'touch':
      case 'destroy':
        await storeCall(step);
        break;
      case 'race':
        await Promise.all(step.calls.map(storeCall));
        count('race');
        break;
      case 'cut': {
        const proxy = deployment.links[nameOf(step.source)][nameOf(step.reader)];
        if (!proxy) break;
        if (step.mode === 'freeze') proxy.freeze();
        else proxy.cut();
        count(`link ${step.mode === 'freeze' ? 'frozen' : 'cut'}`);
        break;
      }
      case 'heal': {
        const proxy = deployment.links[nameOf(step.source)][nameOf(step.reader)];
        proxy?.heal();
        proxy?.thaw();
        break;
      }
      case 'crash':
      case 'wipe': {
        const server = deployment.servers[nameOf(step.r)];
        count(step.op === 'crash' ? 'redis killed' : 'redis killed, back empty');
        serverFault(step.r, async () => {
          await server.kill();
          if (step.op === 'wipe') await server.forget();
          await sleep(step.downMs);
          await server.start();
          if (step.op === 'wipe') played.wipedAt[step.r] = Date.now();
        });
        // The kill itself happens now, before the next step.
        await sleep(5);
        break;
      }
      case 'stall': {
        const server = deployment.servers[nameOf(step.r)];
        count('redis stalled');
        serverFault(step.r, async () => {
          server.pause();
          await sleep(step.ms);
          server.resume();
        });
        break;
      }
      case 'clock': {
        const region = schedule.regions[step.r];
        if (region && region.clockOffsetMs !== step.offsetMs) {
          region.clockOffsetMs = step.offsetMs;
          count('host clock moved');
        }
        break;
      }
      case 'duplicate': {
        // A broker redelivers by itself after a cut (nothing is acknowledged before it is applied).
        if (step.source === step.reader || deployment.transport !== 'redis-streams') break;
        const source = schedule.regions[step.source];
        const read = schedule.keys.internal(schedule.sealed ? 'relay' : 'outbox', nameOf(step.source));
        try {
          await source?.reader.xgroup('SETID', read, nameOf(step.reader), '0');
          count('deliveries repeated');
        } catch {
          // The source's Redis is away: nothing to repeat.
        }
        break;
      }
      case 'oom': {
        const server = deployment.servers[nameOf(step.r)];
        count('redis out of memory');
        serverFault(step.r, async () => {
          const admin = adminClient(server.port);
          try {
            await admin.config('SET', 'maxmemory', '1');
            await sleep(step.ms);
          } finally {
            await admin.config('SET', 'maxmemory', '0').catch(() => {});
            admin.disconnect();
          }
        });
        break;
      }
      case 'busy': {
        const server = deployment.servers[nameOf(step.r)];
        count('redis busy with a script');
        serverFault(step.r, async () => {
          const admin = adminClient(server.port);
          try {
            await admin.config('SET', 'busy-reply-threshold', '50');
            // Spins on the Redis clock for `ms`: every other client gets BUSY meanwhile.
            await admin.eval(BUSY_SCRIPT, 0, step.ms);
          } catch {
            // The server went away meanwhile.
          } finally {
            admin.disconnect();
          }
        });
        await sleep(60);
        break;
      }
      case 'drop':
        if (await deployment.drop(schedule, nameOf(step.source), nameOf(step.reader))) {
          played.dropped.add(nameOf(step.source));
          // A purged queue loses every origin's messages; a filtered purge on NATS 2.9 moves every
          // consumer of the stream past the purged range, other origins' undelivered messages included.
          if (deployment.transport !== 'redis-streams') {
            for (const origin of REGIONS) played.dropped.add(origin);
          }
          count('changes dropped in transit');
        }
        break;
      case 'replay': {
        if (deployment.transport !== 'redis-streams') break;
        const source = schedule.regions[step.source];
        const read = schedule.keys.internal(schedule.sealed ? 'relay' : 'outbox', nameOf(step.source));
        try {
          const oldest = (await source?.reader.xrange(read, '-', '+', 'COUNT', 3)) ?? [];
          for (const [, fields] of oldest) await source?.reader.xadd(read, '*', ...fields);
          if (oldest.length > 0) count('old entries replayed');
        } catch {
          // The source's Redis is away: nothing to replay.
        }
        break;
      }
      case 'cache': {
        const region = schedule.regions[step.r];
        const write = { r: step.r, k: step.k, value: `v${++tag}`, end: 0, ok: false };
        played.cache.writes.push(write);
        try {
          await region?.client.set(cacheKey(schedule.keys.prefix, step.k), write.value);
          write.ok = region !== undefined;
        } catch {
          // The Redis is away: the write may still run.
        }
        write.end = Date.now();
        break;
      }
      case 'invalidate': {
        // The key cached in every region first (where the Redis answers), so each region has one to drop.
        await Promise.all(
          schedule.regions.map(async (other, r) => {
            const write = { r, k: step.k, value: `v${++tag}`, end: 0, ok: false };
            played.cache.writes.push(write);
            try {
              await other.client.set(cacheKey(schedule.keys.prefix, step.k), write.value);
              write.ok = true;
            } catch {
              // The Redis is away: the write may still run.
            }
            write.end = Date.now();
          }),
        );
        const region = schedule.regions[step.r];
        const record = { r: step.r, k: step.k, start: Date.now(), ok: false };
        played.cache.invalidations.push(record);
        try {
          await region?.invalidator.invalidate(cacheKey(schedule.keys.prefix, step.k));
          record.ok = region !== undefined;
          count('invalidation');
        } catch {
          // Not acknowledged: it may or may not have happened.
        }
        break;
      }
      case 'logoutEverywhere': {
        const region = schedule.regions[step.r];
        const user = `u${step.u}`;
        if (step.saved) await storeCall({ op: 'set', r: step.saved.r, s: step.u + USERS * step.saved.k });
        const start = Date.now();
        const existed = [
          ...new Set(
            played.calls.filter((c) => c.op === 'set' && c.ok && userOf(c.s) === user).map((c) => c.s),
          ),
        ];
        const record: LogoutRecord = { r: step.r, user, start, end: 0, ok: false, existed };
        played.logouts.push(record);
        try {
          await region?.store.logoutEverywhere(user);
          record.ok = region !== undefined;
          count('logout everywhere');
        } catch {
          // Not acknowledged: it may or may not have happened.
        }
        record.end = Date.now();
        break;
      }
      case 'wait':
        await sleep(step.ms);
        break;
    }
  }

  // Undo every fault: servers up and awake, links healed.
  await Promise.all(busy);
  for (const name of REGIONS) {
    const server = deployment.servers[name];
    server.resume();
    await server.start();
    for (const reader of REGIONS) {
      deployment.links[name][reader]?.heal();
      deployment.links[name][reader]?.thaw();
    }
  }
  await resyncWiped(schedule, played, count);
  played.finishedAt = Date.now();
  return played;
}

/**
 * The operator's step after a wipe: every region that came back empty is resynced, both ways, from a
 * region that did not (or from another one when every region did), while replication runs. The checker
 * then holds it to the same end state as the others.
 */
async function resyncWiped(schedule: Schedule, played: Played, count: (kind: string) => void): Promise<void> {
  for (const [r, wiped] of played.wipedAt.entries()) {
    if (!wiped) continue;
    const whole = REGIONS.findIndex((_, o) => o !== r && !played.wipedAt[o]);
    const from = whole >= 0 ? whole : (r + 1) % REGIONS.length;
    const target = schedule.regions[r];
    const source = schedule.regions[from];
    if (!target || !source) continue;
    try {
      await resyncFrom(schedule, r, from, true);
      played.resyncedFrom[r] = from;
      count('resync after a wipe');
    } catch (error) {
      played.resyncErrors.push(`resync of ${target.name} from ${source.name}: ${String(error)}`);
    }
  }
}

/** Resyncs region `r` from region `from` (`geosession resync`), both ways or not. */
async function resyncFrom(schedule: Schedule, r: number, from: number, bothWays: boolean): Promise<void> {
  const target = schedule.regions[r];
  const source = schedule.regions[from];
  if (!target || !source) return;
  await resyncRegion({
    target: { id: target.name, client: target.reader },
    source: { id: source.name, client: source.reader },
    prefix: schedule.keys.prefix,
    maxClockSkewMs: STORE.maxClockSkewMs,
    tombstoneTtl: STORE.tombstoneTtl,
    bothWays,
  });
}

/**
 * The operator's next step, as the runbook gives it: a resynced region that then flags a gap in an
 * origin's numbers is resynced from that origin. A region that came back empty lost the changes it had
 * already taken from the broker; its resync source may not have had some of them yet (a link was still
 * cut), and those the broker will not deliver again: the region sees the hole in the origin's numbers and
 * says so (DESIGN.md section 3: converge or be flagged with the reason). Gaps of changes dropped in
 * transit are the checker's to judge, not followed here. The other way round too: changes the region
 * made before its wipe may still have been on their way to its resync source, which then says so
 * (cause `late`) and the region is resynced from it again. Called while the checker waits for
 * replication to settle; each flag is followed once.
 */
export async function followGapFlags(schedule: Schedule, played: Played): Promise<void> {
  for (const [r, from] of played.resyncedFrom.entries()) {
    if (from < 0) continue;
    // Another region that received, after its resync began, changes this region made before its wipe
    // says so (cause `late`): the runbook resyncs it from that region, both ways.
    for (const [o, other] of schedule.regions.entries()) {
      const need = o === r ? undefined : other.store.replicationStats()?.needsResync[REGIONS[r] as string];
      const key = `${REGIONS[r]}<${REGIONS[o]}:late`;
      if (need?.cause !== 'late' || played.followedGaps.has(key)) continue;
      played.followedGaps.add(key);
      try {
        await resyncFrom(schedule, r, o, true);
        played.faults['resync after late changes'] = (played.faults['resync after late changes'] ?? 0) + 1;
      } catch (error) {
        played.resyncErrors.push(`resync of ${REGIONS[r]} from ${REGIONS[o]}: ${String(error)}`);
      }
    }
    const needs = schedule.regions[r]?.store.replicationStats()?.needsResync ?? {};
    for (const [origin, need] of Object.entries(needs)) {
      const o = REGIONS.indexOf(origin as RegionName);
      const key = `${REGIONS[r]}:${origin}`;
      if (
        o < 0 ||
        o === r ||
        need.cause !== 'gap' ||
        played.dropped.has(origin) ||
        played.followedGaps.has(key)
      )
        continue;
      played.followedGaps.add(key);
      try {
        await resyncFrom(schedule, r, o, false);
        played.faults['resync after a gap'] = (played.faults['resync after a gap'] ?? 0) + 1;
      } catch (error) {
        played.resyncErrors.push(`resync of ${REGIONS[r]} from ${origin}: ${String(error)}`);
      }
    }
  }
}
