import type { Cluster } from 'ioredis';
import { ConfigError } from '../errors.js';
import type { RedisClient } from '../types.js';
import { describe, numberOption, rejectUnknown } from '../validation/options.js';

/** The store option `nearCache` (README "Near cache", docs/near-cache.md). */
export interface NearCacheOptions {
  /**
   * Most sessions kept in process memory; the oldest entry makes room for a new one.
   * @default 10000
   */
  max?: number;
  /**
   * Longest time an entry is served after its read from Redis was sent, in ms, even if an invalidation
   * was lost: the bound on staleness when everything else fails.
   * @default 1000
   */
  maxStalenessMs?: number;
  /**
   * A `touch` of a cached session, or a save of it whose content is unchanged (fastify's `rolling`,
   * express's `resave`), that would move its expiry by less than this many ms is not sent:
   * express-session touches and @fastify/session saves on every request, and each is a write that
   * invalidates the entry in every process. The session may then expire up to this much earlier than its cookie says (as with
   * connect-mongo's `touchAfter`). `0` sends every touch.
   * @default 0
   */
  touchAfterMs?: number;
}

/** `nearCache` after defaults and validation. */
export interface ResolvedNearCache {
  readonly max: number;
  readonly maxStalenessMs: number;
  readonly touchAfterMs: number;
}

export const NEAR_CACHE_DEFAULTS = Object.freeze({ max: 10_000, maxStalenessMs: 1000, touchAfterMs: 0 });

/** Validates `nearCache`: `undefined` when off (the default), else its resolved settings. */
export function resolveNearCache(value: unknown, client: RedisClient): ResolvedNearCache | undefined {
  if (value === undefined || value === false) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      'nearCache',
      `must be false or an object { max, maxStalenessMs, touchAfterMs }, got ${describe(value)}`,
    );
  }
  rejectUnknown(value, ['max', 'maxStalenessMs', 'touchAfterMs'], 'nearCache', 'nearCache.');
  const scaleReads = (client as Cluster).isCluster ? (client as Cluster).options.scaleReads : undefined;
  if (scaleReads !== undefined && scaleReads !== 'master') {
    // Tracking follows the masters; a read from a replica may predate a write already announced.
    throw new ConfigError(
      'nearCache',
      `needs a Cluster client reading from masters (scaleReads 'master'), got scaleReads ${describe(scaleReads)}`,
    );
  }
  const input = value as NearCacheOptions;
  return Object.freeze({
    max: numberOption('nearCache.max', input.max, NEAR_CACHE_DEFAULTS.max, {
      integer: true,
      max: 10_000_000,
    }),
    maxStalenessMs: numberOption(
      'nearCache.maxStalenessMs',
      input.maxStalenessMs,
      NEAR_CACHE_DEFAULTS.maxStalenessMs,
      { max: 60_000 },
    ),
    touchAfterMs: numberOption(
      'nearCache.touchAfterMs',
      input.touchAfterMs,
      NEAR_CACHE_DEFAULTS.touchAfterMs,
      {
        min: 0,
        minExclusive: false,
        max: 86_400_000,
      },
    ),
  });
}
