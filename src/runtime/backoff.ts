/**
 * The one backoff: exponential with jitter, used by every loop that retries (stream readers, broker
 * reconnects, consumers, the relay).
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {}

  /** Failures since the last {@link Backoff.reset}. */
  get failures(): number {
    return this.attempt;
  }

  /** The next delay: min, 2·min, 4·min … up to max, each ±20% so that peers do not retry in step. */
  next(): number {
    const base = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/**
 * Resolves after `ms` without keeping the process alive, or at once when `signal` aborts (a close must
 * never wait out a backoff).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref?.();
    signal?.addEventListener('abort', done, { once: true });
  });
}
