/**
 * Walks one region's sessions with SCAN, one page at a time and resumable by cursor, in one walk: the
 * metadata keys (every session geosession wrote, live or expired, and every tombstone) and the value
 * keys (for values without metadata, written by connect-redis or before geosession). Used by resync
 * (src/admin/resync.ts) and tests that compare regions. Both key layouts (unsharded, and sharded by
 * outbox shard: src/keys.ts) are recognised by the key space given; on a Redis Cluster
 * {@link scanRegionPage} walks every master in turn.
 */
import type { Redis } from 'ioredis';
import type { KeySpace } from '../keys.js';
import type { RedisClient } from '../types.js';
import { isValidSessionId } from '../validation/ids.js';
import { globEscape, keyPrefixOf } from '../wire/internal-keys.js';
import { mastersOf } from './region-layout.js';

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

/** How keys of one kind look in the unsharded layout: the text before the id and after it. */
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

/** Reads the session id out of a key of one kind, and the SCAN pattern of that kind (without keyPrefix). */
interface KeyKind {
  readonly match: string;
  sidOf(key: string): string | undefined;
}

/** The two kinds of session keys of `keys`'s layout. */
function kindsOf(keys: KeySpace): { meta: KeyKind; value: KeyKind } {
  if (keys.shards > 0) {
    // `P{T}<sid>` and `{T}:m:P{T}<sid>`: the key space checks the tag is the sid's shard's.
    return {
      meta: {
        match: `{s*}:m:${globEscape(keys.prefix)}{s*}*`,
        sidOf(key) {
          const at = key.indexOf('}:m:');
          return at < 0 ? undefined : keys.sidOf(key.slice(at + 4));
        },
      },
      value: { match: `${globEscape(keys.prefix)}{s*}*`, sidOf: (key) => keys.sidOf(key) },
    };
  }
  const meta = shape(keys, 'meta');
  const value = shape(keys, 'value');
  return {
    meta: { match: `${globEscape(meta.before)}*${globEscape(meta.after)}`, sidOf: (key) => sidIn(key, meta) },
    value: {
      match: `${globEscape(value.before)}*${globEscape(value.after)}`,
      sidOf: (key) => sidIn(key, value),
    },
  };
}

/**
 * Reads one SCAN page of `keys`'s session keys from `client` (one Redis server), from `cursor` ('0' to
 * start): metadata and value keys in one walk (`kind` 'all'), or only one kind. ioredis `keyPrefix` is
 * honoured: it is not applied to SCAN's MATCH, and is stripped from the keys.
 */
export async function scanSessionPage(
  client: Redis,
  keys: KeySpace,
  kind: 'all' | 'meta' | 'value',
  cursor: string,
  count: number,
): Promise<ScanPage> {
  const clientPrefix = keyPrefixOf(client);
  const { meta, value } = kindsOf(keys);
  const only = kind === 'meta' ? meta : kind === 'value' ? value : undefined;
  const [next, found] = only
    ? await client.scan(cursor, 'MATCH', `${globEscape(clientPrefix)}${only.match}`, 'COUNT', count)
    : await client.scan(cursor, 'COUNT', count);
  const metaSids = new Set<string>();
  const valueSids = new Set<string>();
  for (const raw of found) {
    const key = raw.startsWith(clientPrefix) ? raw.slice(clientPrefix.length) : raw;
    // The key must be exactly that session's: a value key never reads as a metadata key, and back.
    const m = kind === 'value' ? undefined : meta.sidOf(key);
    if (m !== undefined && keys.meta(m) === key) {
      metaSids.add(m);
      continue;
    }
    const v = kind === 'meta' ? undefined : value.sidOf(key);
    if (v !== undefined && keys.session(v) === key) valueSids.add(v);
  }
  for (const sid of metaSids) valueSids.delete(sid);
  return { sids: [...metaSids], valueSids: [...valueSids], cursor: next, keys: found.length };
}

/**
 * {@link scanSessionPage} (`kind` 'all') over a whole region: the client itself, or every master of a
 * Redis Cluster in turn (in `host:port` order). `position` is where to go on from: '0' to start, and
 * the page's `cursor` to go on ('0' once every master was walked). On a Cluster a position names its
 * master and that master's cursor (`host:port cursor`); a position whose master is no longer one (a
 * failover since) starts over from the first master, which a copy may do: copying twice changes nothing.
 */
export async function scanRegionPage(
  client: RedisClient,
  keys: KeySpace,
  position: string,
  count: number,
): Promise<ScanPage> {
  const masters = mastersOf(client);
  const space = position.indexOf(' ');
  let at = space < 0 ? 0 : masters.findIndex((m) => m.name === position.slice(0, space));
  let cursor = space < 0 ? position : position.slice(space + 1);
  if (at < 0 || (masters[0]?.name !== '' && space < 0)) {
    at = 0;
    cursor = '0';
  }
  const master = masters[at];
  if (!master) throw new Error('the Cluster client knows no master yet (not connected)');
  const page = await scanSessionPage(master.node, keys, 'all', cursor, count);
  if (master.name === '') return page;
  const next = masters[at + 1];
  if (page.cursor !== '0') return { ...page, cursor: `${master.name} ${page.cursor}` };
  return { ...page, cursor: next ? `${next.name} 0` : '0' };
}
