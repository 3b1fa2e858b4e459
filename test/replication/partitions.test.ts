import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResyncNeededError } from '../../src/errors.js';
import { createKeySpace } from '../../src/keys.js';
import { type HorizonPair, sessionFor, startHorizonPair } from '../helpers/horizon-regions.js';
import { readMeta, sessionState } from '../helpers/meta.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

/** The stale-event horizon of this test, in seconds (tombstoneTtl). */
const HORIZON_S = 2;
const WAIT = 20_000;

describe.skipIf(!hasRedis)('a logout across a partition longer than the stale-event horizon', () => {
  let pair: HorizonPair;
  beforeAll(async () => {
    pair = await startHorizonPair(HORIZON_S);
  });
  afterAll(async () => {
    await pair?.stop();
  });

  it('ends destroyed in both regions, equal, with the stale set refused and counted and a resync flagged', async () => {
    const prefix = uniquePrefix('partition');
    const keys = createKeySpace(prefix);
    // hk reaches kr's Redis through the proxy: cutting it cuts kr→hk only.
    const { hkClient, krClient, hkServer, krServer, krToHk: proxy } = pair;
    const hk = pair.open('hk', prefix, { hk: hkClient, kr: krServer.client({ port: proxy.port }) });
    const kr = pair.open('kr', prefix, { hk: hkServer.client(), kr: krClient });
    await Promise.all([hk.store.ready(), kr.store.ready()]);

    const sid = hk.store.genid();
    await hk.store.set(sid, sessionFor(2500, { user: 'alice' }));
    await eventually(async () => (await kr.store.get(sid)) !== null, WAIT);

    proxy.cut();
    // kr re-saves it with 8 s to live ("remember me"); hk cannot hear of it.
    await kr.store.set(sid, sessionFor(8000, { user: 'alice', remember: true }));
    const resavedAt = Date.now();
    await hk.store.destroy(sid);
    // The logout reaches kr (hk→kr works): logged out there, its tombstone as long as kr's 8 s.
    await eventually(async () => (await readMeta(krClient, keys.meta(sid))).t === '1', WAIT);
    expect(await kr.store.get(sid)).toBeNull();

    // The link heals only after hk's tombstone is gone, and kr's set is older than the horizon.
    await eventually(async () => (await hkClient.exists(keys.meta(sid))) === 0, WAIT);
    const pastHorizon = resavedAt + HORIZON_S * 1000 + 200 - Date.now();
    if (pastHorizon > 0) await new Promise((r) => setTimeout(r, pastHorizon));
    expect(hk.store.replicationStats()?.received.stale).toBe(0);
    proxy.heal();

    // kr's delayed set arrives in hk: refused as stale and counted, never applied.
    await eventually(() => (hk.store.replicationStats()?.received.stale ?? 0) >= 1, WAIT);
    expect(await hkClient.get(keys.session(sid))).toBeNull();
    expect(await hk.store.get(sid)).toBeNull();
    expect(await kr.store.get(sid)).toBeNull();

    // hk was cut off from kr for longer than the horizon: it needs a resync with kr, reported once.
    const hkStats = hk.store.replicationStats();
    expect(Object.keys(hkStats?.needsResync ?? {})).toEqual(['kr']);
    const resyncs = hk.errors.filter((e) => e instanceof ResyncNeededError);
    expect(resyncs).toHaveLength(1);
    expect(resyncs[0]).toMatchObject({ code: 'ERR_GEOSESSION_RESYNC_NEEDED', region: 'kr' });
    // kr heard everything hk sent in time: nothing to resync on its side.
    expect(kr.store.replicationStats()?.needsResync).toEqual({});

    // Once kr's tombstone (as long as the 8 s it knew) has expired too, the regions hold the same: nothing.
    await eventually(async () => {
      const [a, b] = await Promise.all([
        sessionState(hkClient, keys, sid),
        sessionState(krClient, keys, sid),
      ]);
      return a.value === null && JSON.stringify(a) === JSON.stringify(b) && b.metaAt === -2;
    }, WAIT);
    expect(await hk.store.get(sid)).toBeNull();
    expect(await kr.store.get(sid)).toBeNull();
    // And the session never came back in hk meanwhile.
    expect(hk.store.replicationStats()?.received.applied ?? 0).toBe(0);
  });
});
