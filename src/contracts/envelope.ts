/**
 * What a transport moves between regions. A transport treats every field as opaque: it carries the
 * envelope from the region that made it to every other region, at least once, and never looks inside
 * `body`. The replication pipeline (src/replication/pipeline.ts) encodes, seals, opens and decodes
 * bodies, drops its own origin, measures lag from `time` and dispatches on `kind`.
 */
export interface Envelope {
  /** Unique across regions and retries; brokers de-duplicate on it. At most 200 characters. */
  readonly id: string;
  /** The region that made it (1 to 32 of `a-z`, `0-9`, `-`). */
  readonly origin: string;
  /**
   * What `body` holds, and so which handler receives it: `session` for session changes, `sealed` for a
   * sealed batch of envelopes, and whatever later kinds register. 1 to 32 of `a-z`, `0-9`, `-`.
   */
  readonly kind: string;
  /** When the origin made it, epoch ms by the origin's clock. Lag is measured from it. */
  readonly time: number;
  /** The payload as its kind's codec wrote it (text; a sealed batch is a PASETO token). */
  readonly body: string;
}

/** Envelope kinds and ids use this alphabet. */
export const KIND_PATTERN = /^[a-z0-9-]{1,32}$/;
