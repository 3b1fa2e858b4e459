/**
 * A newer write's lifetime wins, shorter or longer, in every region (issue 15: expiry travels with the
 * version). Before, expiry only slid forward: a session re-saved with a shorter maxAge ("remember me"
 * turned off) kept the longer lifetime everywhere, so a stolen cookie outlived the one the user had.
 */
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { openMemoryRegions } from '../helpers/memory-regions.js';
import { readMeta } from '../helpers/meta.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const cookie = (maxAge: number) => ({
  originalMaxAge: maxAge,
  expires: new Date(Date.now() + maxAge).toISOString(),
});

describe.skipIf(!hasRedis)('a newer write’s lifetime wins in every region', () => {
  const opened: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of opened.splice(0)) await close();
  });

  async function regions() {
    const r = await openMemoryRegions(uniquePrefix('lifetime'), { replicateTouchAfter: 0 });
    opened.push(r.close);
    const state = async (client: Redis, sid: string) => ({
      v: (await readMeta(client, r.keys.meta(sid))).v,
      x: Number((await readMeta(client, r.keys.meta(sid))).x),
      valueAt: Number(await client.pexpiretime(r.keys.session(sid))),
    });
    return { ...r, state };
  }

  it('"remember me" turned off in the other region shortens the session in both', async () => {
    const r = await regions();
    const sid = r.hk.genid();
    await r.hk.set(sid, { cookie: cookie(30 * DAY), user: 'ann', remember: true });
    await eventually(async () => (await r.kr.get(sid)) !== null);
    await r.kr.set(sid, { cookie: cookie(HOUR), user: 'ann', remember: false });
    const kr = await r.state(r.clients.kr, sid);
    expect(kr.valueAt).toBeLessThanOrEqual(Date.now() + HOUR);
    await eventually(async () => (await r.state(r.clients.hk, sid)).v === kr.v);
    expect(await r.state(r.clients.hk, sid)).toEqual(kr);
    expect(await r.hk.get(sid)).toMatchObject({ remember: false });
  });

  it('a touch whose maxAge shrank is a write: shortened in both regions', async () => {
    const r = await regions();
    const sid = r.hk.genid();
    const session = { user: 'bo' };
    await r.hk.set(sid, { cookie: cookie(30 * DAY), ...session });
    await eventually(async () => (await r.kr.get(sid)) !== null);
    const before = await r.state(r.clients.hk, sid);
    // express-session calls touch when only the cookie changed (its hash leaves the cookie out).
    await r.hk.touch(sid, { cookie: cookie(HOUR), ...session });
    const hk = await r.state(r.clients.hk, sid);
    expect(hk.v).not.toBe(before.v);
    expect(hk.valueAt).toBeLessThanOrEqual(Date.now() + HOUR);
    await eventually(async () => (await r.state(r.clients.kr, sid)).v === hk.v);
    expect(await r.state(r.clients.kr, sid)).toEqual(hk);
  });

  it('an expiry-only save in one region: get reports its cookie.expires in both', async () => {
    const r = await regions();
    const sid = r.hk.genid();
    const first = { cookie: cookie(HOUR), user: 'cy' };
    await r.hk.set(sid, first);
    await eventually(async () => (await r.kr.get(sid)) !== null);
    await new Promise((res) => setTimeout(res, 50));
    const later = cookie(HOUR);
    await r.hk.set(sid, { ...first, cookie: later });
    const hk = await r.state(r.clients.hk, sid);
    await eventually(async () => (await r.state(r.clients.kr, sid)).x === hk.x);
    for (const store of [r.hk, r.kr]) {
      const got = await store.get(sid);
      expect(Math.abs(Date.parse(got?.cookie?.expires as string) - Date.parse(later.expires))).toBeLessThan(
        250,
      );
      expect(Date.parse(got?.cookie?.expires as string)).toBeGreaterThan(Date.parse(first.cookie.expires));
    }
  });
});
