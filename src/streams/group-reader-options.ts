// The options of the consumer-group stream reader (src/streams/group-reader.ts).
import type { Redis } from 'ioredis';
import type { StreamEntry } from '../wire/stream-entry.js';

/** Options of `StreamGroupReader`. */
export interface StreamGroupReaderOptions {
  /**
   * Client of the Redis holding the stream. Blocking reads run on a duplicate of it, never on it;
   * acknowledgements, group creation and the non-blocking reads of the last drain on stop use it.
   */
  client: Redis;
  /** Stream key. */
  key: string;
  /** Consumer group. Created at id 0 if missing, so nothing written before it existed is skipped. */
  group: string;
  /** Prefix of this reader's consumer name; a host, pid and random suffix are added. */
  consumerPrefix: string;
  /** Largest batch per read. */
  batchSize: number;
  /** BLOCK of each read, in ms. Finite, so a read always returns. */
  blockMs: number;
  /** Entries pending this long in a dead consumer are claimed (XAUTOCLAIM). */
  claimIdleMs: number;
  /** A read that has not returned `blockMs + watchdogMs` after it was sent is abandoned and the connection rebuilt. */
  watchdogMs: number;
  /**
   * Batches handled at once: 1 for an applier (the next read is still sent while a batch is handled);
   * more for a relay, which keeps publishing while earlier batches wait for their confirms.
   * @default 1
   */
  maxInFlight?: number;
  /** Handles a batch; resolving acknowledges it (XACK), rejecting leaves it pending for a retry. */
  onBatch(entries: StreamEntry[]): Promise<void>;
  /** Reports a failure that the reader recovers from by itself. */
  onError(error: unknown): void;
  /** Reports when reads start working again after a failure, and when they fail. */
  onHealth?(healthy: boolean): void;
  /**
   * The group (or the whole stream) vanished under a running reader: the Redis holding it restarted
   * empty, was flushed or replaced. The reader recreates the group at id 0 and goes on.
   */
  onGroupLost?(): void;
}
