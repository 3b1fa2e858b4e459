/**
 * Logout is final for a set that raced it and arrives almost a horizon late (issue 11, "logout is final
 * after any partition"; DESIGN.md §3).
 *
 * Both links are cut (each region reads the other's outbox through a TCP proxy). hk has a short session
 * and destroys it; kr, which has not heard of the logout, re-saves it 600 ms later with 8 s to live. The
 * kr→hk link heals a little past one horizon after the logout: kr's set is then younger than the
 * horizon, so it is not stale, while a tombstone that lived only one horizon (as before) is gone, so
 * the set revived the session in hk and no region noticed anything. With tombstones living two
 * horizons the set meets the tombstone and is refused. The hk→kr link heals after that: the logout, now
 * older than the horizon, still applies in kr, and kr (cut off from hk for longer than the horizon) is
 * flagged as needing a resync. The session ends destroyed in both regions.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { openHorizonRegion, sessionFor } from '../helpers/horizon-regions.js';
import { readMeta } from '../helpers/meta.js';
import { eventually, hasRedis, type PrivateRedis, startRedis, uniquePrefix } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/** The stale-event horizon of this test, in seconds (tombstoneTtl). */
const HORIZON_S = 2;
const WAIT = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

describe.skipIf(!hasRedis)('a set that raced a logout and arrives almost a horizon late', () => {
  let hkServer: PrivateRedis;
  let krServer: PrivateRedis;
  /** hk reads kr's outbox through this one: cutting it cuts kr→hk. */
  let krToHk: TcpProxy;
  /** kr reads hk's outbox through this one: cutting it cuts hk→kr. */
  let hkToKr: TcpProxy;
  let hkClient: Redis;
  let krClient: Redis;
  const closing: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    hkServer = await startRedis();
    krServer = await startRedis();
    krToHk = await startTcpProxy(krServer.port);
    hkToKr = await startTcpProxy(hkServer.port);
    hkClient = hkServer.client();
    krClient = krServer.client();
  });

  afterAll(async () => {
    for (const o of closing.splice(0).reverse()) await o.close();
    await krToHk?.close();
    await hkToKr?.close();
    await hkServer?.stop();
    await krServer?.stop();
  });

  function open(region: 'hk' | 'kr', prefix: string, regions: Record<string, Redis>) {
    const opened = openHorizonRegion(
      region,
      region === 'hk' ? hkClient : krClient,
      prefix,
      regions,
      HORIZON_S,
    );
    closing.push(opened);
    return opened;
  }

  it('is refused by the tombstone, the regions end destroyed, and the late region is flagged', async () => {
    const prefix = uniquePrefix('roundtrip');
    const keys = createKeySpace(prefix);
    const hk = open('hk', prefix, { hk: hkClient, kr: krServer.client({ port: krToHk.port }) });
    const kr = open('kr', prefix, { hk: hkServer.client({ port: hkToKr.port }), kr: krClient });
    await Promise.all([hk.store.ready(), kr.store.ready()]);

    // A short session (its expiry is well inside the tombstone's life), known to both regions.
    const sid = hk.store.genid();
    await hk.store.set(sid, sessionFor(1000, { user: 'alice' }));
    await eventually(async () => (await kr.store.get(sid)) !== null, WAIT);

    krToHk.cut();
    hkToKr.cut();
    await hk.store.destroy(sid);
    const loggedOutAt = Date.now();
    const tombstone = await readMeta(hkClient, keys.meta(sid));
    expect(tombstone.t).toBe('1');
    // Two horizons, not one (give the clock a second of slack).
    expect(await hkClient.pttl(keys.meta(sid))).toBeGreaterThan((2 * HORIZON_S - 1) * 1000);

    // kr has not heard of the logout: it re-saves the session ("remember me").
    await sleep(600);
    await kr.store.set(sid, sessionFor(8000, { user: 'alice', remember: true }));
    const resavedAt = Date.now();

    // kr→hk heals past one horizon after the logout, while kr's set is still inside the horizon.
    await sleep(loggedOutAt + HORIZON_S * 1000 + 150 - Date.now());
    krToHk.heal();
    await eventually(() => {
      const r = hk.store.replicationStats()?.received;
      return (r?.applied ?? 0) + (r?.refused ?? 0) + (r?.stale ?? 0) + (r?.unchanged ?? 0) >= 1;
    }, WAIT);
    // The set reached hk before it was older than the horizon (else this run proves nothing: too slow).
    expect(Date.now() - resavedAt).toBeLessThan(HORIZON_S * 1000);
    expect(hk.store.replicationStats()?.received).toMatchObject({ applied: 0, refused: 1, stale: 0 });
    expect(await hkClient.get(keys.session(sid))).toBeNull();
    expect(await hk.store.get(sid)).toBeNull();

    // hk→kr heals: the logout, older than the horizon, still ends the session in kr.
    hkToKr.heal();
    await eventually(async () => (await readMeta(krClient, keys.meta(sid))).t === '1', WAIT);
    expect(await kr.store.get(sid)).toBeNull();
    expect(await hk.store.get(sid)).toBeNull();
    // kr was cut off from hk for longer than the horizon: flagged. hk heard kr in time: not.
    await eventually(() => Object.keys(kr.store.replicationStats()?.needsResync ?? {}).includes('hk'), WAIT);
    expect(hk.store.replicationStats()?.needsResync).toEqual({});
    expect(hk.store.replicationStats()?.received.applied ?? 0).toBe(0);
  });
});
