import type { RegistryBaseKeys } from '../redis/registry-commands.js';
import { hashTagOf, internalKey } from '../wire/internal-keys.js';

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
 * On a Redis Cluster with a transport the registry's scripts also append to its replication node's
 * outbox `{C|outbox}:<region>` and counter (`C` the registry's channel) in the same call, so there the
 * keys take the outbox's slot instead: `{C|outbox}:registry|leases`, `{C|outbox}:registry|incs`,
 * `{C|outbox}:registry|u:<user id>` (`C|outbox:registry|…` when `C` holds a `{tag}`). A region id holds
 * no `|`, so no region's outbox or counter (`{C|outbox}:<region>`, `…:seq`) is a registry key.
 *
 * A `|` never occurs in a session id or in a valid prefix (src/keys.ts), so no session key is ever a
 * registry key; a user id has no braces, so it cannot move its key to another slot.
 */
export interface RegistryKeys extends RegistryBaseKeys {
  /** The hash of `userId`'s connections. */
  user(userId: string): string;
}

/**
 * Registry keys for key prefix `prefix`, on a client whose ioredis `keyPrefix` is `clientKeyPrefix`.
 * With `outboxChannel` (a Redis Cluster with a transport: the registry's replication channel) they
 * share the slot of that channel's outboxes.
 */
export function registryKeys(prefix: string, clientKeyPrefix = '', outboxChannel?: string): RegistryKeys {
  if (outboxChannel !== undefined) {
    const base = `${internalKey(outboxChannel, 'outbox', 'registry', clientKeyPrefix)}|`;
    return { leases: `${base}leases`, incs: `${base}incs`, user: (userId) => `${base}u:${userId}` };
  }
  const base =
    hashTagOf(clientKeyPrefix + prefix) === undefined ? `{${prefix}|registry}` : `${prefix}|registry`;
  return {
    leases: `${base}:leases`,
    incs: `${base}:incs`,
    user: (userId) => `${base}:u:${userId}`,
  };
}
