/**
 * The typed face of the cache invalidation scripts (invalidate.lua, tag.lua): the one module that knows
 * their KEYS and ARGV order and their replies. Used by src/invalidation/.
 */
import type { RedisClient } from '../types.js';
import { runScript } from './run-script.js';

/** What invalidate.lua does besides deleting and publishing. */
export type InvalidateMode =
  /** Append the invalidation to the outbox too (the other regions get it). */
  | 'send'
  /** Nothing more: an invalidator without a transport. */
  | 'local'
  /** An invalidation from another region. */
  | 'apply';

/** One call of invalidate.lua. */
export interface InvalidateCall {
  readonly mode: InvalidateMode;
  /** The invalidator's outbox stream and its sequence counter (the replication node's `appendKeys()`). */
  readonly outbox: string;
  readonly counter: string;
  /** Tag set keys, in the order of the tags in `body`. */
  readonly tagSets: readonly string[];
  /** Keys to delete. */
  readonly keys: readonly string[];
  /** Pub/sub channel to publish on (`''`: none). */
  readonly pubsub: string;
  /** This region (the envelope id of mode `send`). */
  readonly region: string;
  /** The encoded invalidation (src/invalidation/codec.ts). */
  readonly body: string;
  /** Mode `apply`: when and where the invalidation was made. */
  readonly origin?: { readonly region: string; readonly time: number };
}

/** What invalidate.lua did. */
export interface InvalidateReply {
  /** Keys deleted, tag members included. */
  readonly deleted: number;
  /** The envelope id appended to the outbox (mode `send`), else `''`. */
  readonly id: string;
}

/** Deletes keys and tagged keys, appends (mode `send`) and publishes, atomically (invalidate.lua). */
export async function invalidateKeys(client: RedisClient, call: InvalidateCall): Promise<InvalidateReply> {
  const reply = (await runScript(
    client,
    'invalidate',
    [call.outbox, call.counter, ...call.tagSets, ...call.keys],
    [
      call.mode,
      call.tagSets.length,
      call.pubsub,
      call.region,
      call.body,
      call.origin?.time ?? 0,
      call.origin?.region ?? '',
    ],
  )) as [number, string];
  return { deleted: Number(reply[0]), id: String(reply[1]) };
}

/**
 * Adds `keys` to the tag set `tagSet` (tag.lua); the set lives as long as its longest-lived member and
 * at least `minLifetimeMs`. Resolves to the number of keys that were not in it yet. `keys` must not be
 * empty.
 */
export async function tagKeys(
  client: RedisClient,
  tagSet: string,
  keys: readonly string[],
  minLifetimeMs: number,
): Promise<number> {
  return Number(await runScript(client, 'tag', [tagSet, ...keys], [minLifetimeMs]));
}

/**
 * {@link tagKeys} on a Redis Cluster, where `keys` may live in other slots than the tag set: their
 * expiries are read first (one command each, routed to their nodes), then tag.lua runs in the tag set's
 * slot alone. `keyPrefix` is the client's ioredis `keyPrefix` (the set keeps full names).
 */
export async function tagKeysOnCluster(
  client: RedisClient,
  tagSet: string,
  keys: readonly string[],
  minLifetimeMs: number,
  keyPrefix: string,
): Promise<number> {
  const expiries = await Promise.all(keys.map((key) => client.pexpiretime(key)));
  let longest = -2;
  for (const at of expiries.map(Number)) {
    if (at === -1) {
      longest = -1;
      break;
    }
    if (at > longest) longest = at;
  }
  const names = keys.map((key) => keyPrefix + key);
  return Number(await runScript(client, 'tag', [tagSet], [minLifetimeMs, longest, ...names]));
}
