/**
 * Cache invalidation on a Redis Cluster. The keys of one `invalidate()` live in any slot, and a tag's
 * members in other slots than its set, so one script call cannot delete them all: a multi-key DEL
 * across slots is refused (CROSSSLOT). Here each step is:
 *
 * 1. read each tag set's members (one slot each);
 * 2. delete the keys and the members, one DEL per slot, in parallel;
 * 3. remove from each tag set the members read (SREM, not DEL: a key tagged meanwhile stays tagged);
 * 4. publish the invalidation once (a classic PUBLISH reaches every node of the Cluster).
 *
 * Each DEL is atomic in its slot, not the whole step: a reader may see one key gone and another not yet
 * for the duration of the step. A command that meets a transient failure (src/failures/reply-errors.ts:
 * a failover, a slot moving, a lost connection) is tried again until `deadline`; then, or at once for a
 * deterministic one (a wrong-type key), the step rejects. Deleting twice changes nothing and hearing an
 * invalidation twice drops an entry twice, so a command or a whole step run again is safe. The event is published after the deletes, as on
 * a single Redis.
 *
 * With a transport the invalidator appends the event to its outbox (one slot) before this runs, and
 * applies other regions' events with it too (src/invalidation/invalidator.ts).
 */

import { isDeterministicFailure } from '../failures/reply-errors.js';
import { groupBySlot } from '../redis/slots.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import type { RedisClient } from '../types.js';

/** One step of an invalidation on a Cluster. */
export interface ClusterInvalidation {
  /** Tag set keys (as the client names them: its `keyPrefix` not included). */
  readonly tagSets: readonly string[];
  /** Keys to delete (as the app named them). */
  readonly keys: readonly string[];
  /** The client's ioredis `keyPrefix`. */
  readonly keyPrefix: string;
  /** The pub/sub channel and the message to publish on it once everything is deleted. */
  readonly pubsub: string;
  readonly message: string;
  /** Epoch ms after which a failed command is no longer tried again. */
  readonly deadline: number;
}

/** Keys per DEL. */
const DEL_CHUNK = 500;

/**
 * Runs `command` until it succeeds; rejects with its error when it is deterministic, or with the last
 * transient one once `deadline` is near.
 */
async function retried<T>(command: () => Promise<T>, deadline: number): Promise<T> {
  const backoff = new Backoff(25, 400);
  for (;;) {
    try {
      return await command();
    } catch (error) {
      const delay = backoff.next();
      if (isDeterministicFailure(error) || Date.now() + delay >= deadline) throw error;
      await sleep(delay);
    }
  }
}

/** Runs one step (see the module comment); resolves to the keys deleted, tag members included. */
export async function invalidateOnCluster(client: RedisClient, step: ClusterInvalidation): Promise<number> {
  const { keyPrefix, deadline } = step;
  // Tag sets hold full names: the client's prefix is stripped so that the client adds it back once.
  const members = await Promise.all(step.tagSets.map((set) => retried(() => client.smembers(set), deadline)));
  const names = new Set(step.keys);
  for (const list of members) {
    for (const full of list) names.add(full.startsWith(keyPrefix) ? full.slice(keyPrefix.length) : full);
  }
  const deletes: Promise<number>[] = [];
  for (const group of groupBySlot([...names], (name) => keyPrefix + name)) {
    for (let i = 0; i < group.length; i += DEL_CHUNK) {
      const chunk = group.slice(i, i + DEL_CHUNK);
      deletes.push(retried(() => client.del(...chunk), deadline));
    }
  }
  // A DEL tried again after it took effect counts nothing the second time: `deleted` may undercount.
  const deleted = (await Promise.all(deletes)).reduce((sum, n) => sum + Number(n), 0);
  await Promise.all(
    step.tagSets.map((set, i) => {
      const list = members[i] ?? [];
      const removals: Promise<number>[] = [];
      for (let at = 0; at < list.length; at += DEL_CHUNK) {
        const chunk = list.slice(at, at + DEL_CHUNK);
        removals.push(retried(() => client.srem(set, ...chunk), deadline));
      }
      return Promise.all(removals);
    }),
  );
  await retried(() => client.publish(step.pubsub, step.message), deadline);
  return deleted;
}
