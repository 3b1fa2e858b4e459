import type { Redis } from 'ioredis';
import { scanSessionPage } from '../../src/admin/session-scan.js';
import { createKeySpace } from '../../src/keys.js';
import { parseMeta } from '../../src/redis/meta.js';

/** Every session id with a value or metadata key in `client` under `prefix`. */
export async function sessionIds(client: Redis, prefix: string): Promise<Set<string>> {
  const keys = createKeySpace(prefix);
  const sids = new Set<string>();
  for (const kind of ['meta', 'value'] as const) {
    let cursor = '0';
    do {
      const page = await scanSessionPage(client, keys, kind, cursor, 1000);
      for (const sid of page.sids) sids.add(sid);
      cursor = page.cursor;
    } while (cursor !== '0');
  }
  return sids;
}

/**
 * A session's state in one region as a comparable string: value, tombstone, version, expiry,
 * fingerprint, the version the expiry belongs to and the expiry written with the value (not `r`, which
 * records what each region told the others).
 */
export async function stateOf(client: Redis, prefix: string, sid: string): Promise<string> {
  const keys = createKeySpace(prefix);
  const [value, text] = await Promise.all([client.get(keys.session(sid)), client.get(keys.meta(sid))]);
  const m = parseMeta(text);
  if (!m) return JSON.stringify({ value, meta: text });
  return JSON.stringify({
    value,
    t: m.tombstone,
    v: m.version,
    x: m.expiresAt,
    f: m.tombstone ? undefined : m.fingerprint,
    e: m.expiryVersion,
    w: m.tombstone ? undefined : m.writtenExpiry,
  });
}

/** The sessions whose state differs between two regions, key by key (empty when they agree). */
export async function differences(a: Redis, b: Redis, prefix: string): Promise<string[]> {
  const sids = new Set([...(await sessionIds(a, prefix)), ...(await sessionIds(b, prefix))]);
  const out: string[] = [];
  for (const sid of sids) {
    const [sa, sb] = await Promise.all([stateOf(a, prefix, sid), stateOf(b, prefix, sid)]);
    if (sa !== sb) out.push(`${sid}: ${sa} != ${sb}`);
  }
  return out;
}
