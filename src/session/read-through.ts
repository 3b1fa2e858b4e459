import { ReadThroughError } from '../errors.js';
import { regionOfSessionId } from '../internal/ids.js';
import { RateLimiter } from '../internal/report.js';
import { withTimeout } from '../internal/timeout.js';
import type { KeySpace } from '../keys.js';
import type { RedisClient } from '../types.js';

/** Options of {@link ReadThrough}. */
export interface ReadThroughOptions {
  readonly remotes: Readonly<Record<string, RedisClient>>;
  readonly keys: KeySpace;
  readonly timeoutMs: number;
  readonly negativeTtlMs: number;
  /** True when a logout's tombstone stands for the id here (a logout here is never undone by a remote). */
  hasTombstone(sid: string): Promise<boolean>;
  onError(error: ReadThroughError): void;
}

/** Ids remembered as missing, at most. */
const NEGATIVE_LIMIT = 10_000;

/**
 * Read-through to the region that made a session, for a local miss (its write has not arrived yet). It
 * cannot be turned against the region: concurrent reads of one id share one remote call; an id found
 * in no region is remembered as missing for `negativeTtlMs`, so a flood of unknown ids costs at most one
 * remote read per id per window; a stalled or failing remote is reported at most once per second per
 * remote (with a count of the rest); and every read ends within `timeoutMs`, as a miss when the remote
 * is slow.
 */
export class ReadThrough {
  private readonly inFlight = new Map<string, Promise<string | null>>();
  private readonly missing = new Map<string, number>();
  private readonly limiter = new RateLimiter(1000);

  constructor(private readonly options: ReadThroughOptions) {}

  /** True when some remote could hold `sid`. */
  covers(sid: string): boolean {
    const origin = regionOfSessionId(sid);
    return origin !== undefined && this.options.remotes[origin] !== undefined;
  }

  /** The stored value of `sid` in the region that made it, or `null`. */
  fetch(sid: string): Promise<string | null> {
    const until = this.missing.get(sid);
    if (until !== undefined) {
      if (until > Date.now()) return Promise.resolve(null);
      this.missing.delete(sid);
    }
    let pending = this.inFlight.get(sid);
    if (!pending) {
      pending = this.read(sid);
      this.inFlight.set(sid, pending);
      void pending.finally(() => this.inFlight.delete(sid));
    }
    return pending;
  }

  /** Forgets that `sid` was missing (a local write or logout of it). */
  forget(sid: string): void {
    this.missing.delete(sid);
  }

  private async read(sid: string): Promise<string | null> {
    const origin = regionOfSessionId(sid) as string;
    const remote = this.options.remotes[origin] as RedisClient;
    const { timeoutMs } = this.options;
    const remoteRead = withTimeout(
      remote.get(this.options.keys.session(sid)),
      timeoutMs,
      () => new Error(`no answer within ${timeoutMs} ms`),
    );
    remoteRead.catch(() => {});
    if (await this.options.hasTombstone(sid)) return null;
    let text: string | null;
    try {
      text = await remoteRead;
    } catch (error) {
      const suppressed = this.limiter.admit(origin);
      if (suppressed !== undefined) this.options.onError(new ReadThroughError(origin, suppressed, error));
      return null;
    }
    if (text === null) this.rememberMissing(sid);
    return text;
  }

  private rememberMissing(sid: string): void {
    if (this.options.negativeTtlMs <= 0) return;
    if (this.missing.size >= NEGATIVE_LIMIT) this.missing.delete(this.missing.keys().next().value as string);
    this.missing.set(sid, Date.now() + this.options.negativeTtlMs);
  }
}
