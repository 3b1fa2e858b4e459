import type { KeySpace } from '../keys.js';
import { runScript } from '../redis/run-script.js';
import type { RedisClient } from '../types.js';

import { globEscape, keyPrefixOf } from '../wire/internal-keys.js';
import { mastersOf } from './region-layout.js';

/** The user-index field holding the "revoked before" mark (includes/user-index.lua, USER_MARK). */
const MARK_FIELD = '|before';

/**
 * Copies every user's "revoked before" mark (logout everywhere) from `from` to `to`, merged as a
 * replicated mark is (copy-mark.lua): a region whose Redis came back empty lost the marks with its data,
 * and a session a mark covers, still in flight or replayed, would be kept there and refused everywhere
 * else. Sessions are copied by the resync's walk; this copies what refuses them. Resolves to how many
 * marks it wrote. On a Redis Cluster every master is walked (the per-user index is refused on a Cluster
 * today, so there are none to find; each mark is one key, so one slot, if there ever are).
 */
export async function copyUserMarks(
  from: RedisClient,
  to: RedisClient,
  fromKeys: KeySpace,
  toKeys: KeySpace,
  count = 500,
): Promise<number> {
  const fromPrefix = keyPrefixOf(from);
  const base = fromKeys.user('u').slice(0, -1);
  let written = 0;
  for (const { node } of mastersOf(from)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(
        cursor,
        'MATCH',
        `${globEscape(fromPrefix + base)}*`,
        'COUNT',
        count,
      );
      cursor = next;
      for (const raw of found) {
        const key = raw.slice(fromPrefix.length);
        const mark = await from.hget(key, MARK_FIELD);
        if (mark === null) continue;
        const code = await runScript(to, 'copy-mark', [toKeys.user(key.slice(base.length))], [mark]);
        if (Number(code) === 0) written++;
      }
    } while (cursor !== '0');
  }
  return written;
}
