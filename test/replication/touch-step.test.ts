/**
 * Touches cost what they are worth (replicateTouchAfter): a touch that moves a session's expiry less
 * than the step past what the other regions know stays local; one that moves it further is replicated;
 * 0 replicates every touch. And a touch whose cookie maxAge grew ("remember me") becomes a write that
 * reaches every region, since no touch may reach past the stored lifetime rule.
 */
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { openMemoryRegions } from '../helpers/memory-regions.js';
import { readMeta } from '../helpers/meta.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

const MAX_AGE = 30 * 60_000;
const cookie = (maxAge = MAX_AGE) => ({
  originalMaxAge: maxAge,
  expires: new Date(Date.now() + maxAge).toISOString(),
});
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasRedis)('replicateTouchAfter', () => {
  const opened: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of opened.splice(0)) await close();
  });

  async function regions(replicateTouchAfter: number) {
    const r = await openMemoryRegions(uniquePrefix('touchstep'), { replicateTouchAfter });
    opened.push(r.close);
    const outboxLength = () => r.clients.hk.xlen(r.keys.internal('outbox', 'hk'));
    const expiryIn = async (client: Redis, sid: string) =>
      Number((await readMeta(client, r.keys.meta(sid))).x);
    return { ...r, outboxLength, expiryIn };
  }

  it('a touch that moves the expiry less than the step stays local; a larger move is replicated', async () => {
    const r = await regions(1);
    const sid = r.hk.genid();
    await r.hk.set(sid, { cookie: cookie(), user: 'ann' });
    await eventually(async () => (await r.kr.get(sid)) !== null);
    const replicated = await r.expiryIn(r.clients.kr, sid);
    const entries = await r.outboxLength();

    await pause(200);
    await r.hk.touch(sid, { cookie: cookie() });
    const local = await r.expiryIn(r.clients.hk, sid);
    expect(local).toBeGreaterThan(replicated);
    expect(await r.outboxLength()).toBe(entries);
    await pause(200);
    expect(await r.expiryIn(r.clients.kr, sid)).toBe(replicated);

    await pause(1100);
    await r.hk.touch(sid, { cookie: cookie() });
    expect(await r.outboxLength()).toBe(entries + 1);
    const moved = await r.expiryIn(r.clients.hk, sid);
    await eventually(async () => (await r.expiryIn(r.clients.kr, sid)) === moved);
    // kr never lags hk by more than the step.
    expect(moved - replicated).toBeGreaterThanOrEqual(1000);
  });

  it('with 0 every touch that moves the expiry is replicated', async () => {
    const r = await regions(0);
    const sid = r.hk.genid();
    await r.hk.set(sid, { cookie: cookie(), user: 'bo' });
    const entries = await r.outboxLength();
    for (let i = 1; i <= 3; i++) {
      await pause(20);
      await r.hk.touch(sid, { cookie: cookie() });
      expect(await r.outboxLength()).toBe(entries + i);
    }
    const last = await r.expiryIn(r.clients.hk, sid);
    await eventually(async () => (await r.expiryIn(r.clients.kr, sid)) === last);
  });

  it('a touch whose cookie maxAge grew ("remember me") is written and reaches every region', async () => {
    const r = await regions(60);
    const sid = r.hk.genid();
    await r.hk.set(sid, { cookie: cookie(), user: 'cy' });
    await eventually(async () => (await r.kr.get(sid)) !== null);
    const thirtyDays = 30 * 86_400_000;
    await r.kr.touch(sid, { cookie: cookie(thirtyDays), user: 'cy' });
    const target = await r.expiryIn(r.clients.kr, sid);
    expect(target).toBeGreaterThan(Date.now() + thirtyDays - 60_000);
    await eventually(async () => (await r.expiryIn(r.clients.hk, sid)) === target);
    expect((await r.hk.get(sid))?.cookie?.originalMaxAge).toBe(thirtyDays);
    expect((await readMeta(r.clients.hk, createKeySpace(r.hk.prefix).meta(sid))).l).toBe(String(thirtyDays));
  });
});
