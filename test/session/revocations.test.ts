/**
 * Revocation events (src/session/revocations.ts) against real servers: two store processes per region
 * (each with its own clients) in two regions over Redis Streams. Each receives each `revoked` exactly
 * once for a destroy made in the other region; a watch fires once and is released on unwatch and on
 * abort (and the subscriber connection goes when nobody listens); a subscriber whose connection is
 * killed subscribes again, reports the gap and re-checks its watches; forged destroys, sealed and
 * unsealed, are refused and fire nothing.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoSessionStore, type RevocationGap, type RevokedSession } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { sessionEnvelope } from '../../src/replication/session-codec.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { createDeployment, type Deployment, transportAvailable } from '../helpers/deployment.js';
import { generatePasetoKey, localSealer, sealed, session } from '../helpers/forgery.js';
import { version } from '../helpers/meta.js';
import { eventually, hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

const REGIONS = ['hk', 'kr'] as const;
const WAIT = 20_000;
const available = await transportAvailable('redis-streams');

/** The stores of a two-region deployment: `d.store(r)` and a second process per region. */
interface Processes {
  d: Deployment;
  all: GeoSessionStore[];
  second: Record<string, GeoSessionStore>;
  events: Map<GeoSessionStore, RevokedSession[]>;
  /** Envelopes refused by either process of each region. */
  rejected: Record<string, number>;
}

/** A second store process of `region`: its own clients and transport. */
function secondProcess(d: Deployment, region: string, options: Record<string, unknown>): GeoSessionStore {
  const clients = Object.fromEntries(REGIONS.map((r) => [r, d.servers[r]?.client() as Redis]));
  const store = new GeoSessionStore({
    region,
    client: clients[region] as Redis,
    prefix: d.prefix,
    tombstoneTtl: 600,
    replicateTouchAfter: 0,
    transport: createRedisStreamsTransport({ regions: clients, blockMs: 200, claimIdleMs: 1000 }),
    sealer: 'none',
    ...options,
  });
  store.on('error', () => {});
  return store;
}

async function startProcesses(options: Record<string, unknown> = {}): Promise<Processes> {
  const d = await createDeployment('redis-streams', REGIONS, { store: options });
  const all: GeoSessionStore[] = [];
  const second: Record<string, GeoSessionStore> = {};
  for (const region of REGIONS) {
    all.push(await d.start(region));
    const store = secondProcess(d, region, options);
    await store.ready();
    second[region] = store;
    all.push(store);
  }
  const events = new Map<GeoSessionStore, RevokedSession[]>();
  const rejected: Record<string, number> = { hk: 0, kr: 0 };
  for (const store of all) {
    store.on('rejected', () => {
      rejected[store.region] = (rejected[store.region] ?? 0) + 1;
    });
    const list: RevokedSession[] = [];
    events.set(store, list);
    store.on('revoked', (event) => list.push(event));
  }
  await Promise.all(all.map((s) => s.revocationsReady()));
  return { d, all, second, events, rejected };
}

async function closeProcesses(p: Processes | undefined): Promise<void> {
  if (!p) return;
  for (const store of Object.values(p.second)) await store.close();
  await p.d.close();
}

/** A session saved in `region` and replicated to every region. */
async function liveSession(p: Processes, region: string, user = 'u'): Promise<string> {
  const sid = p.d.store(region).genid();
  await p.d.store(region).set(sid, session({ user }));
  await eventually(async () => {
    for (const r of REGIONS) if ((await p.d.clients[r]?.get(`${p.d.prefix}${sid}`)) == null) return false;
    return true;
  }, WAIT);
  return sid;
}

/** The events of `store` about `sid`. */
function about(p: Processes, store: GeoSessionStore, sid: string): RevokedSession[] {
  return (p.events.get(store) ?? []).filter((e) => e.sid === sid);
}

/** Waits until every process has seen `sid` end. */
async function seenEverywhere(p: Processes, sid: string): Promise<void> {
  await eventually(() => p.all.every((s) => about(p, s, sid).length > 0), WAIT);
}

describe.skipIf(!available)('revocation events, two processes per region over Redis Streams', () => {
  let p: Processes;
  beforeAll(async () => {
    p = await startProcesses();
  });
  afterAll(async () => {
    await closeProcesses(p);
  });

  it('each process of each region receives a destroy made in the other region exactly once', async () => {
    const sid = await liveSession(p, 'hk');
    await (p.second.kr as GeoSessionStore).destroy(sid);
    await seenEverywhere(p, sid);
    // Destroying it again, in either region, ends nothing: no second event anywhere.
    await p.d.store('hk').destroy(sid);
    await p.d.store('kr').destroy(sid);
    // A later ending seen everywhere is the barrier: anything published about `sid` came before it.
    const barrier = await liveSession(p, 'kr');
    await p.d.store('hk').destroy(barrier);
    await seenEverywhere(p, barrier);
    for (const store of p.all) {
      expect(about(p, store, sid)).toEqual([{ sid, userId: undefined, origin: 'kr', reason: 'logout' }]);
      expect(about(p, store, barrier)).toEqual([
        { sid: barrier, userId: undefined, origin: 'hk', reason: 'logout' },
      ]);
    }
  });

  it('a watch fires once, in the other region, with where and why the session ended', async () => {
    const sid = await liveSession(p, 'hk');
    const seen: unknown[] = [];
    const unwatch = (p.second.kr as GeoSessionStore).watch(sid, (ending) => seen.push(ending));
    await (p.second.kr as GeoSessionStore).revocationsReady();
    await p.d.store('hk').destroy(sid);
    await eventually(() => seen.length > 0, WAIT);
    await seenEverywhere(p, sid);
    expect(seen).toEqual([{ sid, userId: undefined, origin: 'hk', reason: 'logout' }]);
    unwatch(); // released already: harmless
  });

  it('a watch of a session that had ended already fires at once (reason missed)', async () => {
    const sid = await liveSession(p, 'hk');
    await p.d.store('hk').destroy(sid);
    await seenEverywhere(p, sid);
    const seen: unknown[] = [];
    p.d.store('kr').watch(sid, (ending) => seen.push(ending));
    await eventually(() => seen.length > 0, WAIT);
    expect(seen).toEqual([{ sid, userId: undefined, origin: undefined, reason: 'missed' }]);
  });

  it('a watch is released by its function and by its signal', async () => {
    const store = p.second.hk as GeoSessionStore;
    const [a, b, c] = [await liveSession(p, 'kr'), await liveSession(p, 'kr'), await liveSession(p, 'kr')];
    const fired: string[] = [];
    const unwatch = store.watch(a, () => fired.push('a'));
    const controller = new AbortController();
    store.watch(b, () => fired.push('b'), { signal: controller.signal });
    store.watch(c, () => fired.push('c'));
    const aborted = new AbortController();
    aborted.abort();
    store.watch(c, () => fired.push('never'), { signal: aborted.signal });
    await store.revocationsReady();
    unwatch();
    controller.abort();
    for (const sid of [a, b, c]) await p.d.store('kr').destroy(sid);
    for (const sid of [a, b, c]) await seenEverywhere(p, sid);
    await eventually(() => fired.length > 0, WAIT);
    expect(fired).toEqual(['c']);
  });
});

describe.skipIf(!available)('revocation events of logout everywhere (userId option)', () => {
  let p: Processes;
  beforeAll(async () => {
    p = await startProcesses({ userId: (s: { user?: string }) => s.user });
  });
  afterAll(async () => {
    await closeProcesses(p);
  });

  it('every process of every region hears each session of the user end, with the user and reason', async () => {
    const sids = [await liveSession(p, 'hk', 'alice'), await liveSession(p, 'kr', 'alice')];
    const kept = await liveSession(p, 'kr', 'alice');
    await eventually(async () => (await p.d.store('hk').sessionsOf('alice')).length === 3, WAIT);
    expect(await p.d.store('hk').logoutEverywhere('alice', { except: kept })).toBe(2);
    for (const sid of sids) await seenEverywhere(p, sid);
    for (const store of p.all) {
      for (const sid of sids) {
        expect(about(p, store, sid)).toEqual([
          { sid, userId: 'alice', origin: 'hk', reason: 'logout-everywhere' },
        ]);
      }
      expect(about(p, store, kept)).toEqual([]);
    }
  });
});

describe.skipIf(!hasRedis)('the subscriber connection', () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const open = (client: Redis) => {
    const store = new GeoSessionStore({ region: 'kr', client, prefix: 'sess:', tombstoneTtl: 600 });
    store.on('error', () => {});
    return store;
  };

  it('is held only while someone listens or watches', async () => {
    const client = server.client();
    const store = open(client);
    const channel = createKeySpace('sess:').revoked('kr');
    const subscribers = async () => Number((await client.pubsub('NUMSUB', channel))[1]);
    expect(await subscribers()).toBe(0);
    const listener = () => {};
    store.on('revoked', listener);
    await store.revocationsReady();
    expect(await subscribers()).toBe(1);
    const unwatch = store.watch(store.genid(), () => {});
    store.off('revoked', listener);
    await store.revocationsReady();
    expect(await subscribers()).toBe(1);
    unwatch();
    await eventually(async () => (await subscribers()) === 0, WAIT);
    store.on('revoked', listener);
    await store.revocationsReady();
    expect(await subscribers()).toBe(1);
    await store.close();
    await eventually(async () => (await subscribers()) === 0, WAIT);
  });

  it('killed (CLIENT KILL), subscribes again, reports the gap and re-checks its watches', async () => {
    // Reconnecting after a second leaves a window in which an ending is missed.
    const kr = open(server.client({ retryStrategy: () => 1000 }));
    const admin = server.client();
    const other = open(admin);
    const gaps: RevocationGap[] = [];
    const events: RevokedSession[] = [];
    kr.on('revocation-gap', (gap) => gaps.push(gap));
    kr.on('revoked', (event) => events.push(event));
    const sid = kr.genid();
    await kr.set(sid, session({ user: 'u' }));
    const watched: unknown[] = [];
    kr.watch(sid, (ending) => watched.push(ending));
    await kr.revocationsReady();
    expect(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBe(1);
    // Ended while the subscriber is away, by another process of the region.
    await other.destroy(sid);
    await eventually(() => gaps.length === 1 && watched.length === 1, WAIT);
    expect(watched).toEqual([{ sid, userId: undefined, origin: undefined, reason: 'missed' }]);
    expect(events).toEqual([]);
    const gap = gaps[0] as RevocationGap;
    expect(gap.until).toBeGreaterThanOrEqual(gap.since);
    // Subscribed again: the next ending arrives.
    const next = kr.genid();
    await kr.set(next, session({ user: 'u' }));
    await other.destroy(next);
    await eventually(() => events.length === 1, WAIT);
    expect(events).toEqual([{ sid: next, userId: undefined, origin: 'kr', reason: 'logout' }]);
    await other.close();
    await kr.close();
  });
});

/** A destroy of `sid` claiming to come from `origin`. */
function forgedDestroy(origin: string, sid: string, versionMs: number) {
  return sessionEnvelope({
    id: `${origin}:forged-destroy-${Math.random()}`,
    origin,
    time: Date.now(),
    sid,
    op: 'destroy',
    version: version(versionMs, 0, origin),
    expiresAt: Date.now() + 3_600_000,
  });
}

for (const sealing of ['unsealed', 'sealed'] as const) {
  describe.skipIf(!available)(`forged destroys (${sealing}) fire nothing`, () => {
    const { key } = generatePasetoKey();
    const sealer = localSealer([key]);
    let p: Processes;
    beforeAll(async () => {
      p = await startProcesses(sealing === 'sealed' ? { sealer } : {});
    });
    afterAll(async () => {
      await closeProcesses(p);
    });

    it('is refused in kr, which fires no revoked event, and genuine destroys still do', async () => {
      const sid = await liveSession(p, 'hk');
      const rejectedBefore = p.rejected.kr ?? 0;
      const skewed = () =>
        p.all
          .filter((s) => s.region === 'kr')
          .reduce((n, s) => n + (s.replicationStats()?.received.skewed ?? 0), 0);
      const skewedBefore = skewed();
      if (sealing === 'sealed') {
        // Sealed with a key kr does not accept, and unsealed: both refused before anything is applied.
        const stranger = localSealer([generatePasetoKey().key]);
        await p.d.inject([await sealed(stranger, [forgedDestroy('hk', sid, Date.now())], 'hk', p.d.prefix)]);
        await p.d.inject([forgedDestroy('hk', sid, Date.now())]);
        await eventually(() => (p.rejected.kr ?? 0) >= rejectedBefore + 2, WAIT);
      } else {
        // Without a sealer anyone may write a change; one claiming a version far ahead is refused.
        await p.d.inject([forgedDestroy('hk', sid, Date.now() + 48 * 3_600_000)], 'outbox');
        await eventually(() => skewed() > skewedBefore, WAIT);
      }
      expect(await p.d.clients.kr?.get(`${p.d.prefix}${sid}`)).not.toBeNull();
      // The barrier: a genuine destroy, seen everywhere, came after the forged one.
      await p.d.store('hk').destroy(sid);
      await seenEverywhere(p, sid);
      for (const store of p.all) {
        expect(about(p, store, sid)).toEqual([{ sid, userId: undefined, origin: 'hk', reason: 'logout' }]);
      }
    });
  });
}
