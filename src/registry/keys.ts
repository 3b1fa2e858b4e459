import type { RegistryBaseKeys } from '../redis/registry-commands.js';
import { hashTagOf } from '../wire/internal-keys.js';

/**
 * The registry's keys under the key prefix `P` (see includes/registry.lua for what each holds). All
 * share one Redis Cluster slot, so one script can read a user's hash and the leases together:
 *
 * | key | name |
 * |---|---|
 * | leases (ZSET) | `{P\|registry}:leases`, or `P\|registry:leases` when `P` holds a `{tag}` |
 * | incarnations (HASH) | `{P\|registry}:incs` |
 * | a user's connections (HASH) | `{P\|registry}:u:<user id>` |
 *
 * A `|` never occurs in a session id or in a valid prefix (src/keys.ts), so no session key is ever a
 * registry key; a user id has no braces, so it cannot move its key to another slot.
 */
export interface RegistryKeys extends RegistryBaseKeys {
  /** The hash of `userId`'s connections. */
  user(userId: string): string;
}

/** Registry keys for key prefix `prefix`, on a client whose ioredis `keyPrefix` is `clientKeyPrefix`. */
export function registryKeys(prefix: string, clientKeyPrefix = ''): RegistryKeys {
  const base =
    hashTagOf(clientKeyPrefix + prefix) === undefined ? `{${prefix}|registry}` : `${prefix}|registry`;
  return {
    leases: `${base}:leases`,
    incs: `${base}:incs`,
    user: (userId) => `${base}:u:${userId}`,
  };
}
