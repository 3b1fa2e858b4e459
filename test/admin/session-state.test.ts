/**
 * The copy primitive (src/admin/session-state.ts): a copy of one region's sessions into another follows
 * the applier's join, so it leaves the target holding the source's state key by key, is idempotent,
 * never revives a session logged out in the target, keeps a newer write of the target, and refuses bad
 * input without failing the batch.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { copySessionStates, readSessionStates } from '../../src/admin/session-state.js';
import { createKeySpace } from '../../src/keys.js';
import { formatMeta, parseMeta } from '../../src/redis/meta.js';
import { GeoSessionStore } from '../../src/session/store.js';
import type { SessionData } from '../../src/types.js';
import { hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

const prefix = 'sess:';
const keys = createKeySpace(prefix);

describe.skipIf(!hasRedis)('copySessionStates', () => {
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  let hkClient: Redis;
  let krClient: Redis;
  let source: GeoSessionStore;
  let target: GeoSessionStore;

  beforeAll(async () => {
    hk = await startRedis();
    kr = await startRedis();
    hkClient = hk.client();
    krClient = kr.client();
    source = new GeoSessionStore({ region: 'hk', client: hkClient, prefix });
    target = new GeoSessionStore({ region: 'kr', client: krClient, prefix });
  });
  afterAll(async () => {
    await source?.close();
    await target?.close();
    await hk?.stop();
    await kr?.stop();
  });
  beforeEach(async () => {
    await hkClient.flushall();
    await krClient.flushall();
  });

  const session = (user: string, maxAgeMs: number): SessionData =>
    ({
      user,
      cookie: { originalMaxAge: maxAgeMs, expires: new Date(Date.now() + maxAgeMs).toISOString() },
    }) as SessionData;

  /** Value, metadata and both keys' expiry times of `sid` in `client`. */
  async function raw(client: Redis, sid: string) {
    const [value, meta, vexp, mexp] = await Promise.all([
      client.get(keys.session(sid)),
      client.get(keys.meta(sid)),
      client.pexpiretime(keys.session(sid)),
      client.pexpiretime(keys.meta(sid)),
    ]);
    return { value, meta, vexp, mexp };
  }

  it('rebuilds sessions, touched sessions and tombstones key by key, and a second copy changes nothing', async () => {
    const sids = Array.from({ length: 30 }, (_, i) => `hk.copy${i}`);
    for (const [i, sid] of sids.entries()) await source.set(sid, session(`u${i}`, 60_000 + i * 1000));
    // Touched sessions: their expiry moved after the write (metadata x above w).
    for (const sid of sids.slice(10, 15)) await source.touch(sid, session('ignored', 600_000));
    // Logged out: tombstones only.
    for (const sid of sids.slice(20)) await source.destroy(sid);

    const counts = await copySessionStates(hkClient, krClient, [...sids, 'hk.neverExisted'], { prefix });
    expect(counts).toMatchObject({ read: 31, changed: 30, nothing: 1, malformed: 0, skewed: 0 });
    for (const sid of sids) expect(await raw(krClient, sid)).toEqual(await raw(hkClient, sid));
    for (const sid of sids) expect(await target.get(sid)).toEqual(await source.get(sid));
    // The touched ones report the write's cookie moved by the touch, in both regions.
    const touched = (await target.get(sids[10] as string)) as SessionData;
    expect(new Date(touched.cookie?.expires as unknown as string).getTime()).toBeGreaterThan(
      Date.now() + 500_000,
    );

    const again = await copySessionStates(hkClient, krClient, sids, { prefix });
    expect(again).toMatchObject({ read: 30, changed: 0, unchanged: 30 });
  });

  it('never revives a session logged out in the target, and keeps a newer write of the target', async () => {
    await source.set('hk.out', session('a', 60_000));
    await source.set('hk.newer', session('old', 60_000));
    await copySessionStates(hkClient, krClient, ['hk.out', 'hk.newer'], { prefix });
    await target.destroy('hk.out');
    await target.set('hk.newer', session('new', 120_000));
    // The source moves on too: a newer write of the logged-out id there (a concurrent write).
    await source.set('hk.out', session('b', 600_000));

    const counts = await copySessionStates(hkClient, krClient, ['hk.out', 'hk.newer'], { prefix });
    expect(counts).toMatchObject({ absorbed: 1 });
    expect(await target.get('hk.out')).toBeNull();
    const tomb = parseMeta(await krClient.get(keys.meta('hk.out')));
    expect(tomb?.tombstone).toBe(true);
    // The tombstone learnt the source's higher version and later expiry (as replication would).
    const live = parseMeta(await hkClient.get(keys.meta('hk.out')));
    expect(tomb?.version).toBe(live?.version);
    expect(tomb?.expiresAt).toBeGreaterThanOrEqual(live?.expiresAt ?? Infinity);
    expect(((await target.get('hk.newer')) as { user: string }).user).toBe('new');

    // The other way round, the tombstone wins too and a later copy keeps it.
    await copySessionStates(krClient, hkClient, ['hk.out', 'hk.newer'], { prefix });
    expect(await source.get('hk.out')).toBeNull();
    expect(((await source.get('hk.newer')) as { user: string }).user).toBe('new');
    expect(await raw(hkClient, 'hk.newer')).toEqual(await raw(krClient, 'hk.newer'));
  });

  it('copies sessions older than the stale-event horizon, which replication would refuse', async () => {
    // A long session written 3 days ago: a set that old is refused by apply.lua, but the state is current.
    const version = `${String(Date.now() - 3 * 86_400_000).padStart(15, '0')}.0000.hk`;
    const x = Date.now() + 27 * 86_400_000;
    await hkClient.set(keys.session('hk.old'), JSON.stringify(session('old', 30 * 86_400_000)), 'PXAT', x);
    await hkClient.set(
      keys.meta('hk.old'),
      formatMeta({
        tombstone: false,
        version,
        expiresAt: x,
        replicatedExpiry: x,
        lifetimeMs: 30 * 86_400_000,
        fingerprint: 'f',
        writtenExpiry: x,
      }),
      'PXAT',
      x,
    );
    const counts = await copySessionStates(hkClient, krClient, ['hk.old'], { prefix });
    expect(counts.changed).toBe(1);
    expect(await raw(krClient, 'hk.old')).toEqual(await raw(hkClient, 'hk.old'));
  });

  it('refuses malformed metadata and versions too far ahead, and copies the rest of the batch', async () => {
    await source.set('hk.fine', session('ok', 60_000));
    await hkClient.set(keys.meta('hk.bad'), 'not metadata');
    await hkClient.set(keys.session('hk.bad'), '{}');
    const ahead = `${String(Date.now() + 3_600_000).padStart(15, '0')}.0000.hk`;
    await hkClient.set(keys.meta('hk.ahead'), `0|${ahead}|0|0|0|f||0`);
    await hkClient.set(keys.session('hk.ahead'), '{}');

    const counts = await copySessionStates(
      hkClient,
      krClient,
      ['hk.bad', 'hk.fine', 'hk.ahead', 'no{valid'],
      {
        prefix,
      },
    );
    expect(counts).toMatchObject({ changed: 1, malformed: 2, skewed: 1 });
    expect(await krClient.exists(keys.session('hk.bad'), keys.session('hk.ahead'))).toBe(0);
    expect(await target.get('hk.fine')).toEqual(await source.get('hk.fine'));
  });

  it('copies a bare value (no metadata) only where the target holds nothing of it', async () => {
    await hkClient.set(keys.session('legacy'), '{"cookie":{}}', 'PX', 60_000);
    await hkClient.set(keys.session('legacy2'), '{"cookie":{"a":1}}', 'PX', 60_000);
    await krClient.set(keys.session('legacy2'), '{"cookie":{"b":2}}');
    const states = await readSessionStates(hkClient, ['legacy', 'legacy2'], { prefix, bareOnly: true });
    expect(states.map((s) => s.metaText)).toEqual([undefined, undefined]);
    const counts = await copySessionStates(hkClient, krClient, ['legacy', 'legacy2'], { prefix });
    expect(counts).toMatchObject({ changed: 1, unchanged: 1 });
    expect(await raw(krClient, 'legacy')).toEqual(await raw(hkClient, 'legacy'));
    expect(await krClient.get(keys.session('legacy2'))).toBe('{"cookie":{"b":2}}');
  });
});
