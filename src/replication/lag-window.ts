/**
 * Rolling replication-lag windows, one per origin region: what `store.status()` reports as p50/p99 over
 * the last minute, and the per-minute history the status record keeps.
 *
 * Fixed memory and O(1) work per envelope: each origin has a ring of {@link RING_SECONDS} one-second
 * slots, each a small log-scale histogram ({@link BINS} bins, each 25 % wider than the one before), so a
 * percentile is exact to within a bin (and never above the largest lag seen). No array grows with
 * traffic.
 */

/** Bins of each slot's histogram: bin `i` holds lags up to `GROWTH^i` ms (the last one, everything above). */
const BINS = 96;
const GROWTH = 1.25;
const LOG_GROWTH = Math.log(GROWTH);
/** One-second slots kept per origin: two minutes, so the whole previous minute can still be summarized. */
const RING_SECONDS = 120;
/** Minutes kept in each origin's history. */
export const HISTORY_MINUTES = 15;

/** Percentiles of the lag of the envelopes applied from one origin over a span of time. */
export interface LagSummary {
  /** Envelopes applied in the span. */
  readonly count: number;
  /** Median lag, ms (to within 25 %). */
  readonly p50Ms: number;
  /** 99th percentile lag, ms (to within 25 %). */
  readonly p99Ms: number;
  /** Largest lag, ms (exact). */
  readonly maxMs: number;
}

/** One minute of an origin's lag history. */
export interface LagPoint extends LagSummary {
  /** Start of the minute, epoch ms (host clock). */
  readonly minute: number;
}

/** Upper bound of bin `bin`, ms. */
function binLimit(bin: number): number {
  return bin === 0 ? 1 : Math.round(GROWTH ** bin);
}

function binOf(lagMs: number): number {
  if (lagMs <= 1) return 0;
  return Math.min(BINS - 1, Math.ceil(Math.log(lagMs) / LOG_GROWTH));
}

class OriginWindow {
  /** `RING_SECONDS` × `BINS` counts. */
  readonly counts = new Uint32Array(RING_SECONDS * BINS);
  /** The second (epoch s) each slot holds, -1 when empty. */
  readonly seconds = new Float64Array(RING_SECONDS).fill(-1);
  readonly max = new Float64Array(RING_SECONDS);
  /** Epoch ms of the newest envelope applied. */
  lastAt: number | undefined;
  /** Its lag, ms. */
  lastLagMs: number | undefined;
  readonly history: LagPoint[] = [];

  add(lagMs: number, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    const slot = second % RING_SECONDS;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.counts.fill(0, slot * BINS, (slot + 1) * BINS);
      this.max[slot] = 0;
    }
    const at = slot * BINS + binOf(lagMs);
    this.counts[at] = (this.counts[at] as number) + 1;
    if (lagMs > (this.max[slot] as number)) this.max[slot] = lagMs;
    this.lastAt = nowMs;
    this.lastLagMs = lagMs;
  }

  /** Summary of the seconds `[fromSecond, toSecond)`; `undefined` when nothing was applied in them. */
  summarize(fromSecond: number, toSecond: number): LagSummary | undefined {
    const merged = new Float64Array(BINS);
    let count = 0;
    let max = 0;
    for (let slot = 0; slot < RING_SECONDS; slot++) {
      const second = this.seconds[slot] as number;
      if (second < fromSecond || second >= toSecond) continue;
      for (let bin = 0; bin < BINS; bin++) {
        const n = this.counts[slot * BINS + bin] as number;
        merged[bin] = (merged[bin] as number) + n;
        count += n;
      }
      max = Math.max(max, this.max[slot] as number);
    }
    if (count === 0) return undefined;
    const percentile = (q: number) => {
      const rank = Math.max(1, Math.ceil(q * count));
      let seen = 0;
      for (let bin = 0; bin < BINS; bin++) {
        seen += merged[bin] as number;
        if (seen >= rank) return Math.min(binLimit(bin), max);
      }
      return max;
    };
    return { count, p50Ms: percentile(0.5), p99Ms: percentile(0.99), maxMs: max };
  }
}

/** Rolling one-minute lag windows per origin, with a short per-minute history (see the module comment). */
export class LagWindows {
  private readonly origins = new Map<string, OriginWindow>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Records the lag of one envelope applied from `origin`. Cheap: a few array writes. */
  add(origin: string, lagMs: number): void {
    let window = this.origins.get(origin);
    if (!window) {
      window = new OriginWindow();
      this.origins.set(origin, window);
    }
    window.add(lagMs, this.now());
  }

  /** The origins seen so far. */
  regions(): string[] {
    return [...this.origins.keys()];
  }

  /** Lag of `origin` over the last minute (the current second included); `undefined` when none arrived. */
  lastMinute(origin: string): LagSummary | undefined {
    const second = Math.floor(this.now() / 1000);
    return this.origins.get(origin)?.summarize(second - 59, second + 1);
  }

  /** When the newest envelope from `origin` was applied (epoch ms, host clock), and its lag. */
  last(origin: string): { at: number; lagMs: number } | undefined {
    const window = this.origins.get(origin);
    if (window?.lastAt === undefined || window.lastLagMs === undefined) return undefined;
    return { at: window.lastAt, lagMs: window.lastLagMs };
  }

  /**
   * The per-minute history of `origin`, oldest first, up to {@link HISTORY_MINUTES} minutes; the last
   * complete minute is added when this is called (call it at least once a minute to miss none). Minutes
   * with no envelope are left out.
   */
  history(origin: string): LagPoint[] {
    const window = this.origins.get(origin);
    if (!window) return [];
    const minute = Math.floor(this.now() / 60_000) * 60_000 - 60_000;
    const known = window.history[window.history.length - 1];
    if (!known || known.minute < minute) {
      const summary = window.summarize(minute / 1000, minute / 1000 + 60);
      if (summary) window.history.push({ minute, ...summary });
      while (window.history.length > HISTORY_MINUTES) window.history.shift();
    }
    return [...window.history];
  }
}
