/** The alert monitor on its own: `forMs`, once on firing and once on clearing, quiet times, baselines. */
import { describe, expect, it } from 'vitest';
import { type Alert, DEFAULT_ALERT_RULES } from '../../src/index.js';
import { type AlertInputs, AlertMonitor } from '../../src/session/alerts.js';

const RULES = {
  ...DEFAULT_ALERT_RULES,
  lag: { thresholdMs: 100, forMs: 1000 },
  rejected: { quietMs: 500 },
  deadLetters: { growth: 2, quietMs: 500 },
};

function inputs(
  now: number,
  over: Partial<AlertInputs> & { lag?: number; rejected?: number } = {},
): AlertInputs {
  return {
    now,
    transportState: 'ready',
    deadLettersAdded: 0,
    peers: [
      {
        region: 'kr',
        lagP99Ms: over.lag,
        backlog: undefined,
        needsResync: undefined,
        rejectedTotal: over.rejected ?? 0,
      },
    ],
    ...over,
  };
}

describe('AlertMonitor', () => {
  it('fires a rule only after it held for forMs, once, and clears it once', () => {
    const seen: Alert[] = [];
    const m = new AlertMonitor('hk', RULES, (a) => seen.push(a));
    m.evaluate(inputs(0, { lag: 500 }));
    m.evaluate(inputs(900, { lag: 500 }));
    expect(seen).toEqual([]);
    m.evaluate(inputs(1000, { lag: 600 }));
    m.evaluate(inputs(2000, { lag: 700 }));
    expect(seen.map((a) => `${a.state}:${a.rule}:${a.value}:${a.since}`)).toEqual(['firing:lag:600:0']);
    expect(m.firing()).toHaveLength(1);
    m.evaluate(inputs(3000, { lag: 50 }));
    m.evaluate(inputs(4000, { lag: 50 }));
    expect(seen.map((a) => `${a.state}:${a.value}:${a.since}:${a.at}`)).toEqual([
      'firing:600:0:1000',
      'resolved:50:0:3000',
    ]);
    expect(m.firing()).toEqual([]);
  });

  it('a condition that stops holding before forMs starts over', () => {
    const seen: Alert[] = [];
    const m = new AlertMonitor('hk', RULES, (a) => seen.push(a));
    m.evaluate(inputs(0, { lag: 500 }));
    m.evaluate(inputs(800, { lag: 10 }));
    m.evaluate(inputs(1200, { lag: 500 }));
    m.evaluate(inputs(2100, { lag: 500 }));
    expect(seen).toEqual([]);
    m.evaluate(inputs(2200, { lag: 500 }));
    expect(seen.map((a) => a.since)).toEqual([1200]);
  });

  it('rejected fires on growth and clears after quietMs without more', () => {
    const seen: Alert[] = [];
    const m = new AlertMonitor('hk', RULES, (a) => seen.push(a));
    m.evaluate(inputs(0, { rejected: 0 }));
    m.evaluate(inputs(100, { rejected: 2 }));
    m.evaluate(inputs(400, { rejected: 3 }));
    m.evaluate(inputs(800, { rejected: 3 }));
    expect(seen.map((a) => `${a.state}:${a.peer}:${a.value}`)).toEqual(['firing:kr:2']);
    m.evaluate(inputs(900, { rejected: 3 }));
    expect(seen.map((a) => `${a.state}:${a.peer}`)).toEqual(['firing:kr', 'resolved:kr']);
  });

  it('deadLetters counts from its first reading and needs `growth` new entries', () => {
    const seen: Alert[] = [];
    const m = new AlertMonitor('hk', RULES, (a) => seen.push(a));
    m.evaluate(inputs(0, { deadLettersAdded: 40 })); // old dead letters: no alert
    m.evaluate(inputs(100, { deadLettersAdded: 41 }));
    expect(seen).toEqual([]);
    m.evaluate(inputs(200, { deadLettersAdded: undefined })); // Redis away: nothing changes
    m.evaluate(inputs(300, { deadLettersAdded: 42 }));
    expect(seen.map((a) => `${a.state}:${a.rule}:${a.value}`)).toEqual(['firing:deadLetters:2']);
  });

  it('a peer that disappears clears its alerts', () => {
    const seen: Alert[] = [];
    const m = new AlertMonitor('hk', { ...RULES, lag: { thresholdMs: 100, forMs: 0 } }, (a) => seen.push(a));
    m.evaluate(inputs(0, { lag: 500 }));
    m.evaluate({ ...inputs(100), peers: [] });
    expect(seen.map((a) => a.state)).toEqual(['firing', 'resolved']);
  });
});
