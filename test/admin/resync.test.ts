/**
 * resyncRegion (src/admin/resync.ts) on private redis-servers, with both regions' stores running and
 * replicating over Redis Streams: an emptied region is brought back from another while a writer in
 * each region runs throughout, and ends holding the same sessions key by key, with nothing lost, no
 * logged-out session revived, and `needsResync` cleared in Redis and in the running stores. Also:
 * resuming an interrupted resync, one resync at a time, options checked.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resyncRegion } from '../../src/admin/resync.js';
import { ConfigError, ResyncError } from '../../src/errors.js';
import { classifyFailure } from '../../src/failures/reply-errors.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { differences } from '../helpers/compare-regions.js';
import { eventually, hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';
import { startWriter } from '../helpers/session-writer.js';

const WAIT = 30_000;
const GAP_GRACE_MS = 10_000;
const REGIONS = ['hk', 'kr'] as const;
type Region = (typeof REGIONS)[number];

function session(user: string): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    user,
  } as SessionData;
}

describe.skipIf(!hasRedis)('resyncRegion', () => {
  const servers = {} as Record<Region, PrivateRedis>;
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    for (const r of REGIONS) servers[r] = await startRedis();
  });
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });
  afterAll(async () => {
    for (const s of Object.values(servers)) await s.stop();
  });

  function region(name: Region, prefix: string) {
    const clients = { hk: servers.hk.client(), kr: servers.kr.client() };
    const transport = createRedisStreamsTransport({
      regions: clients,
      blockMs: 200,
      watchdogMs: 1000,
    });
    const store = new GeoSessionStore({
      region: name,
      client: clients[name],
      prefix,
      transport,
      sealer: 'none',
      replicateTouchAfter: 0,
      // Longer than the resync takes: the gap an emptied region sees (numbers it never got) would be
      // reported after the resync, had the handover not recorded that the copy holds them.
      gapGraceMs: GAP_GRACE_MS,
    });
    store.on('error', () => {});
    opened.push(transport, store);
    return { store, client: clients[name] as Redis };
  }

  const admin = (name: Region) => ({ id: name, client: servers[name].client() });
  const stateHash = (client: Redis, prefix: string, name: Region) =>
    client.hgetall(createKeySpace(prefix).internal('state', name));
  const needFields = (fields: Record<string, string>) =>
    Object.keys(fields).filter((f) => f.startsWith('resync:'));

  it('brings an emptied region back under writes in both regions: same sessions, none lost or revived, needs cleared', async () => {
    const prefix = 'rs1:';
    const hk = region('hk', prefix);
    const kr = region('kr', prefix);
    await Promise.all([hk.store.ready(), kr.store.ready()]);

    // Before: sessions born in both regions, some logged out, replicated everywhere.
    const before = { hk: startWriter(hk.store, 'hk', session), kr: startWriter(kr.store, 'kr', session) };
    await eventually(() => before.hk.writes() > 300 && before.kr.writes() > 100, WAIT);
    await Promise.all([before.hk.stop(), before.kr.stop()]);
    await eventually(async () => (await differences(hk.client, kr.client, prefix)).length === 0, WAIT, 200);

    // kr's Redis restarts empty; both regions notice.
    await servers.kr.restart();
    await eventually(() => 'kr' in (kr.store.replicationStats()?.needsResync ?? {}), WAIT, 100);
    await eventually(() => 'kr' in (hk.store.replicationStats()?.needsResync ?? {}), WAIT, 100);
    expect(await kr.client.dbsize()).toBeLessThan(50);

    // Writers in both regions run throughout the resync.
    const during = { hk: startWriter(hk.store, 'hk', session), kr: startWriter(kr.store, 'kr', session) };
    await eventually(() => during.hk.writes() > 50 && during.kr.writes() > 50, WAIT);
    const phases = new Set<string>();
    const result = await resyncRegion({
      target: admin('kr'),
      source: admin('hk'),
      prefix,
      batchSize: 20,
      bothWays: true,
      onProgress: (p) => phases.add(p.phase),
    });
    await eventually(() => during.hk.writes() > 300 && during.kr.writes() > 300, WAIT);
    await Promise.all([during.hk.stop(), during.kr.stop()]);

    expect(result).toMatchObject({ target: 'kr', source: 'hk', phase: 'done', resumed: false });
    expect(result.counts.changed).toBeGreaterThan(300);
    expect(result.counts.malformed + result.counts.skewed).toBe(0);
    expect([...phases]).toEqual(['sessions', 'reverse-sessions', 'done']);
    expect(result.cleared.target).toContain('kr');
    expect(result.cleared.source).toContain('kr');

    // Key by key the same, once the last writes have replicated.
    let diff: string[] = [];
    await eventually(
      async () => {
        diff = await differences(hk.client, kr.client, prefix);
        return diff.length === 0;
      },
      WAIT,
      200,
    ).catch(() => expect(diff.slice(0, 5)).toEqual([]));

    // No session lost, none revived, in either region.
    const live = [...before.hk.live, ...before.kr.live, ...during.hk.live, ...during.kr.live];
    const dead = [...before.hk.dead, ...before.kr.dead, ...during.hk.dead, ...during.kr.dead];
    expect(live.length).toBeGreaterThan(500);
    expect(dead.length).toBeGreaterThan(100);
    for (const store of [hk.store, kr.store]) {
      const gone = (await Promise.all(live.map((sid) => store.get(sid)))).filter((s) => s === null);
      expect(gone.length).toBe(0);
      const revived = (await Promise.all(dead.map((sid) => store.get(sid)))).filter((s) => s !== null);
      expect(revived.length).toBe(0);
    }

    // needsResync cleared in Redis, and the running stores notice without a restart.
    expect(needFields(await stateHash(kr.client, prefix, 'kr'))).toEqual([]);
    expect(needFields(await stateHash(hk.client, prefix, 'hk'))).toEqual([]);
    await eventually(
      () =>
        Object.keys(kr.store.replicationStats()?.needsResync ?? {}).length === 0 &&
        Object.keys(hk.store.replicationStats()?.needsResync ?? {}).length === 0,
      WAIT,
      100,
    );
    // And they stay cleared: no gap is found later for the changes the copy held.
    await new Promise((r) => setTimeout(r, GAP_GRACE_MS + 6000));
    expect(kr.store.replicationStats()?.needsResync).toEqual({});
    expect(needFields(await stateHash(kr.client, prefix, 'kr'))).toEqual([]);
    const record = await kr.client.hgetall(createKeySpace(prefix).resync('kr'));
    expect(record).toMatchObject({ state: 'done', from: 'hk', error: '' });
    expect(Number(record.finishedAt)).toBeGreaterThanOrEqual(Number(record.startedAt));
    expect(Number(record.copied)).toBeGreaterThan(0);
  }, 180_000);

  it('resumes an interrupted resync where it stopped, and holds one resync of a region at a time', async () => {
    const prefix = 'rs2:';
    const hk = admin('hk');
    const kr = admin('kr');
    const keys = createKeySpace(prefix);
    const source = new GeoSessionStore({ region: 'hk', client: hk.client, prefix });
    opened.push(source);
    const sids = Array.from({ length: 400 }, (_, i) => `hk.resume${i}`);
    await Promise.all(sids.map((sid, i) => source.set(sid, session(`u${i}`))));

    const abort = new AbortController();
    let pages = 0;
    const first = resyncRegion({
      target: kr,
      source: hk,
      prefix,
      batchSize: 20,
      signal: abort.signal,
      onProgress: () => {
        if (++pages === 3) abort.abort();
      },
    });
    // While it runs, a second resync of the same region is refused.
    await expect(resyncRegion({ target: kr, source: hk, prefix })).rejects.toBeInstanceOf(ResyncError);
    await expect(first).rejects.toThrow(/aborted/);
    const stopped = await kr.client.hgetall(keys.resync('kr'));
    expect(stopped).toMatchObject({ state: 'failed', from: 'hk', phase: 'sessions' });
    expect(stopped.cursor).not.toBe('0');
    const copiedBefore = Number(stopped.copied);
    expect(copiedBefore).toBeGreaterThan(0);

    const second = await resyncRegion({ target: kr, source: hk, prefix, batchSize: 20 });
    expect(second.resumed).toBe(true);
    expect(second.copied).toBeGreaterThan(copiedBefore);
    expect(await differences(hk.client, kr.client, prefix)).toEqual([]);
    expect(await kr.client.hget(keys.resync('kr'), 'state')).toBe('done');
    // A resync after a finished one starts over (and changes nothing).
    const third = await resyncRegion({ target: kr, source: hk, prefix });
    expect(third).toMatchObject({ resumed: false, counts: { changed: 0, unchanged: 400 } });
  }, 60_000);

  it("goes on where it stopped after a transient failure of the target's Redis (OOM), and gives up after `retries`", async () => {
    const prefix = 'rs5:';
    const hk = admin('hk');
    const kr = admin('kr');
    const keys = createKeySpace(prefix);
    const source = new GeoSessionStore({ region: 'hk', client: hk.client, prefix });
    opened.push(source);
    const sids = Array.from({ length: 300 }, (_, i) => `hk.oom${i}`);
    await Promise.all(sids.map((sid, i) => source.set(sid, session(`u${i}`))));
    const config = servers.kr.client();
    const full = () => config.config('SET', 'maxmemory', '1');
    const room = () => config.config('SET', 'maxmemory', '0');

    try {
      // Without retries the first OOM stops it.
      let pages = 0;
      const failed = await resyncRegion({
        target: kr,
        source: hk,
        prefix,
        batchSize: 20,
        retries: 0,
        onProgress: () => {
          if (++pages === 2) void full();
        },
      }).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(ResyncError);
      // A page's merge (a script) or its record (a MULTI, refused at EXEC) met the OOM first.
      expect(classifyFailure((failed as ResyncError).cause)).toEqual({ kind: 'transient', code: 'OOM' });
      await room();
      // Recording `failed` met the same OOM; the last page recorded is where a later run goes on.
      const stopped = await kr.client.hgetall(keys.resync('kr'));
      expect(stopped).toMatchObject({ from: 'hk', phase: 'sessions' });
      expect(stopped.cursor).not.toBe('0');

      // With them it waits for room and goes on from that cursor, in one call.
      pages = 0;
      const retries: { attempt: number; delayMs: number; error: unknown }[] = [];
      const done = await resyncRegion({
        target: kr,
        source: hk,
        prefix,
        batchSize: 20,
        onProgress: () => {
          if (++pages === 2) {
            void full();
            setTimeout(() => void room(), 700);
          }
        },
        onRetry: (retry) => retries.push(retry),
      });
      expect(done.retries).toBeGreaterThan(0);
      expect(retries.length).toBe(done.retries);
      expect(retries[0]).toMatchObject({ attempt: 1 });
      expect(classifyFailure(retries[0]?.error).code).toBe('OOM');
      expect(await differences(hk.client, kr.client, prefix)).toEqual([]);
      expect(await kr.client.hget(keys.resync('kr'), 'state')).toBe('done');
      // The lock is released: another resync may run.
      expect(await kr.client.exists(keys.resync('kr', 'lock'))).toBe(0);
    } finally {
      await room();
      config.disconnect();
    }
  }, 60_000);

  it('walks a prefix with its own hash tag, through clients with an ioredis keyPrefix', async () => {
    const prefix = '{app}rs3:';
    const options = { keyPrefix: 'tenant1:' };
    const hk = { id: 'hk', client: servers.hk.client(options) };
    const kr = { id: 'kr', client: servers.kr.client(options) };
    const source = new GeoSessionStore({ region: 'hk', client: hk.client, prefix });
    const target = new GeoSessionStore({ region: 'kr', client: kr.client, prefix });
    opened.push(source, target);
    const sids = Array.from({ length: 50 }, (_, i) => `hk.tagged${i}`);
    await Promise.all(sids.map((sid, i) => source.set(sid, session(`u${i}`))));
    await source.destroy('hk.tagged0');
    // A bare value, as connect-redis would leave it.
    await hk.client.set(`${prefix}legacy`, '{"cookie":{"originalMaxAge":null}}');
    const result = await resyncRegion({ target: kr, source: hk, prefix, batchSize: 7 });
    expect(result.counts).toMatchObject({ changed: 51, malformed: 0 });
    for (const sid of sids) expect(await target.get(sid)).toEqual(await source.get(sid));
    expect(await target.get('hk.tagged0')).toBeNull();
    expect(await target.isDestroyed('hk.tagged0')).toBe(true);
    expect(await servers.kr.client().get(`tenant1:${prefix}legacy`)).toBe(
      '{"cookie":{"originalMaxAge":null}}',
    );
  });

  it("copies the users' logout-everywhere marks, so an emptied region refuses what the others refuse", async () => {
    const prefix = 'rs4:';
    const options = { keyPrefix: 'tenant2:' };
    const hk = { id: 'hk', client: servers.hk.client(options) };
    const kr = { id: 'kr', client: servers.kr.client(options) };
    const userId = (s: SessionData) => (s as { user?: string }).user;
    const source = new GeoSessionStore({ region: 'hk', client: hk.client, prefix, userId });
    const target = new GeoSessionStore({ region: 'kr', client: kr.client, prefix, userId });
    opened.push(source, target);
    await source.set('hk.m1', session('mia'));
    expect(await source.logoutEverywhere('mia')).toBe(1);
    const markOf = (client: Redis) => client.hget(createKeySpace(prefix).user('mia'), '|before');
    const mark = await markOf(hk.client);
    expect(mark).toMatch(/^\d+\|\d+\|$/);
    // kr came back empty: no mark. A session of mia's begun before the logout (a save in flight) is kept.
    expect(await markOf(kr.client)).toBeNull();
    await resyncRegion({ target: kr, source: hk, prefix });
    expect(await markOf(kr.client)).toBe(mark);
    // With the mark, kr refuses a save of a session that began before it, as hk does.
    const before = (Number(mark?.split('|')[0]) - 60_000).toString().padStart(15, '0');
    const meta = createKeySpace(prefix, options.keyPrefix).meta('kr.m2');
    await kr.client.set(meta, `0|${before}.0000.kr|${Date.now() + 60_000}|||||`);
    await target.set('kr.m2', session('mia'));
    expect(await target.get('kr.m2')).toBeNull();
    // A second resync, both ways, changes nothing.
    await resyncRegion({ target: kr, source: hk, prefix, bothWays: true });
    expect(await markOf(kr.client)).toBe(mark);
  });

  it('checks its options, naming the one at fault', async () => {
    const hk = admin('hk');
    const bad = [
      [{ target: hk, source: hk }, 'source'],
      [{ target: { id: 'Bad Id', client: hk.client }, source: admin('kr') }, 'target.id'],
      [{ target: hk, source: { id: 'kr', client: {} } }, 'source.client'],
      [{ target: hk, source: admin('kr'), batchSize: 0 }, 'batchSize'],
      [{ target: hk, source: admin('kr'), retries: -1 }, 'retries'],
      [{ target: hk, source: admin('kr'), retries: 1.5 }, 'retries'],
      [{ target: hk, source: admin('kr'), prefix: 'a|b' }, 'prefix'],
    ] as const;
    for (const [options, option] of bad) {
      const error = await resyncRegion(options as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe(option);
    }
  });
});
