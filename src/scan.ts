import type { Cluster, Redis } from 'ioredis';
import type { KeySpace } from './keys.js';
import type { RedisClient } from './options.js';

/** Escapes SCAN glob characters so a prefix matches literally. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

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
