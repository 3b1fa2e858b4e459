// The handover of a stream reader's orderly stop: what is still pending under its consumer is marked
// idle for long, so that the group's next reader claims it at once instead of after `claimIdleMs`.
import type { Redis } from 'ioredis';
import { TransportError } from '../errors.js';
import { isMissingStream } from '../failures/reply-errors.js';
import { settledWithin } from '../runtime/timeout.js';

/**
 * The idle time an orderly stop gives the entries it leaves pending (a year): past any reader's
 * `claimIdleMs`, so the next reader claims them at once; below the Redis clock, which XCLAIM requires.
 */
export const HANDOVER_IDLE_MS = 365 * 86_400_000;

/** Where {@link handOverPending} works: the stream, its group and the consumer stopping. */
export interface HandoverTarget {
  /** Client of the Redis holding the stream (not the reads' dedicated connection). */
  client: Redis;
  key: string;
  group: string;
  consumer: string;
  /** How long the handover may take before the stop goes on without it, in ms. */
  limitMs: number;
}

/**
 * The handover of an orderly stop: entries still pending under `consumer` (a batch that failed, or
 * is still being handled) are marked idle for {@link HANDOVER_IDLE_MS} (XCLAIM to itself with IDLE),
 * so the next reader of the group claims them at once with its first XAUTOCLAIM (a reader claims
 * when it starts) instead of after `claimIdleMs`, and so does any other running reader of the group
 * at its next claim. Bounded by `limitMs` and skipped when the client is not connected: they are then
 * claimed after `claimIdleMs` as a dead consumer's. Never throws; a failure goes to `report`.
 */
export async function handOverPending(
  target: HandoverTarget,
  report: (error: unknown) => void,
): Promise<void> {
  const { client, key, group, consumer, limitMs } = target;
  if (client.status !== 'ready') return;
  const xclaim = client.xclaim as unknown as (...a: (string | number)[]) => Promise<unknown>;
  const work = (async () => {
    // Pages of 1000, each after the last id of the one before (exclusive: they stay this consumer's).
    let from = '-';
    for (let round = 0; round < 10; round++) {
      const pending = (await client.xpending(key, group, from, '+', 1000, consumer)) as [
        string,
        ...unknown[],
      ][];
      const ids = pending.map((row) => row[0]);
      if (ids.length === 0) return;
      await xclaim.call(client, key, group, consumer, 0, ...ids, 'IDLE', HANDOVER_IDLE_MS, 'JUSTID');
      if (ids.length < 1000) return;
      from = `(${ids[ids.length - 1]}`;
    }
  })();
  work.catch((error: unknown) => {
    // The stream or its group is gone: nothing is pending any more.
    if (isMissingStream(error)) return;
    report(
      new TransportError(
        `handing over what ${consumer} left pending on ${key} failed: it is claimed after claimIdleMs`,
        { cause: error },
      ),
    );
  });
  await settledWithin(work, limitMs);
}
