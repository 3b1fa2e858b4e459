import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import type { RedisClient, SessionData } from '../types.js';
import { globEscape } from '../wire/internal-keys.js';

function nodesOf(client: RedisClient): Redis[] {
  return (client as Cluster).isCluster ? (client as Cluster).nodes('master') : [client as Redis];
}

/**
 * Yields the session ids under the store's prefix, one SCAN page at a time, so callers never hold
 * every key at once. Under Redis Cluster each master is scanned in turn. SCAN may repeat a key; callers
 * that need uniqueness de-duplicate. ioredis `keyPrefix` is honoured: SCAN's MATCH is not prefixed by
 * ioredis but the keys it returns are, and the prefix is stripped before they are used again.
 */
export async function* scanSessionKeys(
  client: RedisClient,
  keys: KeySpace,
  count: number,
  call: <T>(operation: string, work: Promise<T>) => Promise<T>,
): AsyncGenerator<string[]> {
  const keyPrefix = (client.options as { keyPrefix?: string }).keyPrefix ?? '';
  const match = globEscape(keyPrefix + keys.prefix) + '*';
  for (const node of nodesOf(client)) {
    let cursor = '0';
    do {
      const [next, found] = await call('scan', node.scan(cursor, 'MATCH', match, 'COUNT', count));
      cursor = next;
      const sids: string[] = [];
      for (const raw of found) {
        const sid = keys.sidOf(raw.startsWith(keyPrefix) ? raw.slice(keyPrefix.length) : raw);
        if (sid !== undefined) sids.push(sid);
      }
      if (sids.length > 0) yield sids;
    } while (cursor !== '0');
  }
}

/** What the bulk operations need from a store. */
export interface BulkContext {
  client: RedisClient;
  keys: KeySpace;
  scanCount: number;
  /** The store's `allowClearWithoutPrefix`: whether `clear()` may run with `prefix: ''`. */
  allowClearWithoutPrefix: boolean;
  /** Runs one Redis call under the store's deadline and error mapping. */
  call<T>(operation: string, work: Promise<T>): Promise<T>;
  /** Parses a stored value (CorruptSessionError when it cannot). */
  parse(sid: string, text: string): Promise<SessionData>;
}

function scan(ctx: BulkContext): AsyncGenerator<string[]> {
  return scanSessionKeys(ctx.client, ctx.keys, ctx.scanCount, (op, work) => ctx.call(op, work));
}

/** Every session, each with its `id`; keys that vanish mid-scan are skipped. */
export async function readAllSessions(ctx: BulkContext): Promise<SessionData[]> {
  const seen = new Set<string>();
  const out: SessionData[] = [];
  for await (const batch of scan(ctx)) {
    const fresh = batch.filter((sid) => !seen.has(sid) && seen.add(sid));
    const texts = await Promise.all(
      fresh.map((sid) => ctx.call('all', ctx.client.get(ctx.keys.session(sid)))),
    );
    for (let i = 0; i < fresh.length; i++) {
      const text = texts[i];
      const sid = fresh[i] as string;
      if (text === null || text === undefined) continue; // expired or destroyed mid-scan
      const session = await ctx.parse(sid, text);
      out.push({ ...session, id: sid });
    }
  }
  return out;
}

/** Every session id, without SCAN's repeats. */
export async function listSessionIds(ctx: BulkContext): Promise<string[]> {
  const seen = new Set<string>();
  for await (const batch of scan(ctx)) for (const sid of batch) seen.add(sid);
  return [...seen];
}

/**
 * Deletes every session page by page, never holding every key at once. With `prefix: ''` it refuses
 * (a `ConfigError` naming `allowClearWithoutPrefix`) unless the store allows it: without a prefix every
 * key that looks like a session id would go, the application's other keys included.
 */
export async function deleteAllSessions(ctx: BulkContext): Promise<void> {
  if (ctx.keys.prefix === '' && !ctx.allowClearWithoutPrefix) {
    throw new ConfigError(
      'allowClearWithoutPrefix',
      "must be true for clear() with `prefix: ''`: without a prefix, clear() deletes every key of the database that looks like a session id, not only sessions",
    );
  }
  for await (const batch of scan(ctx)) {
    await Promise.all(
      batch.map((sid) =>
        // Value and metadata share a slot, so one UNLINK is cluster-safe.
        ctx.call('clear', ctx.client.unlink(ctx.keys.session(sid), ctx.keys.meta(sid))),
      ),
    );
  }
}
