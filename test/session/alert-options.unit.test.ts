/** The alert and status options: defaults, and every bad value a ConfigError naming the option. */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { DEFAULT_ALERT_RULES, resolveAlertRules } from '../../src/session/alert-options.js';
import { DEFAULT_OPTIONS, resolveOptions } from '../../src/session/options.js';

const client = new Redis({ lazyConnect: true });
afterAll(() => client.disconnect());

function optionOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).option;
  }
  return undefined;
}

describe('alert rules and status options', () => {
  it('default to DEFAULT_ALERT_RULES, a 10 s interval and a status record', () => {
    const resolved = resolveOptions({ region: 'hk', client });
    expect(resolved.alerts).toBe(DEFAULT_ALERT_RULES);
    expect(DEFAULT_OPTIONS.alerts).toBe(DEFAULT_ALERT_RULES);
    expect(resolved.statusIntervalMs).toBe(10_000);
    expect(resolved.statusRecord).toBe(true);
    expect(resolved.onAlert).toBeUndefined();
  });

  it('keep defaults for omitted fields, and turn a rule off with false', () => {
    const rules = resolveAlertRules({ lag: { thresholdMs: 500 }, backlog: false, needsResync: false });
    expect(rules.lag).toEqual({ thresholdMs: 500, forMs: DEFAULT_ALERT_RULES.lag?.forMs });
    expect(rules.backlog).toBeUndefined();
    expect(rules.needsResync).toBe(false);
    expect(rules.transportDown).toEqual(DEFAULT_ALERT_RULES.transportDown);
  });

  it('name the option at fault', () => {
    expect(optionOf(() => resolveAlertRules('loud'))).toBe('alerts');
    expect(optionOf(() => resolveAlertRules({ latency: {} }))).toBe('alerts.latency');
    expect(optionOf(() => resolveAlertRules({ lag: { thresholdMs: -1 } }))).toBe('alerts.lag.thresholdMs');
    expect(optionOf(() => resolveAlertRules({ lag: { threshold: 5 } }))).toBe('alerts.lag.threshold');
    expect(optionOf(() => resolveAlertRules({ lag: true }))).toBe('alerts.lag');
    expect(optionOf(() => resolveAlertRules({ backlog: { entries: 1.5 } }))).toBe('alerts.backlog.entries');
    expect(optionOf(() => resolveAlertRules({ needsResync: 'yes' }))).toBe('alerts.needsResync');
    expect(optionOf(() => resolveAlertRules({ deadLetters: { growth: 0 } }))).toBe(
      'alerts.deadLetters.growth',
    );
    expect(optionOf(() => resolveOptions({ region: 'hk', client, onAlert: 'page me' as never }))).toBe(
      'onAlert',
    );
    expect(optionOf(() => resolveOptions({ region: 'hk', client, statusIntervalMs: 50 }))).toBe(
      'statusIntervalMs',
    );
    expect(optionOf(() => resolveOptions({ region: 'hk', client, statusRecord: 1 as never }))).toBe(
      'statusRecord',
    );
    expect(
      optionOf(() => resolveOptions({ region: 'hk', client, alerts: { lag: { forMs: Number.NaN } } })),
    ).toBe('alerts.lag.forMs');
  });
});
