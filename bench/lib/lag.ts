/** Timing helpers shared by the processes of a lag benchmark. */

/**
 * Wall-clock time in ms with sub-millisecond resolution. On one machine it is comparable across
 * processes (each process's `timeOrigin` is read from the same clock when it starts).
 */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** p50 / p99 / max of a set of lags, in ms. */
export interface LagFigures {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

/** The `p`-th percentile (nearest rank) of an ascending list; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Percentiles of `lags` (any order). */
export function lagFigures(lags: readonly number[]): LagFigures {
  const sorted = Float64Array.from(lags).sort();
  const list = Array.from(sorted);
  return {
    p50: percentile(list, 50),
    p99: percentile(list, 99),
    max: list[list.length - 1] ?? Number.NaN,
    samples: list.length,
  };
}

/** Length of one tick of {@link paceBatches}, in ms. */
export const TICK_MS = 10;

/**
 * Open-loop load: every {@link TICK_MS} ms, calls `fire(i)` for the next `rate / 100` writes (the
 * count is spread so that `rate * ms / 1000` writes go out in all), never waiting for earlier writes.
 * A tick that starts late sends what fell due meanwhile. Resolves with the number of writes fired.
 */
export async function paceBatches(rate: number, ms: number, fire: (i: number) => void): Promise<number> {
  const ticks = Math.max(1, Math.round(ms / TICK_MS));
  const total = Math.round((rate * ticks * TICK_MS) / 1000);
  const start = performance.now();
  let sent = 0;
  for (let tick = 0; tick < ticks; tick++) {
    const wait = start + tick * TICK_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const due = Math.round((total * (tick + 1)) / ticks);
    while (sent < due) fire(sent++);
  }
  return sent;
}
