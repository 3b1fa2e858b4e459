/**
 * Walks one region's sessions with SCAN, one page at a time and resumable by cursor: the metadata keys
 * (every session geosession wrote, live or expired, and every tombstone) or the value keys (for values
 * without metadata, written by connect-redis or before geosession). Used by resync (src/admin/resync.ts).
 */
import type { Redis } from 'ioredis';
import { isValidSessionId } from '../internal/ids.js';
import { keyPrefixOf } from '../internal/stream-names.js';
import type { KeySpace } from '../keys.js';

/** Which keys a scan walks. */
export type ScanKind = 'meta' | 'value';

/** One SCAN page: the session ids it found (each once) and the cursor to go on from ('0': the end). */
export interface ScanPage {
  readonly sids: string[];
  readonly cursor: string;
  /** Keys SCAN returned in this page (whatever they were). */
  readonly keys: number;
}

/** Escapes SCAN glob characters so that text matches literally. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

// A session id that the key space turns into a key; its place marks where ids go in the pattern.
const MARK = 'RESYNCMARK';

/**
 * Reads one SCAN page of `kind` keys of `keys`'s sessions from `client`, from `cursor` ('0' to start).
 * ioredis `keyPrefix` is honoured: it is not applied to SCAN's MATCH, and is stripped from the keys.
 */
export async function scanSessionPage(
  client: Redis,
  keys: KeySpace,
  kind: ScanKind,
  cursor: string,
  count: number,
): Promise<ScanPage> {
  const clientPrefix = keyPrefixOf(client);
  const marked = kind === 'meta' ? keys.meta(MARK) : keys.session(MARK);
  const at = marked.indexOf(MARK);
  const before = marked.slice(0, at);
  const after = marked.slice(at + MARK.length);
  const match = `${globEscape(clientPrefix + before)}*${globEscape(after)}`;
  const [next, found] = await client.scan(cursor, 'MATCH', match, 'COUNT', count);
  const sids = new Set<string>();
  for (const raw of found) {
    const key = raw.startsWith(clientPrefix) ? raw.slice(clientPrefix.length) : raw;
    if (!key.startsWith(before) || !key.endsWith(after)) continue;
    const sid = key.slice(before.length, key.length - after.length);
    if (!isValidSessionId(sid)) continue;
    // The key must be exactly that session's (a value key never matches a metadata pattern, and back).
    if ((kind === 'meta' ? keys.meta(sid) : keys.session(sid)) !== key) continue;
    sids.add(sid);
  }
  return { sids: [...sids], cursor: next, keys: found.length };
}
