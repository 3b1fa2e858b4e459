import type { Cluster, Redis } from 'ioredis';
import type { KeySpace } from '../../src/keys.js';
import { formatMeta, parseMeta } from '../../src/redis/meta.js';
import type { ChangeEvent } from '../../src/replication/events.js';
import { decodeSessionChange } from '../../src/replication/session-codec.js';
import { envelopeOfEntry, isPoison } from '../../src/wire/stream-entry.js';

/**
 * A session's metadata as short string fields, read through src/redis/meta.ts: `{ v, f, x, r, l, e }` for
 * a live session (parts it does not have are left out; `w` is never shown), `{ t: '1', v, x }` for a tombstone, `{ x, r, l }`
 * for an expiry that arrived before its session, `{}` when there is none.
 */
export async function readMeta(client: Redis | Cluster, key: string): Promise<Record<string, string>> {
  const text = await client.get(key);
  if (text === null) return {};
  const meta = parseMeta(text);
  if (!meta) throw new Error(`not session metadata at ${key}: ${text}`);
  const out: Record<string, string> = {};
  if (meta.tombstone) out.t = '1';
  if (meta.version !== undefined) out.v = meta.version;
  if (meta.fingerprint !== undefined) out.f = meta.fingerprint;
  out.x = String(meta.expiresAt);
  if (!meta.tombstone && meta.replicatedExpiry !== undefined) out.r = String(meta.replicatedExpiry);
  if (!meta.tombstone && meta.lifetimeMs !== undefined) out.l = String(meta.lifetimeMs);
  if (meta.expiryVersion !== undefined) out.e = meta.expiryVersion;
  return out;
}

/** One field of a session's metadata, or `null`. */
export async function metaField(
  client: Redis | Cluster,
  key: string,
  field: 't' | 'v' | 'f' | 'x' | 'r' | 'l' | 'e',
): Promise<string | null> {
  return (await readMeta(client, key))[field] ?? null;
}

/** Writes metadata fields as the scripts would (for tests that set up a state by hand). */
export async function writeMeta(client: Redis, key: string, fields: Record<string, string>): Promise<void> {
  const x = Number(fields.x ?? 0);
  const text = formatMeta({
    tombstone: fields.t === '1',
    version: fields.v,
    expiresAt: x,
    replicatedExpiry: fields.r === undefined ? undefined : Number(fields.r),
    lifetimeMs: fields.l === undefined ? undefined : Number(fields.l),
    fingerprint: fields.f,
  });
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

/** A version as the scripts write it: 15-digit ms, 4-digit counter, region. */
export function version(ms: number, counter: number, region: string): string {
  return `${String(Math.floor(ms)).padStart(15, '0')}.${String(counter).padStart(4, '0')}.${region}`;
}

/** The session change an outbox entry of `origin` holds (what the scripts appended). */
export function changeOfEntry(origin: string, entryId: string, fields: string[]): ChangeEvent {
  const envelope = envelopeOfEntry(origin, entryId, fields);
  if (isPoison(envelope)) throw new Error(`not an envelope: ${envelope.reason}`);
  return decodeSessionChange(envelope);
}
