import { TimeoutError } from '../errors.js';

interface Pending {
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly operation: string;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

/**
 * Bounds how long any call may wait for Redis. One coarse, unref'd timer serves every call in flight.
 * Calls with the default timeout expire in the order they started, so they sit in a FIFO queue and the
 * timer only looks at its head: the hot path pays an array push and a flag, not a timer or a Map entry.
 */
export class Deadlines {
  private queue: Pending[] = [];
  private head = 0;
  /** Calls with their own timeout (rare: read-through). */
  private readonly others = new Set<Pending>();
  private timer: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(private readonly timeoutMs: number) {
    this.tickMs = Math.max(5, Math.min(100, Math.floor(timeoutMs / 4)));
  }

  /**
   * Starts the clock on a call: after `timeoutMs`, unless `settled` was set meanwhile, `onTimeout` gets a
   * TimeoutError and the record is marked settled. The caller sets `settled` when the call completes.
   */
  track(
    operation: string,
    onTimeout: (error: Error) => void,
    timeoutMs = this.timeoutMs,
  ): { settled: boolean } {
    const pending: Pending = {
      deadline: Date.now() + timeoutMs,
      timeoutMs,
      operation,
      reject: onTimeout,
      settled: false,
    };
    if (timeoutMs === this.timeoutMs) this.queue.push(pending);
    else this.others.add(pending);
    if (this.timer === undefined) this.startTimer();
    return pending;
  }

  /**
   * Resolves or rejects as `work` does (errors passed through `mapError` when given), or rejects with a
   * TimeoutError once `timeoutMs` has passed.
   */
  run<T>(
    operation: string,
    work: Promise<T>,
    timeoutMs = this.timeoutMs,
    mapError?: (operation: string, error: unknown) => unknown,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending = this.track(operation, reject, timeoutMs);
      work.then(
        (value) => {
          if (pending.settled) return;
          pending.settled = true;
          resolve(value);
        },
        (error: unknown) => {
          if (pending.settled) return;
          pending.settled = true;
          reject(mapError ? mapError(operation, error) : error);
        },
      );
    });
  }

  /** Rejects everything in flight and stops the timer. */
  close(error: Error): void {
    for (const p of [...this.queue.slice(this.head), ...this.others]) {
      if (!p.settled) {
        p.settled = true;
        p.reject(error);
      }
    }
    this.queue = [];
    this.head = 0;
    this.others.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private startTimer(): void {
    this.timer = setInterval(() => this.sweep(), this.tickMs);
    this.timer.unref();
  }

  private expire(p: Pending): void {
    p.settled = true;
    p.reject(new TimeoutError(p.operation, p.timeoutMs));
  }

  private sweep(): void {
    const now = Date.now();
    const queue = this.queue;
    while (this.head < queue.length) {
      const p = queue[this.head] as Pending;
      if (!p.settled) {
        if (p.deadline > now) break;
        this.expire(p);
      }
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > queue.length) {
      this.queue = queue.slice(this.head);
      this.head = 0;
    }
    for (const p of this.others) {
      if (p.settled) this.others.delete(p);
      else if (p.deadline <= now) {
        this.expire(p);
        this.others.delete(p);
      }
    }
    if (this.head >= this.queue.length && this.others.size === 0 && this.timer) {
      this.queue = [];
      this.head = 0;
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
