/** Closed-loop load generation: N workers, each awaiting one operation at a time. */

/** Outcome of one timed run. */
export interface LoadResult {
  /** Operations that completed without error. */
  ops: number;
  /** Operations that failed. */
  errors: number;
  /** First error seen, for the log. */
  firstError?: unknown;
  /** Wall time from start until the last worker stopped. */
  elapsedMs: number;
  /** `ops / elapsed seconds`. */
  opsPerSec: number;
  /** True when a worker ran out of work before the time was up (the rate is still ops / elapsed). */
  exhausted: boolean;
}

/**
 * One operation. `worker` is the worker's index and `seq` its own counter, so an op can pick a key that
 * no other worker is using. Resolve to {@link EXHAUSTED} to stop the worker (out of keys).
 */
export type Op = (worker: number, seq: number) => Promise<unknown>;

/** A marker an {@link Op} resolves to when it has nothing left to do. */
export const EXHAUSTED = Symbol('exhausted');

/**
 * Runs `op` from `concurrency` workers for `durationMs`. Each worker starts its next op only after the
 * previous one settled, so the measured rate is throughput at that concurrency (closed loop).
 */
export async function runLoad(concurrency: number, durationMs: number, op: Op): Promise<LoadResult> {
  let ops = 0;
  let errors = 0;
  let firstError: unknown;
  let exhausted = false;
  const start = performance.now();
  const stopAt = start + durationMs;
  const worker = async (index: number) => {
    for (let seq = 0; performance.now() < stopAt; seq++) {
      try {
        const outcome = await op(index, seq);
        if (outcome === EXHAUSTED) {
          exhausted = true;
          return;
        }
        ops++;
      } catch (error) {
        errors++;
        firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const elapsedMs = performance.now() - start;
  return { ops, errors, firstError, elapsedMs, exhausted, opsPerSec: (ops * 1000) / elapsedMs };
}

/** Runs `fn` over `items` with at most `concurrency` in flight (untimed set-up work). */
export async function forEachConcurrent<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[mid] as number;
  return ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
