/**
 * Read-through that cannot be turned against the region (issue 11, "read-through under a flood or a
 * stalled remote"). kr reads ids born in hk from hk's Redis on a local miss; hk's remote GETs are counted
 * with INFO commandstats on hk's private redis-server (nothing else sends GET there).
 * Before: 2,000 unknown ids cost 2,000 remote GETs, the same id read concurrently cost one remote GET
 * per read, and a stalled remote emitted one `error` event per request (400 of 400).
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReadThroughError } from '../../src/errors.js';
import { DEFAULT_OPTIONS, GeoSessionStore, generateSessionId, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { Applier } from '../../src/replication/applier.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { changeOfEntry, readMeta } from '../helpers/meta.js';
import { hasRedis, type PrivateRedis, startRedis, uniquePrefix } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

function session(data: Record<string, unknown>): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    ...data,
  };
}

/**
 * Remote reads hk's Redis has answered since the last CONFIG RESETSTAT: GETs (scripts' own count too)
 * and MGETs (read-through reads value and metadata in one).
 */
async function remoteGets(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const match of info.matchAll(/cmdstat_m?get:calls=(\d+)/g)) calls += Number(match[1]);
  return calls;
}

describe.skipIf(!hasRedis)('read-through under a flood or a stalled remote (private servers)', () => {
  let hkServer: PrivateRedis;
  let krServer: PrivateRedis;
  let slowLink: TcpProxy;
  let admin: Redis;
  let hkClient: Redis;
  let krClient: Redis;
  const stores: GeoSessionStore[] = [];

  beforeAll(async () => {
    hkServer = await startRedis();
    krServer = await startRedis();
    // A long link to hk, so that reads of one id are surely concurrent with its remote GET.
    slowLink = await startTcpProxy(hkServer.port, '127.0.0.1', { delayMs: 50 });
    admin = hkServer.client();
    hkClient = hkServer.client();
    krClient = krServer.client();
  });
  afterEach(async () => {
    hkServer.resume();
    for (const s of stores.splice(0)) await s.close();
  });
  afterAll(async () => {
    await slowLink?.close();
    await hkServer?.stop();
    await krServer?.stop();
  });

  /** hk writes sessions without replication (so they stay in hk); kr reads through to `remote`. */
  function regions(prefix: string, kr: Partial<ConstructorParameters<typeof GeoSessionStore>[0]> = {}) {
    const hk = new GeoSessionStore({ region: 'hk', client: hkClient, prefix });
    const krStore = new GeoSessionStore({
      region: 'kr',
      client: krClient,
      prefix,
      remotes: { hk: hkClient },
      ...kr,
    });
    stores.push(hk, krStore);
    return { hk, kr: krStore };
  }

  it('concurrent reads of one id share one remote GET (found or not)', async () => {
    const prefix = uniquePrefix('rt-share');
    const remote = hkServer.client({ port: slowLink.port });
    const { hk, kr } = regions(prefix, { remotes: { hk: remote }, readThroughTimeoutMs: 5000 });
    const sid = hk.genid();
    await hk.set(sid, session({ user: 'alice' }));
    const unknown = generateSessionId('hk');

    await admin.config('RESETSTAT');
    const found = await Promise.all(Array.from({ length: 50 }, () => kr.get(sid)));
    expect(found.every((s) => s?.user === 'alice')).toBe(true);
    expect(await remoteGets(admin)).toBe(1);

    await admin.config('RESETSTAT');
    const missing = await Promise.all(Array.from({ length: 50 }, () => kr.get(unknown)));
    expect(missing.every((s) => s === null)).toBe(true);
    expect(await remoteGets(admin)).toBe(1);
  });

  it('2,000 reads of unknown ids in one window cost at most one remote GET per id', async () => {
    const prefix = uniquePrefix('rt-flood');
    const { kr } = regions(prefix, { readThroughNegativeTtlMs: 60_000 });
    const ids = Array.from({ length: 200 }, () => generateSessionId('hk'));
    await admin.config('RESETSTAT');
    for (let round = 0; round < 10; round++) {
      const got = await Promise.all(ids.map((sid) => kr.get(sid)));
      expect(got.every((s) => s === null)).toBe(true);
    }
    expect(await remoteGets(admin)).toBeLessThanOrEqual(ids.length);
  });

  it('an unknown id is remembered for readThroughNegativeTtlMs (short by default), then asked again', async () => {
    expect(DEFAULT_OPTIONS.readThroughNegativeTtlMs).toBeLessThan(1000);
    const prefix = uniquePrefix('rt-window');
    const { hk, kr } = regions(prefix, { readThroughNegativeTtlMs: 100 });
    const sid = generateSessionId('hk');
    await admin.config('RESETSTAT');
    expect(await kr.get(sid)).toBeNull();
    expect(await remoteGets(admin)).toBe(1);
    // Born in hk meanwhile (its replication is slow): once the window has passed, kr finds it.
    await hk.set(sid, session({ user: 'late' }));
    await new Promise((r) => setTimeout(r, 300));
    await admin.config('RESETSTAT'); // hk's own write ran GETs in its script
    expect(await kr.get(sid)).toMatchObject({ user: 'late' });
    expect(await remoteGets(admin)).toBe(1);
  });

  it('a local write or destroy forgets at once that an id was missing', async () => {
    const prefix = uniquePrefix('rt-forget');
    const keys = createKeySpace(prefix);
    const { hk, kr } = regions(prefix, { readThroughNegativeTtlMs: 60_000 });

    // A write: kr remembers the id as missing, then writes it itself. Once its own copy is gone
    // (clear(), an expiry), the remote is asked again at once and has it.
    const written = generateSessionId('hk');
    expect(await kr.get(written)).toBeNull();
    await hk.set(written, session({ user: 'from-hk' }));
    expect(await kr.get(written)).toBeNull(); // still remembered as missing: no remote GET
    await kr.set(written, session({ user: 'from-kr' }));
    await kr.clear();
    await admin.config('RESETSTAT');
    expect(await kr.get(written)).toMatchObject({ user: 'from-hk' });
    expect(await remoteGets(admin)).toBe(1);

    // A destroy: same, once its tombstone is gone.
    const destroyed = generateSessionId('hk');
    expect(await kr.get(destroyed)).toBeNull();
    await hk.set(destroyed, session({ user: 'from-hk' }));
    await kr.destroy(destroyed);
    expect(await kr.get(destroyed)).toBeNull(); // the tombstone stands
    await krClient.del(keys.meta(destroyed)); // as when it expires
    expect(await kr.get(destroyed)).toMatchObject({ user: 'from-hk' });
  });

  it('a stalled remote: every request ends within readThroughTimeoutMs, at most one error a second', async () => {
    const prefix = uniquePrefix('rt-stall');
    const timeoutMs = 200;
    const { kr } = regions(prefix, { readThroughTimeoutMs: timeoutMs });
    const errors: Error[] = [];
    kr.on('error', (e) => errors.push(e));
    hkServer.pause();
    const durations: number[] = [];
    const started = Date.now();
    // 8 waves of 50 concurrent reads of ids born in hk: 400 requests over well over a second.
    for (let wave = 0; wave < 8; wave++) {
      const got = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const t0 = Date.now();
          const s = await kr.get(generateSessionId('hk'));
          durations.push(Date.now() - t0);
          return s;
        }),
      );
      expect(got.every((s) => s === null)).toBe(true);
    }
    const elapsed = Date.now() - started;
    hkServer.resume();

    // The bound: each request ends within readThroughTimeoutMs (plus its local round trips on a
    // busy 2-vCPU machine).
    expect(Math.max(...durations)).toBeLessThan(timeoutMs + 300);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeLessThanOrEqual(Math.floor(elapsed / 1000) + 1);
    for (const e of errors) {
      expect(e).toBeInstanceOf(ReadThroughError);
      expect(e).toMatchObject({ code: 'ERR_GEOSESSION_READ_THROUGH', region: 'hk' });
    }
    // The reports after the first count what they held back.
    const later = errors.slice(1) as ReadThroughError[];
    expect(later.length).toBeGreaterThanOrEqual(1);
    expect(later.every((e) => e.suppressed > 0)).toBe(true);
    const reported = errors.length + later.reduce((n, e) => n + e.suppressed, 0);
    expect(reported).toBeLessThanOrEqual(400);
  });

  it('stores what it read with the origin’s version, so an unchanged re-save is a touch, not a new version', async () => {
    // Before: kr served hk's session with no local metadata, so express-session's unchanged re-save
    // (resave, rolling) wrote a new kr version, which replicated and overwrote a change made at hk
    // meanwhile.
    const prefix = uniquePrefix('rt-version');
    const keys = createKeySpace(prefix);
    const outbox = keys.internal('outbox', 'kr');
    const { hk, kr } = regions(prefix, {
      transport: createMemoryTransport(),
      sealer: 'none',
      replicateTouchAfter: 0,
    });
    const sid = hk.genid();
    const first = session({ user: 'alice', n: 1 });
    await hk.set(sid, first);
    const origin = await readMeta(hkClient, keys.meta(sid));

    // kr serves it from hk and keeps it with hk's version, expiry, rule and fingerprint.
    const served = (await kr.get(sid)) as SessionData;
    expect(served).toEqual(first);
    const local = await readMeta(krClient, keys.meta(sid));
    expect(local).toMatchObject({ v: origin.v, x: origin.x, l: origin.l, f: origin.f });
    expect(await krClient.get(keys.session(sid))).toBe(await hkClient.get(keys.session(sid)));

    // hk changes it; kr, not yet told, re-saves what it served with a later cookie (a rolling save).
    await hk.set(sid, session({ user: 'alice', n: 2 }));
    const changed = await readMeta(hkClient, keys.meta(sid));
    expect((changed.v as string) > (origin.v as string)).toBe(true);
    const cookie = { ...served.cookie, expires: new Date(Date.now() + 3_600_000).toISOString() };
    await kr.set(sid, { ...served, cookie } as SessionData);

    // That was a touch of hk's first version: kr made no version and sent no set.
    expect((await readMeta(krClient, keys.meta(sid))).v).toBe(origin.v);
    const sent = (await krClient.xrange(outbox, '-', '+')).map(([id, fields]) =>
      changeOfEntry('kr', id, fields),
    );
    expect(sent.filter((e) => e.sid === sid).map((e) => [e.op, e.version])).toEqual([['touch', origin.v]]);

    // Delivered to hk, it leaves hk's change in place.
    const applier = new Applier({
      client: hkClient,
      keys,
      horizonMs: 86_400_000,
      maxSkewMs: 60_000,
      timeoutMs: 2000,
    });
    await applier.apply(sent.filter((e) => e.sid === sid));
    expect(await hk.get(sid)).toMatchObject({ n: 2 });
    expect((await readMeta(hkClient, keys.meta(sid))).v).toBe(changed.v);
  });
});
