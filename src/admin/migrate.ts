import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import { createKeySpace, type KeySpace, prefixProblem } from '../keys.js';
import { type MigrateItem, MigrateResult, migrateSessions } from '../redis/commands.js';
import { groupBySlot } from '../redis/slots.js';
import { DEFAULT_OPTIONS } from '../session/options.js';
import { isValidRegion } from '../validation/ids.js';
import { numberOption, rejectUnknown, requireObject } from '../validation/options.js';
import { keyPrefixOf } from '../wire/internal-keys.js';
import { type MigrateCounts, type MoveBatch, moveBatch, sessionFacts } from './migrate-sharded.js';
import { regionLayout } from './region-layout.js';

/**
 * Upgrades a connect-redis keyspace in place: every session value without geosession metadata gets it
 * (migrate.lua: a new version, the value's own expiry, the lifetime rule, the content fingerprint),
 * so that a GeoSessionStore on the same Redis and prefix reads, touches and replicates it as its own.
 * The values are not rewritten and no expiry changes: nobody is logged out. Sessions that have
 * metadata already are skipped, so running it again (or on a keyspace the store already writes to) is
 * safe. Resumable: the SCAN cursor is kept in the region's state hash (`{P|state}:<region>`, field
 * `migrate`) after every batch and picked up by the next run, unless `restart`; it is removed when a
 * run completes.
 *
 * On a Redis Cluster every master is scanned in turn (in `host:port` order; the saved state names the
 * master and its cursor), and each migrate.lua call holds the sessions of one slot. A run resumed after
 * the masters changed (a failover) starts over: migrating twice changes nothing.
 *
 * With `outboxShards`, for stores that keep the sharded layout (docs/replication.md "Sharded outboxes":
 * `outboxShards` above 1, or replication on a Redis Cluster), each session is moved into its shard's keys
 * instead (src/admin/migrate-sharded.ts): same value, same expiry, the same metadata, and the old key
 * deleted; `migrated` then counts the sessions moved.
 */

/** Options of {@link migrateKeyspace}. */
export interface MigrateOptions {
  /** A client of the region's Redis (the one connect-redis wrote to): a `Redis` or a `Cluster`. Required. */
  client: Redis | Cluster;
  /** The region id that the new versions carry (the region this Redis serves). Required. */
  region: string;
  /** The key prefix connect-redis used, which the store will use. Default `'sess:'`. */
  prefix?: string;
  /**
   * Lifetime rule, in seconds, of sessions whose cookie has no `originalMaxAge`: the store's `ttl`.
   * Default 86400.
   */
  ttl?: number;
  /**
   * The stores' `outboxShards` when they keep the sharded layout (they replicate on a Redis Cluster, 8
   * shards by default, or set it above 1): every session is moved into its shard's keys. Omitted: the
   * unsharded layout, each session given metadata where it is (also on a Cluster). Checked as
   * verifyRegions and resyncRegion check it.
   * @default undefined
   */
  outboxShards?: number;
  /** SCAN COUNT per batch. Default 1000. */
  scanCount?: number;
  /** Count what would be migrated; write nothing (not even the cursor). Default false. */
  dryRun?: boolean;
  /** Start from the beginning even when an earlier run was interrupted. Default false. */
  restart?: boolean;
  /** The store's `maxClockSkewMs` (bounds how far the host's clock may count in a version). Default 60000. */
  maxClockSkewMs?: number;
  /** Called after every batch. */
  onProgress?: (progress: MigrateProgress) => void;
  /** Stops after the current batch (the cursor is saved: the next run resumes). */
  signal?: AbortSignal;
}

/** Progress after a batch. */
export interface MigrateProgress extends MigrateCounts {
  /** Keys in the database (DBSIZE at start): about what the scan visits in all. */
  readonly totalKeys: number;
  /** Keys the scan returned so far in this run, sessions or not. */
  readonly visited: number;
}

/** What {@link migrateKeyspace} did. */
export interface MigrateReport extends MigrateCounts {
  /** The region migrated. */
  readonly region: string;
  /** True when this run picked up an interrupted one (its counts include the earlier run's). */
  readonly resumed: boolean;
  /** False when `signal` stopped it before the end (run again to resume). */
  readonly complete: boolean;
  /** True for a dry run. */
  readonly dryRun: boolean;
}

export type { MigrateCounts };

/** The state hash field holding an interrupted migration. */
export const MIGRATE_STATE_FIELD = 'migrate';

const KNOWN = [
  'client',
  'region',
  'prefix',
  'ttl',
  'outboxShards',
  'scanCount',
  'dryRun',
  'restart',
  'maxClockSkewMs',
  'onProgress',
  'signal',
];

/** Tries per session whose value changes between read and write. */
const TRIES = 3;

/** Sessions per migrate.lua call. */
const PER_CALL = 100;

/** `text` with the glob characters of SCAN MATCH escaped. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

interface Saved extends MigrateCounts {
  cursor: string;
  /** On a Redis Cluster: the master (`host:port`) the cursor belongs to. */
  node?: string;
}

/** The Redis servers to scan: the client itself, or every master of a Cluster in `host:port` order. */
function scanTargets(client: Redis | Cluster): { name: string; node: Redis }[] {
  if (!(client as Cluster).isCluster) return [{ name: '', node: client as Redis }];
  return (client as Cluster)
    .nodes('master')
    .map((node) => ({ name: `${node.options.host}:${node.options.port}`, node }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function readSaved(text: string | null): Saved | undefined {
  if (text === null) return undefined;
  try {
    const saved = JSON.parse(text) as Saved;
    if (typeof saved.cursor !== 'string' || !/^\d+$/.test(saved.cursor)) return undefined;
    if (saved.node !== undefined && typeof saved.node !== 'string') return undefined;
    return saved;
  } catch {
    return undefined;
  }
}

/** Migrates the connect-redis sessions of one region's Redis; see the module comment. */
export async function migrateKeyspace(options: MigrateOptions): Promise<MigrateReport> {
  requireObject(options, 'options', '`client` and `region`');
  rejectUnknown(options, KNOWN, 'migrateKeyspace');
  const { client, region, onProgress, signal } = options;
  if (typeof client?.scan !== 'function') throw new ConfigError('client', 'must be an ioredis client');
  if (!isValidRegion(region)) throw new ConfigError('region', 'must be 1 to 32 of a-z, 0-9 and "-"');
  const prefix = options.prefix ?? DEFAULT_OPTIONS.prefix;
  if (typeof prefix !== 'string') throw new ConfigError('prefix', 'must be a string');
  const problem = prefixProblem(prefix);
  if (problem) throw new ConfigError('prefix', problem);
  const ttlMs = numberOption('ttl', options.ttl, DEFAULT_OPTIONS.ttl) * 1000;
  const scanCount = numberOption('scanCount', options.scanCount, 1000, {
    integer: true,
    min: 1,
    max: 100_000,
  });
  const maxSkewMs = numberOption('maxClockSkewMs', options.maxClockSkewMs, DEFAULT_OPTIONS.maxClockSkewMs);
  const dryRun = options.dryRun === true;
  const keys = createKeySpace(prefix);
  // The sharded layout only when asked for (without it a Cluster keeps today's in-place migration).
  const layout =
    options.outboxShards === undefined
      ? undefined
      : regionLayout(client, prefix, options.outboxShards, 'outboxShards');
  const stateKey = keys.internal('state', region);

  const targets = scanTargets(client);
  const found =
    dryRun || options.restart ? undefined : readSaved(await client.hget(stateKey, MIGRATE_STATE_FIELD));
  // Resume on the saved master (on a single Redis its name is ''); a master gone since: start over.
  const resumeAt = found === undefined ? -1 : targets.findIndex((t) => t.name === (found.node ?? ''));
  const saved = resumeAt < 0 ? undefined : found;
  const counts: MigrateCounts = {
    scanned: saved?.scanned ?? 0,
    migrated: saved?.migrated ?? 0,
    alreadyMigrated: saved?.alreadyMigrated ?? 0,
    gone: saved?.gone ?? 0,
    unreadable: saved?.unreadable ?? 0,
  };
  const totalKeys = (await Promise.all(targets.map((t) => t.node.dbsize()))).reduce((a, n) => a + n, 0);
  const first = Math.max(0, resumeAt);
  let cursor = saved?.cursor ?? '0';
  let visited = 0;
  // SCAN's MATCH is not prefixed by ioredis and its replies carry the client's keyPrefix: add it to
  // the pattern and take it off the names (the commands below add it back).
  const clientPrefix = keyPrefixOf(client);
  const pattern = `${escapeGlob(clientPrefix + prefix)}*`;
  const batch = { keys, client, region, ttlMs, maxSkewMs, dryRun, cluster: targets[0]?.name !== '' };
  const move: MoveBatch | undefined =
    layout && layout.keys.shards > 0
      ? { keys, layout, region, ttlMs, maxSkewMs, dryRun, perCall: PER_CALL, tries: TRIES }
      : undefined;
  for (let at = first; at < targets.length; at++) {
    const target = targets[at] as { name: string; node: Redis };
    do {
      if (signal?.aborted) {
        return { ...counts, region, resumed: saved !== undefined, complete: false, dryRun };
      }
      const [next, found] = await target.node.scan(
        cursor,
        'MATCH',
        pattern,
        'COUNT',
        scanCount,
        'TYPE',
        'string',
      );
      visited += found.length;
      const sids = found.flatMap((raw) => {
        const sid = keys.sidOf(raw.startsWith(clientPrefix) ? raw.slice(clientPrefix.length) : raw);
        return sid === undefined ? [] : [sid];
      });
      if (move) await moveBatch(move, sids, counts);
      else await migrateBatch(batch, sids, counts);
      cursor = next;
      const last = at === targets.length - 1;
      if (!dryRun) {
        if (cursor === '0' && last) await client.hdel(stateKey, MIGRATE_STATE_FIELD);
        else {
          // Between masters: the next one from its start.
          const place =
            cursor === '0' ? { node: targets[at + 1]?.name, cursor: '0' } : { node: target.name, cursor };
          await client.hset(stateKey, MIGRATE_STATE_FIELD, JSON.stringify({ ...place, ...counts }));
        }
      }
      onProgress?.({ ...counts, totalKeys, visited });
    } while (cursor !== '0');
  }
  return { ...counts, region, resumed: saved !== undefined, complete: true, dryRun };
}

interface Batch {
  readonly keys: KeySpace;
  readonly client: Redis | Cluster;
  /** On a Redis Cluster: one migrate.lua call per slot. */
  readonly cluster: boolean;
  readonly region: string;
  readonly ttlMs: number;
  readonly maxSkewMs: number;
  readonly dryRun: boolean;
}

/** Migrates the sessions `sids`, adding to `counts`. */
async function migrateBatch(batch: Batch, sids: readonly string[], counts: MigrateCounts): Promise<void> {
  const { keys, client } = batch;
  counts.scanned += sids.length;
  let pending = [...sids];
  for (let attempt = 1; pending.length > 0; attempt++) {
    const pipeline = client.pipeline();
    for (const sid of pending) pipeline.get(keys.session(sid)).exists(keys.meta(sid));
    const replies = (await pipeline.exec()) ?? [];
    const items: { sid: string; item: MigrateItem }[] = [];
    pending.forEach((sid, i) => {
      const [valueError, value] = replies[2 * i] ?? [new Error('no reply')];
      const [metaError, hasMeta] = replies[2 * i + 1] ?? [new Error('no reply')];
      if (valueError) throw valueError;
      if (metaError) throw metaError;
      if (Number(hasMeta) === 1) counts.alreadyMigrated++;
      else if (typeof value !== 'string') counts.gone++;
      else {
        const item = migrateItem(batch, keys, sid, value);
        if (!item) counts.unreadable++;
        else if (batch.dryRun) counts.migrated++;
        else items.push({ sid, item });
      }
    });
    const calls: Promise<{ sid: string; result: MigrateResult }[]>[] = [];
    const prefix = keyPrefixOf(client);
    const groups = batch.cluster ? groupBySlot(items, (c) => prefix + c.item.keys.value) : [items];
    for (const group of groups) {
      for (let at = 0; at < group.length; at += PER_CALL)
        calls.push(migrateChunk(batch, group.slice(at, at + PER_CALL)));
    }
    const results = (await Promise.all(calls)).flat();
    pending = [];
    for (const { sid, result } of results) {
      if (result === MigrateResult.Migrated) counts.migrated++;
      else if (result === MigrateResult.HasMetadata) counts.alreadyMigrated++;
      else if (result === MigrateResult.Gone) counts.gone++;
      else if (attempt < TRIES) pending.push(sid);
      else counts.unreadable++;
    }
  }
}

/** One migrate.lua call (its sessions in one slot on a Cluster). */
function migrateChunk(
  batch: Batch,
  chunk: { sid: string; item: MigrateItem }[],
): Promise<{ sid: string; result: MigrateResult }[]> {
  return migrateSessions(
    batch.client,
    chunk.map((c) => c.item),
    { region: batch.region, hostNow: Date.now(), maxSkewMs: batch.maxSkewMs },
  ).then((codes) => chunk.map((c, i) => ({ sid: c.sid, result: codes[i] as MigrateResult })));
}

/** What migrate.lua needs for a stored value, or `undefined` when it is not a session's JSON. */
function migrateItem(batch: Batch, keys: KeySpace, sid: string, value: string): MigrateItem | undefined {
  const facts = sessionFacts(value, batch.ttlMs);
  if (!facts) return undefined;
  return {
    keys: { value: keys.session(sid), meta: keys.meta(sid) },
    valueSha1: facts.sha1,
    fingerprint: facts.fingerprint,
    ruleMs: facts.ruleMs,
  };
}
