/**
 * Real multi-region scenarios: each region is its own private redis-server, and the stores replicate
 * through the Redis Streams transport exactly as separate deployments would (every store gets its own
 * transport instance holding a client of every region). Also read-through to the origin region, a
 * destination region that goes away and catches up, and batches that fail or whose consumer dies.
 * No timing assertions: every wait is a bounded `eventually`.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { ReadThroughError } from '../../src/errors.js';
import { GeoSessionStore, type RefusedWrite, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { changeOfEntry, type SessionState, sessionState } from '../helpers/meta.js';
import { eventually, hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

const WAIT = 20_000;
const MAX_AGE = 3_600_000;

function session(data: Record<string, unknown>, lifeMs = MAX_AGE): SessionData {
  return {
    cookie: { originalMaxAge: MAX_AGE, expires: new Date(Date.now() + lifeMs).toISOString() },
    ...data,
  };
}

/** Everything a region holds for `sid`: value, metadata and both absolute expiries. */
const stateOf = (client: Redis, prefix: string, sid: string) =>
  sessionState(client, createKeySpace(prefix), sid);

/** True when every client holds the same state for `sid` and `accept` holds for it. */
async function converged(
  clients: Redis[],
  prefix: string,
  sid: string,
  accept: (s: SessionState) => boolean,
): Promise<boolean> {
  const states = await Promise.all(clients.map((c) => stateOf(c, prefix, sid)));
  const [first] = states;
  if (!first || !accept(first)) return false;
  return states.every((s) => JSON.stringify(s) === JSON.stringify(first));
}

/** Private servers and a per-test factory of stores, each with its own Redis Streams transport. */
function regionsHarness(names: readonly string[]) {
  const servers: Record<string, PrivateRedis> = {};
  const clients: Record<string, Redis> = {};
  const opened: { store: GeoSessionStore; transport: ReplicationTransport }[] = [];
  const transportErrors: Error[] = [];

  beforeAll(async () => {
    for (const name of names) {
      const server = await startRedis();
      servers[name] = server;
      clients[name] = server.client();
    }
  });

  afterAll(async () => {
    await closeAll();
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  });

  async function closeAll() {
    for (const { store, transport } of opened.splice(0)) {
      await store.close();
      await transport.close();
    }
  }

  function open(
    region: string,
    prefix: string,
    extra: { claimIdleMs?: number } = {},
  ): { store: GeoSessionStore; transport: ReplicationTransport } {
    const transport = createRedisStreamsTransport({
      regions: { ...clients },
      blockMs: 200,
      watchdogMs: 2000,
      trimIntervalMs: 200,
      ...extra,
    });
    transport.on('error', (e) => transportErrors.push(e));
    const store = new GeoSessionStore({
      region,
      client: clients[region] as Redis,
      prefix,
      tombstoneTtl: 600,
      // Exact convergence of expiries needs every touch replicated (the default step is tested apart).
      replicateTouchAfter: 0,
      transport,
      sealer: 'none',
    });
    opened.push({ store, transport });
    return { store, transport };
  }

  async function close(store: GeoSessionStore) {
    const i = opened.findIndex((o) => o.store === store);
    const [entry] = opened.splice(i, 1);
    await entry?.store.close();
    await entry?.transport.close();
  }

  return { servers, clients, open, close, closeAll, transportErrors };
}

describe.skipIf(!hasRedis)('three regions over Redis Streams (private servers)', () => {
  const h = regionsHarness(['hk', 'kr', 'us']);
  const all = () => [h.clients.hk, h.clients.kr, h.clients.us] as Redis[];
  const prefix = 'sess:';
  let hk: GeoSessionStore;
  let kr: GeoSessionStore;
  let us: GeoSessionStore;

  beforeAll(async () => {
    hk = h.open('hk', prefix).store;
    kr = h.open('kr', prefix).store;
    us = h.open('us', prefix).store;
    await Promise.all([hk.ready(), kr.ready(), us.ready()]);
  });

  it('a login in hk is visible in kr and us; an update in kr wins everywhere', async () => {
    const sid = hk.genid();
    await hk.set(sid, session({ user: 'alice', step: 1 }));
    await eventually(async () => (await kr.get(sid))?.step === 1 && (await us.get(sid))?.step === 1, WAIT);
    await eventually(() => converged(all(), prefix, sid, (s) => s.value !== null), WAIT);

    await kr.set(sid, session({ user: 'alice', step: 2 }));
    await eventually(
      () => converged(all(), prefix, sid, (s) => JSON.parse(s.value ?? '{}').step === 2),
      WAIT,
    );
    const final = await stateOf(h.clients.hk as Redis, prefix, sid);
    expect(final.meta.v).toMatch(/\.kr$/);
    expect(final.valueAt).toBe(Number(final.meta.x));
    expect(await hk.get(sid)).toMatchObject({ user: 'alice', step: 2 });
  });

  it('a destroy in us removes the session everywhere, and a later stale set in hk is refused', async () => {
    const sid = hk.genid();
    await hk.set(sid, session({ user: 'bob' }));
    await eventually(async () => (await us.get(sid)) !== null, WAIT);
    await us.destroy(sid);
    await eventually(() => converged(all(), prefix, sid, (s) => s.value === null && s.meta.t === '1'), WAIT);
    for (const store of [hk, kr, us]) expect(await store.get(sid)).toBeNull();

    // A slow request in hk re-saves the session it loaded before the logout.
    const refused: RefusedWrite[] = [];
    hk.on('refused', (r: RefusedWrite) => refused.push(r));
    await hk.set(sid, session({ user: 'bob', stale: true }));
    expect(refused).toEqual([{ op: 'set', sid, reason: 'destroyed' }]);

    // A delayed replica event: hk's original set, replayed into hk's outbox, carries a number kr and us
    // handled already: it is dropped as a duplicate and counted.
    const dropped = (store: GeoSessionStore) => store.replicationStats()?.sequences.hk?.duplicates ?? 0;
    const before = [dropped(kr), dropped(us)];
    const outbox = createKeySpace(prefix).internal('outbox', 'hk');
    const entries = await (h.clients.hk as Redis).xrange(outbox, '-', '+');
    const original = entries.find(([id, f]) => {
      const event = changeOfEntry('hk', id, f);
      return event.sid === sid && event.op === 'set';
    });
    expect(original).toBeDefined();
    await (h.clients.hk as Redis).xadd(outbox, '*', ...(original?.[1] ?? []));
    await eventually(() => dropped(kr) > (before[0] ?? 0) && dropped(us) > (before[1] ?? 0), WAIT);
    expect(await converged(all(), prefix, sid, (s) => s.value === null && s.meta.t === '1')).toBe(true);
    hk.removeAllListeners('refused');
  });

  it('concurrent touches in every region converge to the latest expiry', async () => {
    const sid = hk.genid();
    const data = { user: 'carol' };
    await hk.set(sid, session(data));
    await eventually(async () => (await kr.get(sid)) !== null && (await us.get(sid)) !== null, WAIT);
    // Touches within the session's maxAge, made at different moments: kr's, made last, reaches furthest.
    const touch = () => ({
      cookie: { originalMaxAge: MAX_AGE, expires: new Date(Date.now() + MAX_AGE).toISOString() },
    });
    await hk.touch(sid, touch());
    await new Promise((r) => setTimeout(r, 20));
    await us.touch(sid, touch());
    await new Promise((r) => setTimeout(r, 20));
    const before = Date.now();
    await kr.touch(sid, touch());
    const krAt = Number((await stateOf(h.clients.kr as Redis, prefix, sid)).meta.x);
    expect(krAt).toBeGreaterThanOrEqual(before + MAX_AGE);
    await eventually(
      () => converged(all(), prefix, sid, (s) => s.valueAt === krAt && s.metaAt === krAt),
      WAIT,
    );
    // The value was never rewritten by a touch.
    expect(JSON.parse((await (h.clients.us as Redis).get(prefix + sid)) ?? '{}')).toMatchObject(data);
  });

  it('a destination region that goes away catches up on everything, and its backlog is never trimmed', async () => {
    await h.close(kr);
    const sids = Array.from({ length: 60 }, () => hk.genid());
    for (const [i, sid] of sids.entries()) await hk.set(sid, session({ n: i }));
    await eventually(async () => (await us.get(sids.at(-1) as string)) !== null, WAIT);
    // Several trim rounds of hk's outbox pass (us keeps consuming) while kr is away.
    const hkc = h.clients.hk as Redis;
    const outbox = createKeySpace(prefix).internal('outbox', 'hk');
    await new Promise((r) => setTimeout(r, 1000));
    const groups = (await hkc.xinfo('GROUPS', outbox)) as unknown[][];
    const krGroup = groups.map((row) => Object.fromEntries(chunk(row))).find((g) => g.name === 'kr');
    const krSeen = String(krGroup?.['last-delivered-id']);
    const kept = await hkc.xrange(outbox, `(${krSeen}`, '+');
    const keptSids = new Set(kept.map(([id, f]) => changeOfEntry('hk', id, f).sid));
    for (const sid of sids) expect(keptSids.has(sid), `${sid} trimmed before kr read it`).toBe(true);

    kr = h.open('kr', prefix).store;
    await kr.ready();
    await eventually(async () => {
      const got = await Promise.all(sids.map((sid) => (h.clients.kr as Redis).get(prefix + sid)));
      return got.every((v) => v !== null);
    }, WAIT);
    for (const [i, sid] of sids.entries()) expect(await kr.get(sid)).toMatchObject({ n: i });
    for (const sid of sids.slice(0, 5)) {
      await eventually(() => converged(all(), prefix, sid, (s) => s.value !== null), WAIT);
    }
    // Once kr has consumed them, hk's outbox may be trimmed below them.
    await eventually(async () => (await hkc.xlen(outbox)) < sids.length, WAIT);
  });

  it('a stalled destination Redis (SIGSTOP) delays replication but loses nothing', async () => {
    const sids = Array.from({ length: 30 }, () => hk.genid());
    h.servers.kr?.pause();
    try {
      for (const [i, sid] of sids.entries()) await hk.set(sid, session({ n: i, stalled: 'kr' }));
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      h.servers.kr?.resume();
    }
    await eventually(async () => {
      const got = await Promise.all(sids.map((sid) => (h.clients.kr as Redis).get(prefix + sid)));
      return got.every((v) => v !== null);
    }, WAIT);
    for (const sid of sids)
      await eventually(() => converged(all(), prefix, sid, (s) => s.value !== null), WAIT);
  });

  it('a stalled origin Redis (SIGSTOP past the read watchdog) resumes delivery afterwards', async () => {
    h.servers.hk?.pause();
    try {
      // Longer than blockMs + watchdogMs (200 + 2000): the readers of hk's outbox rebuild their connections.
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      h.servers.hk?.resume();
    }
    const sid = hk.genid();
    await hk.set(sid, session({ user: 'after-stall' }));
    await eventually(() => converged(all(), prefix, sid, (s) => s.value !== null), WAIT);
    expect(await kr.get(sid)).toMatchObject({ user: 'after-stall' });
  });

  it('a change that fails to apply on its own is refused and dead-lettered; the rest of its batch flows', async () => {
    await h.close(kr);
    const sids = Array.from({ length: 20 }, () => hk.genid());
    const bad = sids[7] as string;
    // One session's metadata key in kr is not a string: its apply fails with WRONGTYPE whatever the
    // order or the retry. It must not hold up the others (poison never blocks).
    await (h.clients.kr as Redis).hset(createKeySpace(prefix).meta(bad), 'in', 'the way');
    for (const [i, sid] of sids.entries()) await hk.set(sid, session({ n: i }));
    kr = h.open('kr', prefix).store;
    const errors: Error[] = [];
    kr.on('error', (e) => errors.push(e));
    await kr.ready();
    await eventually(async () => (await kr.get(sids.at(-1) as string)) !== null, WAIT);
    for (const [i, sid] of sids.entries()) {
      if (sid === bad) expect(await (h.clients.kr as Redis).get(prefix + bad)).toBeNull();
      else expect(await kr.get(sid)).toMatchObject({ n: i });
    }
    const stats = kr.replicationStats();
    expect(stats?.rejected.poison).toBe(1);
    expect((stats?.received.applied ?? 0) + (stats?.received.unchanged ?? 0)).toBeGreaterThanOrEqual(
      sids.length - 1,
    );
    const [letter] = await kr.deadLetters(10);
    expect(letter).toMatchObject({ reason: 'poison', origin: 'hk', kind: 'session' });
    expect(letter?.body).toContain(bad);
    expect(letter?.error).toMatch(/WRONGTYPE/);
    expect(errors.some((e) => /WRONGTYPE/.test(e.message))).toBe(true);
    // Once the key is repaired, the next write of that session replicates as usual.
    await (h.clients.kr as Redis).del(createKeySpace(prefix).meta(bad));
    await hk.set(bad, session({ n: 'again' }));
    await eventually(async () => (await kr.get(bad)) !== null, WAIT);
  });

  it('entries left pending by a consumer that died are claimed by the next one (XAUTOCLAIM)', async () => {
    await h.close(kr);
    const sids = Array.from({ length: 15 }, () => hk.genid());
    for (const [i, sid] of sids.entries()) await hk.set(sid, session({ n: i, died: true }));
    // A kr process reads the batch (as the kr group) and dies before acknowledging it.
    const hkc = h.clients.hk as Redis;
    const outbox = createKeySpace(prefix).internal('outbox', 'hk');
    const read = (await hkc.xreadgroup(
      'GROUP',
      'kr',
      'kr:dead-host:1',
      'COUNT',
      1000,
      'STREAMS',
      outbox,
      '>',
    )) as [string, [string, string[]][]][] | null;
    const taken = read?.[0]?.[1] ?? [];
    expect(taken.length).toBeGreaterThanOrEqual(sids.length);
    expect((await (h.clients.kr as Redis).get(prefix + sids[0])) === null).toBe(true);

    kr = h.open('kr', prefix, { claimIdleMs: 500 }).store;
    await kr.ready();
    await eventually(async () => {
      const got = await Promise.all(sids.map((sid) => (h.clients.kr as Redis).get(prefix + sid)));
      return got.every((v) => v !== null);
    }, WAIT);
    for (const [i, sid] of sids.entries()) expect(await kr.get(sid)).toMatchObject({ n: i, died: true });
    // Nothing stays pending for kr.
    await eventually(async () => Number(((await hkc.xpending(outbox, 'kr')) as [number])[0]) === 0, WAIT);
  });
});

describe.skipIf(!hasRedis)('read-through to the origin region', () => {
  let hkServer: PrivateRedis;
  let krServer: PrivateRedis;
  let hkClient: Redis;
  let krClient: Redis;
  const prefix = 'rt:';
  const stores: GeoSessionStore[] = [];

  beforeAll(async () => {
    hkServer = await startRedis();
    krServer = await startRedis();
    hkClient = hkServer.client();
    krClient = krServer.client();
  });

  afterAll(async () => {
    hkServer.resume();
    await Promise.all(stores.map((s) => s.close()));
    await hkServer.stop();
    await krServer.stop();
  });

  function store(options: Partial<ConstructorParameters<typeof GeoSessionStore>[0]> & { region: string }) {
    const s = new GeoSessionStore({
      client: options.region === 'hk' ? hkClient : krClient,
      prefix,
      ...options,
    });
    stores.push(s);
    return s;
  }

  it("kr returns a session just written in hk although kr's replication is stopped", async () => {
    const hk = store({ region: 'hk' });
    const kr = store({ region: 'kr', remotes: { hk: hkClient } });
    const sid = hk.genid();
    await hk.set(sid, session({ user: 'dora' }));
    expect(await krClient.get(prefix + sid)).toBeNull();
    expect(await kr.get(sid)).toMatchObject({ user: 'dora' });
    // An id born elsewhere (or not by genid) is never read through.
    expect(await kr.get(`us.${sid.slice(3)}`)).toBeNull();
    await hkClient.set(`${prefix}legacy`, JSON.stringify(session({ user: 'old' })));
    expect(await kr.get('legacy')).toBeNull();
  });

  it('a tombstone in kr blocks read-through', async () => {
    const hk = store({ region: 'hk' });
    const kr = store({ region: 'kr', remotes: { hk: hkClient } });
    const sid = hk.genid();
    await hk.set(sid, session({ user: 'erin' }));
    expect(await kr.get(sid)).not.toBeNull();
    await kr.destroy(sid);
    expect(await hkClient.get(prefix + sid)).not.toBeNull();
    expect(await kr.get(sid)).toBeNull();
  });

  it('a read-through that times out is a miss and an error event, not a failure', async () => {
    const hk = store({ region: 'hk' });
    const sid = hk.genid();
    await hk.set(sid, session({ user: 'finn' }));
    const kr = store({ region: 'kr', remotes: { hk: hkClient }, readThroughTimeoutMs: 150 });
    const errors: Error[] = [];
    kr.on('error', (e: Error) => errors.push(e));
    hkServer.pause();
    try {
      expect(await kr.get(sid)).toBeNull();
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors[0]).toBeInstanceOf(ReadThroughError);
      expect((errors[0] as ReadThroughError).region).toBe('hk');
      // The local store keeps working meanwhile.
      const local = kr.genid();
      await kr.set(local, session({ user: 'local' }));
      expect(await kr.get(local)).toMatchObject({ user: 'local' });
    } finally {
      hkServer.resume();
    }
    await eventually(async () => (await kr.get(sid)) !== null, WAIT);
  });
});

function chunk(row: unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < row.length; i += 2) out.push([String(row[i]), row[i + 1]]);
  return out;
}
