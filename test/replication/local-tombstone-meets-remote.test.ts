import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSessionId } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { type HorizonPair, startHorizonPair } from '../helpers/horizon-regions.js';
import { readMeta } from '../helpers/meta.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

const WAIT = 20_000;

/**
 * A logout of an id born in kr that kr holds nothing of leaves kr a local tombstone (r = 0) with a
 * version only kr knows. When another region's replicated tombstone of the same id arrives later, kr must
 * take that tombstone's version, not keep its own: its own was never sent, so keeping it (it is newer)
 * left the regions with different tombstones for good (a fault-suite seed: a logout everywhere in hk
 * while sg refused a raced save of the user's session).
 */
describe.skipIf(!hasRedis)('a local tombstone reached by a replicated one', () => {
  let pair: HorizonPair;
  beforeAll(async () => {
    pair = await startHorizonPair(30);
  });
  afterAll(async () => {
    await pair?.stop();
  });

  it('takes the replicated version, so both regions hold the same tombstone', async () => {
    const prefix = uniquePrefix('local-meets-remote');
    const keys = createKeySpace(prefix);
    const { hkClient, krClient, hkServer, krServer, krToHk, hkToKr } = pair;
    const hk = pair.open('hk', prefix, { hk: hkClient, kr: krServer.client({ port: krToHk.port }) });
    const kr = pair.open('kr', prefix, { hk: hkServer.client({ port: hkToKr.port }), kr: krClient });
    await Promise.all([hk.store.ready(), kr.store.ready()]);

    const sid = generateSessionId('kr');
    krToHk.cut();
    hkToKr.cut();
    // hk ends the id first: a replicated tombstone (the id was born elsewhere).
    await hk.store.destroy(sid);
    const remote = await readMeta(hkClient, keys.meta(sid));
    expect(remote.t).toBe('1');
    // kr ends it later, knowing nothing of it: a local tombstone with a newer version of kr's own.
    await new Promise((r) => setTimeout(r, 5));
    await kr.store.destroy(sid);
    const local = await readMeta(krClient, keys.meta(sid));
    expect(local.t).toBe('1');
    const localR = async () => ((await krClient.get(keys.meta(sid))) ?? '').split('|')[3];
    expect(await localR()).toBe('0'); // the local mark: never replicated
    const localUntil = await krClient.pexpiretime(keys.meta(sid));
    expect((local.v ?? '') > (remote.v ?? '~')).toBe(true);

    hkToKr.heal();
    krToHk.heal();
    await eventually(async () => (await localR()) !== '0', WAIT);
    const after = {
      hk: await readMeta(hkClient, keys.meta(sid)),
      kr: await readMeta(krClient, keys.meta(sid)),
    };
    expect(after.kr.t).toBe('1');
    expect(after.kr.v).toBe(remote.v);
    expect(after.hk.v).toBe(remote.v);
    // It still refuses a slow save for as long as the local tombstone would have.
    expect(await krClient.pexpiretime(keys.meta(sid))).toBeGreaterThanOrEqual(localUntil);
    expect(await kr.store.isDestroyed(sid)).toBe(true);
  });
});
