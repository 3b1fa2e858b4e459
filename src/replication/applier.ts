import { createWriteBatcher } from '../internal/write-batching.js';
import type { KeySpace } from '../keys.js';
import type { RedisClient } from '../options.js';
import { runScript } from '../scripts/index.js';
import type { ChangeEvent, TouchEvent } from './events.js';

/** What happened to the events of one batch, by outcome. */
export interface ApplyOutcome {
  /** Changed this region's state. */
  applied: number;
  /** Duplicates, or older data whose expiry was not later. */
  unchanged: number;
  /** Already past their expiry on arrival. */
  expired: number;
  /** Set or touch of a session destroyed here. */
  refused: number;
  /** Touches merged into another touch of the same session in the same batch. */
  coalesced: number;
}

const OP_CODES = { set: 's', touch: 't', destroy: 'd' } as const;

/** Events per apply script call: big enough to save round trips, small enough not to block Redis long. */
const APPLY_CHUNK = 64;

function laterExpiry(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return Math.max(a, b);
}

/**
 * Several touches of one session in a batch become one with the latest expiry. Sets and destroys are
 * kept as they are: the merge rules make the result the same either way, this only saves work.
 */
export function coalesceTouches(events: readonly ChangeEvent[]): {
  events: ChangeEvent[];
  coalesced: number;
} {
  const touches = new Map<string, TouchEvent>();
  const out: ChangeEvent[] = [];
  let coalesced = 0;
  for (const event of events) {
    if (event.op !== 'touch') {
      out.push(event);
      continue;
    }
    const key = `${event.origin}\u0000${event.sid}`;
    const seen = touches.get(key);
    if (!seen) {
      touches.set(key, event);
      continue;
    }
    coalesced++;
    const cookieExpires =
      seen.cookieExpires === undefined || event.cookieExpires === undefined
        ? (seen.cookieExpires ?? event.cookieExpires)
        : Math.max(seen.cookieExpires, event.cookieExpires);
    touches.set(key, {
      ...(event.version > seen.version ? event : seen),
      expiresAt: laterExpiry(seen.expiresAt, event.expiresAt),
      ...(cookieExpires === undefined ? {} : { cookieExpires }),
    });
  }
  out.push(...touches.values());
  return { events: out, coalesced };
}

/**
 * Applies batches of remote events to this region's Redis: one `apply` script call per chunk of events,
 * the chunks sent at once so ioredis pipelines them. The script enforces the conflict rules (docs/replication.md), so
 * duplicates, reordering and replays are harmless. A batch rejects if any call fails, and is then
 * delivered again by the transport.
 */
export class Applier {
  private readonly batchWrites: () => void;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: KeySpace,
    private readonly region: string,
  ) {
    this.batchWrites = createWriteBatcher(client);
  }

  async apply(batch: readonly ChangeEvent[]): Promise<ApplyOutcome> {
    const { events, coalesced } = coalesceTouches(batch.filter((event) => event.origin !== this.region));
    const chunks: Promise<number[]>[] = [];
    this.batchWrites();
    for (let i = 0; i < events.length; i += APPLY_CHUNK)
      chunks.push(this.applyChunk(events.slice(i, i + APPLY_CHUNK)));
    const outcome: ApplyOutcome = { applied: 0, unchanged: 0, expired: 0, refused: 0, coalesced };
    for (const codes of await Promise.all(chunks)) {
      for (const code of codes) {
        if (code === 0) outcome.applied++;
        else if (code === 1) outcome.unchanged++;
        else if (code === 2) outcome.expired++;
        else outcome.refused++;
      }
    }
    return outcome;
  }

  /** One script call for up to {@link APPLY_CHUNK} events; the chunks of a batch are pipelined. */
  private async applyChunk(events: readonly ChangeEvent[]): Promise<number[]> {
    const keys: string[] = [];
    const args: string[] = [];
    for (const event of events) {
      keys.push(this.keys.session(event.sid), this.keys.meta(event.sid));
      const cookie =
        event.op === 'destroy' || event.cookieExpires === undefined ? '' : String(event.cookieExpires);
      if (event.op === 'set') {
        args.push(
          OP_CODES.set,
          event.version,
          String(event.expiresAt),
          cookie,
          event.fingerprint,
          event.data,
        );
      } else {
        args.push(OP_CODES[event.op], event.version, String(event.expiresAt), cookie, '', '');
      }
    }
    const codes = (await runScript(this.client, 'apply', keys, args)) as number[];
    return codes.map(Number);
  }
}
