import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { type HorizonPair, sessionFor, startHorizonPair } from '../helpers/horizon-regions.js';
import { readMeta } from '../helpers/meta.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

/** The stale-event horizon of this test, in seconds (tombstoneTtl). */
const HORIZON_S = 4;
const WAIT = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

describe.skipIf(!hasRedis)('a set that raced a logout and arrives almost a horizon late', () => {
  let pair: HorizonPair;
  beforeAll(async () => {
    pair = await startHorizonPair(HORIZON_S);
  });
  afterAll(async () => {
    await pair?.stop();
  });

  it('is refused by the tombstone, the regions end destroyed, and the late region is flagged', async () => {
    const prefix = uniquePrefix('roundtrip');
    const keys = createKeySpace(prefix);
    const { hkClient, krClient, hkServer, krServer, krToHk, hkToKr } = pair;
    const hk = pair.open('hk', prefix, { hk: hkClient, kr: krServer.client({ port: krToHk.port }) });
    const kr = pair.open('kr', prefix, { hk: hkServer.client({ port: hkToKr.port }), kr: krClient });
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

    // kr has not heard of the logout: it re-saves the session ("remember me"). The later in the horizon,
    // the longer the set has, after the link heals, to reach hk while still inside its own horizon: half a
    // second before the heal leaves it 3.35 s (a loaded CI machine once needed more than 1.35 s).
    await sleep(loggedOutAt + HORIZON_S * 1000 - 500 - Date.now());
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
