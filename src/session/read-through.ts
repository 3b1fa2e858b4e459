import { ReadThroughError } from '../errors.js';
import { RateLimiter } from '../failures/report.js';
import type { KeySpace } from '../keys.js';
import { parseMeta, versionTime } from '../redis/meta.js';
import { applyChanges, type RemoteChange } from '../redis/replication-commands.js';
import { withTimeout } from '../runtime/timeout.js';
import { type ReadThroughMessage, type ReadThroughResult, readThroughChannel } from '../runtime/tracing.js';
import type { RedisClient } from '../types.js';
import { regionOfSessionId } from '../validation/ids.js';

/** Options of {@link ReadThrough}. */
export interface ReadThroughOptions {
  /** This region (for the `geosession:read-through` channel's messages). */
  readonly region: string;
  readonly remotes: Readonly<Record<string, RedisClient>>;
  readonly keys: KeySpace;
  readonly timeoutMs: number;
  readonly negativeTtlMs: number;
  /** This region's Redis, where a session read through is stored as its origin has it. */
  readonly local: RedisClient;
  /** The stale-event horizon and the largest clock skew, ms (as the applier uses them). */
  readonly horizonMs: number;
  readonly maxSkewMs: number;
  /**
   * The digest key (verify) a session counts in here (`KeySpace.digestOf`), kept in step when a session
   * read through is stored.
   */
  readonly digestOf?: ((sid: string) => string) | undefined;
  /** True when a logout's tombstone stands for the id here (a logout here is never undone by a remote). */
  hasTombstone(sid: string): Promise<boolean>;
  onError(error: ReadThroughError): void;
}

/** A session read from the region that made it: its value and that region's metadata for it. */
export interface RemoteSession {
  readonly text: string;
  readonly meta: string | null;
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
  private readonly inFlight = new Map<string, Promise<RemoteSession | null>>();
  private readonly missing = new Map<string, number>();
  private readonly limiter = new RateLimiter(1000);

  constructor(private readonly options: ReadThroughOptions) {}

  /** True when some remote could hold `sid`. */
  covers(sid: string): boolean {
    const origin = regionOfSessionId(sid);
    return origin !== undefined && this.options.remotes[origin] !== undefined;
  }

  /**
   * The stored value of `sid` in the region that made it, or `null`. A session found is stored here
   * with its origin's version, expiry and fingerprint (as if its set had arrived: when it does, it is a
   * duplicate), so that an unchanged re-save here is a touch of that version, never a new version that
   * could overwrite a concurrent change at its origin.
   */
  fetch(sid: string): Promise<RemoteSession | null> {
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

  private async read(sid: string): Promise<RemoteSession | null> {
    const origin = regionOfSessionId(sid) as string;
    const remote = this.options.remotes[origin] as RedisClient;
    const { timeoutMs, keys } = this.options;
    const remoteRead = withTimeout(
      remote.mget(keys.session(sid), keys.meta(sid)),
      timeoutMs,
      () => new Error(`no answer within ${timeoutMs} ms`),
    );
    remoteRead.catch(() => {});
    if (await this.options.hasTombstone(sid)) return this.told(origin, 'miss', null);
    let found: (string | null)[];
    try {
      found = await remoteRead;
    } catch (error) {
      const suppressed = this.limiter.admit(origin);
      if (suppressed !== undefined) this.options.onError(new ReadThroughError(origin, suppressed, error));
      return this.told(origin, 'error', null);
    }
    const [text = null, meta = null] = found;
    if (text === null) {
      this.rememberMissing(sid);
      return this.told(origin, 'miss', null);
    }
    await this.adopt(sid, text, meta);
    return this.told(origin, 'hit', { text, meta });
  }

  /** Publishes how a remote read ended on `geosession:read-through` (when someone listens). */
  private told<T>(origin: string, result: ReadThroughResult, value: T): T {
    if (readThroughChannel.hasSubscribers) {
      const message: ReadThroughMessage = {
        region: this.options.region,
        keyspace: this.options.keys.prefix,
        origin,
        result,
      };
      readThroughChannel.publish(message);
    }
    return value;
  }

  /** Stores a session read through as its origin has it; a failure leaves only the local copy out. */
  private async adopt(sid: string, text: string, metaText: string | null): Promise<void> {
    const meta = parseMeta(metaText);
    if (!meta || meta.tombstone || meta.version === undefined || meta.fingerprint === undefined) return;
    const { local, keys, horizonMs, maxSkewMs, timeoutMs, digestOf } = this.options;
    const time = versionTime(meta.version);
    const written = meta.writtenExpiry ?? meta.expiresAt;
    const base = { value: keys.session(sid), meta: keys.meta(sid), lifetimeMs: meta.lifetimeMs ?? 0, time };
    // Its set (with the expiry written with the value), then the touch that took it to where it is now:
    // the state its origin holds.
    const changes: RemoteChange[] = [
      {
        ...base,
        op: 's',
        version: meta.version,
        expiresAt: written,
        fingerprint: meta.fingerprint,
        data: text,
      },
    ];
    if (meta.expiresAt !== written) {
      const version = meta.expiryVersion ?? meta.version;
      changes.push({ ...base, op: 't', version, expiresAt: meta.expiresAt, fingerprint: '', data: '' });
    }
    const stored = withTimeout(
      applyChanges(local, changes, horizonMs, maxSkewMs, digestOf?.(sid)),
      timeoutMs,
      () => new Error(`no answer within ${timeoutMs} ms`),
    );
    await stored.catch(() => {});
  }

  private rememberMissing(sid: string): void {
    if (this.options.negativeTtlMs <= 0) return;
    if (this.missing.size >= NEGATIVE_LIMIT) this.missing.delete(this.missing.keys().next().value as string);
    this.missing.set(sid, Date.now() + this.options.negativeTtlMs);
  }
}
