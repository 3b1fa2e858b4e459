import type { KeySpace } from '../keys.js';
import { runScript } from '../redis/run-script.js';
import type { RedisClient } from '../types.js';

import { globEscape, keyPrefixOf } from '../wire/internal-keys.js';
import { mastersOf } from './region-layout.js';

/** The user-index field holding the "revoked before" mark (includes/user-index.lua, USER_MARK). */
const MARK_FIELD = '|before';

/**
 * The SCAN pattern of every user index under `keys` (its client's ioredis `keyPrefix` first): the one
 * family `{P|user}:*`, or every shard's `P{*}|user:*` in the sharded layout ({@link KeySpace.user}).
 */
function indexPattern(keys: KeySpace, keyPrefix: string): string {
  if (keys.shards === 0) return `${globEscape(keyPrefix + keys.user(''))}*`;
  return `${globEscape(keyPrefix + keys.prefix)}{*}|user:*`;
}

/**
 * Copies every user's "revoked before" mark (logout everywhere) from `from` to `to`, merged as a
 * replicated mark is (copy-mark.lua): a region whose Redis came back empty lost the marks with its data,
 * and a session a mark covers, still in flight or replayed, would be kept there and refused everywhere
 * else. Sessions are copied by the resync's walk; this copies what refuses them. Resolves to how many
 * marks it wrote. On a Redis Cluster every master is walked; each index is one key, so each call one
 * slot. In the sharded layout each shard's index holds a mark of its own: with the same layout on both
 * sides each goes to the same shard's index in `to`, otherwise to every index of the user there (a mark
 * covers the user's sessions whatever their shard).
 */
export async function copyUserMarks(
  from: RedisClient,
  to: RedisClient,
  fromKeys: KeySpace,
  toKeys: KeySpace,
  count = 500,
): Promise<number> {
  const fromPrefix = keyPrefixOf(from);
  const sameShards = fromKeys.shards === toKeys.shards;
  let written = 0;
  for (const { node } of mastersOf(from)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(
        cursor,
        'MATCH',
        indexPattern(fromKeys, fromPrefix),
        'COUNT',
        count,
      );
      cursor = next;
      for (const raw of found) {
        const key = raw.slice(fromPrefix.length);
        const index = fromKeys.userIndexOf(key);
        if (index === undefined) continue;
        const mark = await from.hget(key, MARK_FIELD);
        if (mark === null) continue;
        const targets = sameShards
          ? [toKeys.user(index.uid, index.shard)]
          : toKeys.userIndexes(index.uid).map((i) => i.key);
        for (const target of targets) {
          const code = await runScript(to, 'copy-mark', [target], [mark]);
          if (Number(code) === 0) written++;
        }
      }
    } while (cursor !== '0');
  }
  return written;
}
