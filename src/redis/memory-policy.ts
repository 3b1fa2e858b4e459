import { debuglog } from 'node:util';
import { MemoryPolicyError, TimeoutError } from '../errors.js';
import { withTimeout } from '../runtime/timeout.js';
import type { RedisClient } from '../types.js';

const debug = debuglog('geosession');

/** The one `maxmemory-policy` that never evicts a key: a full Redis refuses writes instead (OOM). */
export const SAFE_MEMORY_POLICY = 'noeviction';

/**
 * True when `policy` can evict keys geosession needs: every policy but `noeviction`. `allkeys-*` may
 * evict anything; `volatile-*` evicts keys with a TTL, which every session, its metadata and its
 * tombstone have (an evicted tombstone lets a logged-out session come back).
 */
export function policyEvicts(policy: string): boolean {
  return policy !== SAFE_MEMORY_POLICY;
}

/**
 * Reads the server's `maxmemory-policy` with `CONFIG GET`, within `timeoutMs`. `undefined` when it
 * cannot be read (CONFIG refused by an ACL or renamed away, a managed service that hides it, Redis away
 * or too slow): noted once through `NODE_DEBUG=geosession`, never an error, since the store works
 * without it. When the policy can evict, `report` gets a {@link MemoryPolicyError}.
 */
export async function checkMemoryPolicy(
  client: RedisClient,
  timeoutMs: number,
  report: (error: MemoryPolicyError) => void,
): Promise<string | undefined> {
  let policy: string | undefined;
  try {
    const reply = (await withTimeout(
      client.config('GET', 'maxmemory-policy') as Promise<unknown>,
      timeoutMs,
      () => new TimeoutError('CONFIG GET maxmemory-policy', timeoutMs),
    )) as unknown;
    const pair = Array.isArray(reply) ? reply : [];
    policy = typeof pair[1] === 'string' ? pair[1] : undefined;
    if (policy === undefined) debug('CONFIG GET maxmemory-policy gave no policy; not checked');
  } catch (error) {
    debug(
      'the maxmemory-policy could not be read (%s); not checked: make sure it is %s',
      error instanceof Error ? error.message : String(error),
      SAFE_MEMORY_POLICY,
    );
    return undefined;
  }
  if (policy !== undefined && policyEvicts(policy)) report(new MemoryPolicyError(policy));
  return policy;
}
