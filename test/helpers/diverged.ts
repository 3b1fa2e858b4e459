/**
 * Two regions that replicated the same traffic, then differences planted in them the way real ones
 * happen (verify and repair tests, the CLI's): changes made through the region's own scripts that never
 * reached the other region (lost events), and keys deleted behind geosession's back.
 */
import type { Redis } from 'ioredis';
import { type GeoSessionStore, generateSessionId, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { destroySession, touchSession, writeSession } from '../../src/redis/commands.js';
import { parseMeta } from '../../src/redis/meta.js';
import { eventually } from './eventually.js';

export const DAY_MS = 86_400_000;

/** A session living `lifeMs` (its rule: `ruleMs`). */
export function session(data: Record<string, unknown>, lifeMs = DAY_MS, ruleMs = lifeMs): SessionData {
  return {
    cookie: { originalMaxAge: ruleMs, expires: new Date(Date.now() + lifeMs).toISOString() },
    ...data,
  };
}

/** The metadata of `sid` in a region. */
export async function metaOf(client: Redis, prefix: string, sid: string) {
  return parseMeta(await client.get(createKeySpace(prefix).meta(sid)));
}

/**
 * Replicated traffic: sessions written in both regions, re-saved, touched below the touch step,
 * destroyed, and short-lived ones that expire. Resolves once every id has the same version in both
 * regions, with the ids it wrote.
 */
export async function replicatedTraffic(
  stores: { hk: GeoSessionStore; kr: GeoSessionStore },
  clients: { hk: Redis; kr: Redis },
  prefix: string,
  count = 40,
): Promise<string[]> {
  const sids: string[] = [];
  for (let i = 0; i < count; i++) {
    const where = i % 2 === 0 ? 'hk' : 'kr';
    const sid = generateSessionId(where);
    sids.push(sid);
    await stores[where].set(sid, session({ user: `u${i}` }));
  }
  for (let i = 0; i < count; i += 3) await stores.kr.set(sids[i] as string, session({ user: `v${i}` }));
  // Touches that move the expiry by less than the touch step: applied where made only.
  for (let i = 1; i < count; i += 4) await stores.hk.touch(sids[i] as string, session({}));
  for (let i = 2; i < count; i += 5) await stores.hk.destroy(sids[i] as string);
  for (let i = 0; i < 5; i++) {
    const sid = generateSessionId('hk');
    await stores.hk.set(sid, session({ brief: i }, 300));
  }
  await eventually(async () => {
    for (const sid of sids) {
      const [a, b] = await Promise.all([metaOf(clients.hk, prefix, sid), metaOf(clients.kr, prefix, sid)]);
      if (a?.version !== b?.version || a?.tombstone !== b?.tombstone) return false;
    }
    return true;
  }, 20_000);
  // The short-lived sessions are gone.
  await new Promise((resolve) => setTimeout(resolve, 400));
  return sids;
}

/** What {@link plantDifferences} planted: session id by kind. */
export interface Planted {
  /** Written in hk only (its set never reached kr). */
  readonly missing: string;
  /** Re-saved in hk only: kr holds the older version. */
  readonly older: string;
  /** Touched in kr only, 12 h later: hk's expiry is off. */
  readonly drift: string;
  /** Destroyed in kr only: a tombstone there, the live session in hk. */
  readonly tombstone: string;
  /** Destroyed in hk, never known in kr: the tombstone is missing there. */
  readonly missingTombstone: string;
  /** Deleted in kr with DEL (no script): only a full verify sees it. */
  readonly deleted: string;
}

/**
 * Plants one difference of each kind in regions whose stores are closed (nothing replicates any more),
 * through each region's own scripts (as a lost event leaves them) but for `deleted`. `live` are ids
 * that are live in both regions; `drift` must have been written with a 12 h lifetime and a 1 day rule.
 */
export async function plantDifferences(
  clients: { hk: Redis; kr: Redis },
  prefix: string,
  live: { older: string; drift: string; tombstone: string; deleted: string },
): Promise<Planted> {
  const keys = createKeySpace(prefix);
  const keysIn = (region: 'hk' | 'kr', sid: string) => ({
    value: keys.session(sid),
    meta: keys.meta(sid),
    outbox: keys.internal('outbox', region),
    digest: keys.digest(region),
  });
  const write = (region: 'hk' | 'kr', sid: string, data: SessionData) =>
    writeSession(clients[region], keysIn(region, sid), {
      data: JSON.stringify(data),
      fingerprint: `f${Math.random()}`,
      lifetimeMs: DAY_MS,
      ruleMs: DAY_MS,
      region,
      sid,
      hostNow: Date.now(),
      maxSkewMs: 60_000,
      touchStepMs: 60_000,
    });
  const destroy = (region: 'hk' | 'kr', sid: string) =>
    destroySession(clients[region], keysIn(region, sid), {
      tombstoneMs: 2 * DAY_MS,
      region,
      sid,
      hostNow: Date.now(),
      maxSkewMs: 60_000,
    });
  const missing = generateSessionId('hk');
  await write('hk', missing, session({ lost: true }));
  await write('hk', live.older, session({ resaved: true }));
  await touchSession(clients.kr, keysIn('kr', live.drift), {
    lifetimeMs: DAY_MS,
    ruleMs: DAY_MS,
    region: 'kr',
    sid: live.drift,
    touchStepMs: 60_000,
  });
  await destroy('kr', live.tombstone);
  const missingTombstone = generateSessionId('kr');
  await destroy('hk', missingTombstone);
  await clients.kr.del(keys.session(live.deleted), keys.meta(live.deleted));
  return {
    missing,
    older: live.older,
    drift: live.drift,
    tombstone: live.tombstone,
    missingTombstone,
    deleted: live.deleted,
  };
}
