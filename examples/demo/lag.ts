/**
 * The demo's lag figures: how long a write took to arrive in the other region's Redis, measured, never
 * inferred.
 *
 * - Start: the moment the write's call to the store completed in its own region (its script ran in that
 *   region's Redis). The demo notes it by wrapping the store's `set` and `destroy`.
 * - End: the moment the other region applied that exact version of the session to its Redis, as its
 *   store's `replicated` event reports it (the apply script has run there), checked afterwards by
 *   reading the session's metadata in that Redis.
 * Both are read from this process's clock. A step that wrote nothing, a version that never arrives or
 * an arrival that does not follow the write prints no figure, and says why.
 *
 * The store counts lag too (`replicationStats().lagMs`, what monitoring sees): from the moment the
 * change was made in its region's Redis (inside the write's script, by that Redis's clock) to the apply.
 * That moment lies between the write being sent and its completion, so the counter for a write, read as
 * it arrives, must lie between the two figures measured from there ({@link counterAgrees}).
 */

import type { Redis } from 'ioredis';
import type { AppliedBatch, GeoSessionStore, SessionInput } from '../../src/index.js';

type Done = (err?: Error | null) => void;

/**
 * Calls `written(sid, sentAt)` each time one of `store`'s writes (set, destroy) has completed in its
 * Redis, with the moment it was asked for.
 */
function noteWrites(store: GeoSessionStore, written: (sid: string, sentAt: number) => void): void {
  const set = store.set.bind(store) as (sid: string, session: SessionInput) => Promise<void>;
  const destroy = store.destroy.bind(store) as (sid: string) => Promise<void>;
  const timed = (sid: string, write: Promise<void>, cb: Done | undefined, sentAt = performance.now()) => {
    const done = write.then(() => written(sid, sentAt));
    if (!cb) return done;
    done.then(
      () => cb(null),
      (error: Error) => cb(error),
    );
    return undefined;
  };
  store.set = ((sid: string, session: SessionInput, cb?: Done) =>
    timed(sid, set(sid, session), cb)) as typeof store.set;
  store.destroy = ((sid: string, cb?: Done) => timed(sid, destroy(sid), cb)) as typeof store.destroy;
}

/** The parts of a session's metadata (`t|v|x|r|l|f|e|w`, docs/replication.md) the demo reads. */
export interface Meta {
  tombstone: boolean;
  version: string;
}

/** Reads the metadata of session `sid` (key prefix `prefix`), or `undefined` when there is none. */
export async function readMeta(client: Redis, prefix: string, sid: string): Promise<Meta | undefined> {
  const text = await client.get(`{${prefix}${sid}}:m`);
  if (!text) return undefined;
  const [t, version = ''] = text.split('|');
  return { tombstone: t === '1', version };
}

/**
 * What {@link LagMeter.measure} found: the lag from the write's completion (`ms`) and from its sending
 * (`sentMs`), and the store's own lag counter for that write in the receiving region (`counterMs`).
 */
export type Measurement =
  | { ms: number; sentMs: number; counterMs: number | undefined }
  | { problem: string; failure: boolean };

/**
 * Whether the store's lag counter agrees with what the demo measured for the same write: no shorter
 * than the time from the write's completion and no longer than the time from its sending, give or take
 * 25 ms and a quarter, plus `stallMs`, the longest the process's event loop stood still during the run:
 * room for the clocks (the counter reads Redis's through an offset it measures over a round trip, which
 * a stalled loop lengthens), rounding, and the moments between the apply and each side reading its clock.
 * A counter off by a clock's rounding (the 550 ms this check was written against) is far outside.
 */
export function counterAgrees(
  m: { ms: number; sentMs: number; counterMs: number | undefined },
  stallMs = 0,
): boolean {
  if (m.counterMs === undefined) return false;
  return m.counterMs >= m.ms * 0.75 - 25 - stallMs && m.counterMs <= m.sentMs * 1.25 + 25 + stallMs;
}

/** Write and arrival times of every region's stores, for {@link LagMeter.measure}. */
export class LagMeter {
  /** `region sid` -> when the last write of sid was sent and completed in region. */
  private readonly writes = new Map<string, { sent: number; done: number }>();
  /** `region sid version` -> when that version was applied in region (the first time). */
  private readonly arrivals = new Map<string, number>();
  /** `region sid version` -> region's lag counter for the version's origin, read as it was applied. */
  private readonly counters = new Map<string, number | undefined>();
  private readonly waiting = new Set<() => void>();

  constructor(private readonly prefix: string) {}

  /** Starts noting `store`'s writes and the versions it applies from other regions. */
  watch(store: GeoSessionStore): void {
    noteWrites(store, (sid, sent) =>
      this.writes.set(`${store.region} ${sid}`, { sent, done: performance.now() }),
    );
    store.on('replicated', (batch: AppliedBatch) => {
      const at = performance.now();
      const keys: { key: string; origin: string }[] = [];
      for (const event of batch.events) {
        if (event.op === 'touch') continue; // a touch carries the version it saw, not one it made
        const key = `${store.region} ${event.sid} ${event.version}`;
        if (this.arrivals.has(key)) continue;
        this.arrivals.set(key, at);
        keys.push({ key, origin: event.version.slice(event.version.lastIndexOf('.') + 1) });
      }
      // The store records the batch's lag right after this event: read it once that is done.
      setImmediate(() => {
        const lagMs = store.replicationStats()?.lagMs ?? {};
        for (const { key, origin } of keys) this.counters.set(key, lagMs[origin]);
        for (const wake of this.waiting) wake();
      });
    });
  }

  /**
   * How long the write that a request made to session `sid` in region `from` took to reach region `to`.
   * `since` is when the request was sent; `before` is the session's metadata in `from` just before.
   */
  async measure(options: {
    from: { name: string; client: Redis };
    to: { name: string; client: Redis };
    sid: string;
    since: number;
    before: Meta | undefined;
    timeoutMs: number;
  }): Promise<Measurement> {
    const { from, to, sid } = options;
    const written = this.writes.get(`${from.name} ${sid}`);
    const writtenAt = written?.done;
    if (written === undefined || writtenAt === undefined || written.sent < options.since) {
      return { problem: 'no write to replicate', failure: false };
    }
    const meta = await readMeta(from.client, this.prefix, sid);
    if (!meta || meta.version === options.before?.version) {
      return { problem: 'the write changed nothing', failure: false };
    }
    const key = `${to.name} ${sid} ${meta.version}`;
    const arrivedAt = await this.arrival(key, options.timeoutMs);
    if (arrivedAt === undefined) {
      return { problem: `not replicated within ${options.timeoutMs / 1000} s!`, failure: true };
    }
    if (arrivedAt < writtenAt) return { problem: 'arrival came before the write?!', failure: true };
    const there = await readMeta(to.client, this.prefix, sid);
    if (there?.version !== meta.version || there.tombstone !== meta.tombstone) {
      return { problem: `${to.name} holds another version!`, failure: true };
    }
    return { ms: arrivedAt - writtenAt, sentMs: arrivedAt - written.sent, counterMs: this.counters.get(key) };
  }

  private async arrival(key: string, timeoutMs: number): Promise<number | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (!this.counters.has(key) && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiting.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, deadline - performance.now());
        this.waiting.add(wake);
      });
    }
    return this.arrivals.get(key);
  }
}
