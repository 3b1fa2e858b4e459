import { ConfigError } from '../errors.js';
import { createKeySpace, type KeySpace, prefixProblem } from '../keys.js';
import { parseMeta, type SessionMeta } from '../redis/meta.js';
import { DEFAULT_OPTIONS } from '../session/options.js';
import type { RedisClient } from '../types.js';
import { sessionIdProblem } from '../validation/ids.js';
import { keyPrefixOf } from '../wire/internal-keys.js';
import { regionLayout } from './region-layout.js';

/**
 * One session as every region holds it: value, expiry, metadata, tombstone, read straight from each
 * region's Redis (no store needed). Behind `geosession inspect`.
 */

/** A region to read: its id and a client of its Redis. */
export interface AdminRegion {
  /** The region id. */
  readonly id: string;
  /** A client of the region's Redis: a `Redis`, or a `Cluster` (each session's keys share a slot). */
  readonly client: RedisClient;
}

/** What one region holds for a session id. */
export interface RegionSessionView {
  /** The region id. */
  readonly region: string;
  /** `live` (a value), `tombstone` (logged out), `metadata-only` (metadata without a value), `absent`. */
  readonly state: 'live' | 'tombstone' | 'metadata-only' | 'absent';
  /** The stored value, parsed as JSON (the store's default serializer), else the raw text; `null` when none. */
  readonly value: unknown;
  /** True when the value is not JSON (shown raw). */
  readonly valueIsRaw: boolean;
  /** When the value key expires, epoch ms; 0 never; `null` without a value. */
  readonly valueExpiresAt: number | null;
  /** The metadata, parsed; `null` when there is none (or it is not metadata). */
  readonly meta: SessionMeta | null;
  /** The metadata text as stored; `null` when none. */
  readonly metaText: string | null;
  /** When the metadata key expires, epoch ms; 0 never; `null` without metadata. */
  readonly metaExpiresAt: number | null;
}

/** A session across regions. */
export interface SessionInspection {
  /** The session id. */
  readonly sid: string;
  /** One view per region, in the order given. */
  readonly regions: readonly RegionSessionView[];
  /** True when some region holds a value, a tombstone or metadata for it. */
  readonly found: boolean;
}

/** Options of {@link inspectSession}. */
export interface InspectOptions {
  /** The store's key prefix. Default `'sess:'`. */
  readonly prefix?: string;
  /**
   * The stores' `outboxShards` when they keep the sharded layout (they replicate on a Redis Cluster, or
   * set it above 1; docs/replication.md "Sharded outboxes"): 8 for a replicating Cluster left at the
   * default. Omitted: the unsharded layout. The same in every region given.
   * @default undefined
   */
  readonly outboxShards?: number;
}

/** PEXPIRETIME's answer as an absolute expiry: -1 (no expiry) is 0, never; -2 (no key) `null`. */
function expiryOf(reply: unknown): number | null {
  const n = Number(reply);
  if (n === -2 || Number.isNaN(n)) return null;
  return n === -1 ? 0 : n;
}

async function readRegion(region: AdminRegion, keys: KeySpace, sid: string): Promise<RegionSessionView> {
  const results = await region.client
    .multi()
    .get(keys.session(sid))
    .pexpiretime(keys.session(sid))
    .get(keys.meta(sid))
    .pexpiretime(keys.meta(sid))
    .exec();
  const answer = (i: number): unknown => {
    const [error, value] = results?.[i] ?? [new Error('no answer'), null];
    if (error) throw error;
    return value;
  };
  const raw = answer(0) as string | null;
  const metaText = answer(2) as string | null;
  const meta = parseMeta(metaText) ?? null;
  let value: unknown = null;
  let valueIsRaw = false;
  if (raw !== null) {
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
      valueIsRaw = true;
    }
  }
  const state =
    raw !== null ? 'live' : meta?.tombstone ? 'tombstone' : metaText !== null ? 'metadata-only' : 'absent';
  return {
    region: region.id,
    state,
    value,
    valueIsRaw,
    valueExpiresAt: raw === null ? null : expiryOf(answer(1)),
    meta,
    metaText,
    metaExpiresAt: metaText === null ? null : expiryOf(answer(3)),
  };
}

/**
 * The key space the stores of `region` use: the unsharded layout without `outboxShards`, else the
 * layout resync copies with (src/admin/region-layout.ts, which checks the count).
 */
function keySpaceOf(region: AdminRegion, prefix: string, shards: number | undefined): KeySpace {
  if (shards === undefined) return createKeySpace(prefix, keyPrefixOf(region.client));
  return regionLayout(region.client, prefix, shards, 'outboxShards').keys;
}

/**
 * Reads session `sid` in every region of `regions` (in parallel). Throws a `TypeError` for an id the
 * store could never have written; rejects with the client's error when a region fails.
 */
export async function inspectSession(
  regions: readonly AdminRegion[],
  sid: string,
  options: InspectOptions = {},
): Promise<SessionInspection> {
  const problem = sessionIdProblem(sid);
  if (problem) throw new TypeError(`not a session id: it ${problem}`);
  const prefix = options.prefix ?? DEFAULT_OPTIONS.prefix;
  const prefixIssue = typeof prefix === 'string' ? prefixProblem(prefix) : 'must be a string';
  if (prefixIssue) throw new ConfigError('prefix', prefixIssue);
  const views = await Promise.all(
    regions.map((region) => readRegion(region, keySpaceOf(region, prefix, options.outboxShards), sid)),
  );
  return { sid, regions: views, found: views.some((view) => view.state !== 'absent') };
}
