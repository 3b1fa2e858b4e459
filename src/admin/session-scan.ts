/**
 * Walks one region's sessions with SCAN, one page at a time and resumable by cursor, in one walk: the
 * metadata keys (every session geosession wrote, live or expired, and every tombstone) and the value
 * keys (for values without metadata, written by connect-redis or before geosession). Used by resync
 * (src/admin/resync.ts) and tests that compare regions.
 */
import type { Redis } from 'ioredis';
import type { KeySpace } from '../keys.js';
import { isValidSessionId } from '../validation/ids.js';
import { globEscape, keyPrefixOf } from '../wire/internal-keys.js';

/** One SCAN page: the session ids it found, each once, and the cursor to go on from ('0': the end). */
export interface ScanPage {
  /** Sessions whose metadata key the page holds (every session geosession wrote, and tombstones). */
  readonly sids: string[];
  /** Sessions whose value key the page holds, and not their metadata key. */
  readonly valueSids: string[];
  readonly cursor: string;
  /** Keys SCAN returned in this page (whatever they were). */
  readonly keys: number;
}

// A session id that the key space turns into a key; its place marks where ids go in a key.
const MARK = 'RESYNCMARK';

/** How keys of one kind look: the text before the id and after it. */
function shape(keys: KeySpace, kind: 'meta' | 'value'): { before: string; after: string } {
  const marked = kind === 'meta' ? keys.meta(MARK) : keys.session(MARK);
  const at = marked.indexOf(MARK);
  return { before: marked.slice(0, at), after: marked.slice(at + MARK.length) };
}

function sidIn(key: string, s: { before: string; after: string }): string | undefined {
  if (key.length <= s.before.length + s.after.length) return undefined;
  if (!key.startsWith(s.before) || !key.endsWith(s.after)) return undefined;
  const sid = key.slice(s.before.length, key.length - s.after.length);
  return isValidSessionId(sid) ? sid : undefined;
}

/**
 * Reads one SCAN page of `keys`'s session keys from `client`, from `cursor` ('0' to start): metadata
 * and value keys in one walk (`kind` 'all'), or only one kind. ioredis `keyPrefix` is honoured: it is
 * not applied to SCAN's MATCH, and is stripped from the keys.
 */
export async function scanSessionPage(
  client: Redis,
  keys: KeySpace,
  kind: 'all' | 'meta' | 'value',
  cursor: string,
  count: number,
): Promise<ScanPage> {
  const clientPrefix = keyPrefixOf(client);
  const meta = shape(keys, 'meta');
  const value = shape(keys, 'value');
  const only = kind === 'meta' ? meta : kind === 'value' ? value : undefined;
  const [next, found] = only
    ? await client.scan(
        cursor,
        'MATCH',
        `${globEscape(clientPrefix + only.before)}*${globEscape(only.after)}`,
        'COUNT',
        count,
      )
    : await client.scan(cursor, 'COUNT', count);
  const metaSids = new Set<string>();
  const valueSids = new Set<string>();
  for (const raw of found) {
    const key = raw.startsWith(clientPrefix) ? raw.slice(clientPrefix.length) : raw;
    // The key must be exactly that session's: a value key never reads as a metadata key, and back.
    const m = kind === 'value' ? undefined : sidIn(key, meta);
    if (m !== undefined && keys.meta(m) === key) {
      metaSids.add(m);
      continue;
    }
    const v = kind === 'meta' ? undefined : sidIn(key, value);
    if (v !== undefined && keys.session(v) === key) valueSids.add(v);
  }
  for (const sid of metaSids) valueSids.delete(sid);
  return { sids: [...metaSids], valueSids: [...valueSids], cursor: next, keys: found.length };
}
