import { ClosedError } from '../errors.js';

/**
 * The states of a part of replication that starts in the background and can be closed at any moment
 * (the replicator, the relay, a stream reader, a transport's subscription): `starting` → `running` →
 * `closing` → `closed`, or `starting` → `closing` straight away when it is closed before it ran.
 */
export type LifecycleState = 'starting' | 'running' | 'closing' | 'closed';

/**
 * One part's lifecycle. Startup checks {@link Lifecycle.stopping} (or calls {@link Lifecycle.check})
 * after each `await` and, once closing began, releases what it made and stops; waits that could last
 * (a connection, a round trip to a region that does not answer) race {@link Lifecycle.signal}, which
 * aborts when closing begins, so a close never waits them out.
 */
export class Lifecycle {
  private current: LifecycleState = 'starting';
  private readonly abort = new AbortController();

  /** @param what the part, as a `ClosedError` names it (e.g. `the replicator`). */
  constructor(private readonly what: string) {}

  get state(): LifecycleState {
    return this.current;
  }

  /** True once closing began (`closing` or `closed`). */
  get stopping(): boolean {
    return this.current === 'closing' || this.current === 'closed';
  }

  /** Aborted when closing begins. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** `starting` → `running`; false (and no change) when closing began meanwhile. */
  markRunning(): boolean {
    if (this.current !== 'starting') return this.current === 'running';
    this.current = 'running';
    return true;
  }

  /** → `closing`, aborting {@link Lifecycle.signal}; false when closing had begun already. */
  beginClose(): boolean {
    if (this.stopping) return false;
    this.current = 'closing';
    this.abort.abort();
    return true;
  }

  /** → `closed`: everything is released. */
  markClosed(): void {
    this.beginClose();
    this.current = 'closed';
  }

  /** Throws a `ClosedError` once closing began: startup's check after each `await`. */
  check(): void {
    if (this.stopping) throw new ClosedError(this.what);
  }

  /** Settles as `work` does, or rejects with a `ClosedError` as soon as closing begins. */
  race<T>(work: Promise<T>): Promise<T> {
    return unlessAborted(work, this.abort.signal, this.what);
  }
}

/**
 * Settles as `work` does, or rejects with a `ClosedError` naming `what` as soon as `signal` aborts (at
 * once when it has already): for waits a caller may abandon through an `AbortSignal` it was given.
 */
export function unlessAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(new ClosedError(what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new ClosedError(what));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
