import { EventError, TimeoutError } from '../errors.js';
import { appendHeartbeat } from '../redis/commands.js';
import { withTimeout } from '../runtime/timeout.js';
import type { RedisClient } from '../types.js';
import type { Pipeline } from './pipeline.js';
import { HEARTBEAT_KIND } from './sequence.js';

/**
 * Heartbeats (docs/replication.md, "No silent divergence"): a quiet region announces the last number
 * its outbox gave, so a region that missed the last envelopes before the quiet spell sees the gap.
 */

/** Registers the `heartbeat` kind: it carries nothing but its number, which the pipeline records. */
export function registerHeartbeat(pipeline: Pipeline): void {
  pipeline.register<null>(HEARTBEAT_KIND, {
    decode: (envelope) => {
      if (envelope.body !== '') throw new EventError(`heartbeat ${envelope.id} carries a body`);
      return null;
    },
    apply: async () => {},
  });
}

/**
 * Appends a heartbeat to `outbox` unless it was written to within `quietMs`. Never rejects: when the
 * local Redis is away, writes fail too and their callers report that; the next beat tries again.
 */
export async function beat(
  client: RedisClient,
  outbox: string,
  region: string,
  quietMs: number,
  timeoutMs: number,
): Promise<void> {
  try {
    await withTimeout(
      appendHeartbeat(client, outbox, region, quietMs),
      timeoutMs,
      () => new TimeoutError('appending a heartbeat', timeoutMs),
    );
  } catch {
    // See above.
  }
}
