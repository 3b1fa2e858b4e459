/** The rolling lag windows: percentiles within a bin, a one-minute span, a bounded per-minute history. */
import { describe, expect, it } from 'vitest';
import { HISTORY_MINUTES, LagWindows } from '../../src/replication/lag-window.js';

function clock(start: number) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('LagWindows', () => {
  it('reports p50 and p99 to within 25 % and the exact max', () => {
    const c = clock(1_000_000_000_000);
    const w = new LagWindows(c.now);
    for (let i = 1; i <= 1000; i++) w.add('hk', i);
    const s = w.lastMinute('hk');
    expect(s?.count).toBe(1000);
    expect(s?.maxMs).toBe(1000);
    expect(s?.p50Ms).toBeGreaterThanOrEqual(500);
    expect(s?.p50Ms).toBeLessThanOrEqual(625);
    expect(s?.p99Ms).toBeGreaterThanOrEqual(990);
    expect(s?.p99Ms).toBeLessThanOrEqual(1000);
    expect(w.lastMinute('kr')).toBeUndefined();
    expect(w.last('hk')).toEqual({ at: c.now(), lagMs: 1000 });
  });

  it('forgets what is older than a minute, and summarizes each minute into a bounded history', () => {
    const c = clock(60_000 * 1_000_000);
    const w = new LagWindows(c.now);
    w.add('hk', 5000);
    c.advance(30_000);
    w.add('hk', 10);
    expect(w.lastMinute('hk')?.maxMs).toBe(5000);
    c.advance(31_000);
    expect(w.lastMinute('hk')).toMatchObject({ count: 1, maxMs: 10 });
    const [first, ...rest] = w.history('hk');
    expect(rest).toEqual([]);
    expect(first).toMatchObject({ minute: 60_000 * 1_000_000, count: 2, p99Ms: 5000, maxMs: 5000 });
    expect(first?.p50Ms).toBeGreaterThanOrEqual(10);
    expect(first?.p50Ms).toBeLessThanOrEqual(13);
    for (let m = 0; m < HISTORY_MINUTES + 5; m++) {
      c.advance(60_000);
      w.add('hk', 100 + m);
      w.history('hk');
    }
    const history = w.history('hk');
    expect(history).toHaveLength(HISTORY_MINUTES);
    expect(history.at(-1)?.maxMs).toBe(100 + HISTORY_MINUTES + 3);
  });

  it('a lag past the last bin is counted there, and the max stays exact', () => {
    const w = new LagWindows(() => 1_000_000);
    w.add('hk', 10 * 86_400_000);
    expect(w.lastMinute('hk')).toMatchObject({ count: 1, maxMs: 10 * 86_400_000, p99Ms: 10 * 86_400_000 });
  });
});
