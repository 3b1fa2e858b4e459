import type { Cluster, Redis } from 'ioredis';
import type { KeySpace } from '../../src/keys.js';

/**
 * A session's metadata as fields, read from its `t|v|f|x|e` string (src/scripts/includes/common.lua):
 * `{ v, f, x, e }` for a live session, `{ t: '1', v, x }` for a tombstone, `{ x, e }` for an expiry that
 * arrived before its session, `{}` when there is none.
 */
export async function readMeta(client: Redis | Cluster, key: string): Promise<Record<string, string>> {
  const text = await client.get(key);
  if (text === null) return {};
  const match = /^(\d)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)$/.exec(text);
  if (!match) throw new Error(`not session metadata at ${key}: ${text}`);
  const [, t, v, f, x, e] = match as unknown as [string, string, string, string, string, string];
  if (t === '1') return { t, ...(v ? { v } : {}), x };
  return { ...(v ? { v } : {}), ...(f ? { f } : {}), x, e };
}

/** One field of a session's metadata, or `null` (as HGET would answer). */
export async function metaField(
  client: Redis | Cluster,
  key: string,
  field: 't' | 'v' | 'f' | 'x' | 'e',
): Promise<string | null> {
  return (await readMeta(client, key))[field] ?? null;
}

/** Writes metadata fields as the scripts would (for tests that set up a state by hand). */
export async function writeMeta(client: Redis, key: string, fields: Record<string, string>): Promise<void> {
  const text = [
    fields.t === '1' ? '1' : '0',
    fields.v ?? '',
    fields.f ?? '',
    fields.x ?? '0',
    fields.e ?? '',
  ].join('|');
  const x = Number(fields.x ?? 0);
  if (x > 0) await client.set(key, text, 'PXAT', x);
  else await client.set(key, text);
}

/** What a region holds for one session: value, metadata, and each key's absolute expiry (PEXPIRETIME). */
export interface SessionState {
  value: string | null;
  meta: Record<string, string>;
  valueAt: number;
  metaAt: number;
}

/** Reads a session's {@link SessionState}, for comparing regions or before and after an apply. */
export async function sessionState(client: Redis, keys: KeySpace, sid: string): Promise<SessionState> {
  const [value, meta, valueAt, metaAt] = await Promise.all([
    client.get(keys.session(sid)),
    readMeta(client, keys.meta(sid)),
    client.call('PEXPIRETIME', keys.session(sid)) as Promise<number>,
    client.call('PEXPIRETIME', keys.meta(sid)) as Promise<number>,
  ]);
  return { value, meta, valueAt, metaAt };
}
