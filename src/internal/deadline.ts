import { TimeoutError } from '../errors.js';

interface Pending {
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly operation: string;
  readonly reject: (error: Error) => void;
}

/**
 * Bounds how long any call may wait for Redis. One coarse, unref'd timer serves every call in flight,
 * so the hot path pays a Map insert and delete instead of a timer each.
 */
export class Deadlines {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(private readonly timeoutMs: number) {
    this.tickMs = Math.max(5, Math.min(100, Math.floor(timeoutMs / 4)));
  }

  /** Resolves or rejects as `work` does, or rejects with a TimeoutError once `timeoutMs` has passed. */
  run<T>(operation: string, work: Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { deadline: Date.now() + timeoutMs, timeoutMs, operation, reject });
      this.ensureTimer();
      work.then(
        (value) => {
          if (this.pending.delete(id)) resolve(value);
        },
        (error: unknown) => {
          if (this.pending.delete(id)) reject(error);
        },
      );
    });
  }

  /** Rejects everything in flight and stops the timer. */
  close(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private ensureTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(), this.tickMs);
    this.timer.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(id);
        p.reject(new TimeoutError(p.operation, p.timeoutMs));
      }
    }
    if (this.pending.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
