import type { Redis } from 'ioredis';
import type { KeySpace } from '../keys.js';
import { runScript } from '../redis/run-script.js';

import { globEscape, keyPrefixOf } from '../wire/internal-keys.js';

/** The user-index field holding the "revoked before" mark (includes/user-index.lua, USER_MARK). */
const MARK_FIELD = '|before';

/**
 * Copies every user's "revoked before" mark (logout everywhere) from `from` to `to`, merged as a
 * replicated mark is (copy-mark.lua): a region whose Redis came back empty lost the marks with its data,
 * and a session a mark covers, still in flight or replayed, would be kept there and refused everywhere
 * else. Sessions are copied by the resync's walk; this copies what refuses them. Resolves to how many
 * marks it wrote.
 */
export async function copyUserMarks(
  from: Redis,
  to: Redis,
  fromKeys: KeySpace,
  toKeys: KeySpace,
  count = 500,
): Promise<number> {
  const fromPrefix = keyPrefixOf(from);
  const base = fromKeys.user('u').slice(0, -1);
  let written = 0;
  let cursor = '0';
  do {
    const [next, found] = await from.scan(
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
  return written;
}
