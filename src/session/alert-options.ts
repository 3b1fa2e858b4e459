import { ConfigError } from '../errors.js';
import { describe, numberOption, rejectUnknown } from '../validation/options.js';

/** The alert rules, by name. */
export type AlertRule = 'lag' | 'backlog' | 'transportDown' | 'rejected' | 'needsResync' | 'deadLetters';

/** Every alert rule, in the order they are evaluated and documented. */
export const ALERT_RULES: readonly AlertRule[] = [
  'lag',
  'backlog',
  'transportDown',
  'rejected',
  'needsResync',
  'deadLetters',
];

/**
 * One alert, as the `onAlert` hook receives it: once when its rule fires, once when it clears. Each
 * rule fires at most once per peer region until it clears.
 */
export interface Alert {
  /** `firing` when the rule's condition started to hold, `resolved` when it stopped. */
  readonly state: 'firing' | 'resolved';
  /** The rule (see {@link AlertRules}). */
  readonly rule: AlertRule;
  /** This store's region. */
  readonly region: string;
  /** The other region concerned; `undefined` for a rule about this region alone (transportDown, deadLetters). */
  readonly peer: string | undefined;
  /** The value measured (ms, entries or a count, by rule); on `resolved`, the value measured when it cleared. */
  readonly value: number;
  /** The threshold it was compared with. */
  readonly threshold: number;
  /** Epoch ms (host clock) since when the condition held (for `resolved`, too: when the trouble began). */
  readonly since: number;
  /** Epoch ms (host clock) this alert was raised or cleared. */
  readonly at: number;
  /** One line for a human. */
  readonly message: string;
}

/**
 * The alert rules of a store (option `alerts`). Each rule takes its thresholds, or `false` to turn it
 * off; omitted fields take the defaults of {@link DEFAULT_ALERT_RULES}. Rules are checked every
 * `statusIntervalMs`, so a `forMs` shorter than that acts as that interval.
 */
export interface AlertRules {
  /** A peer's lag p99 over the last minute above `thresholdMs` for `forMs`. */
  lag?: { thresholdMs?: number; forMs?: number } | false;
  /**
   * What a peer has not consumed of this region's changes above `entries`, or its oldest older than
   * `ageMs`, for `forMs` (where the transport can tell: Redis Streams, AMQP).
   */
  backlog?: { entries?: number; ageMs?: number; forMs?: number } | false;
  /** The transport not `ready` (connecting, degraded, failed) for `forMs`. */
  transportDown?: { forMs?: number } | false;
  /** Any envelope from a peer rejected (sealing, malformed …); clears after `quietMs` without one. */
  rejected?: { quietMs?: number } | false;
  /** This region needs a resync with a peer (clears when the need is cleared). */
  needsResync?: boolean;
  /**
   * This region's dead-letter stream grew by at least `growth` entries (any process of the region);
   * clears after `quietMs` without a new one.
   */
  deadLetters?: { growth?: number; quietMs?: number } | false;
}

/** The alert rules after defaults and validation; a rule turned off is `undefined`. */
export interface ResolvedAlertRules {
  readonly lag: { readonly thresholdMs: number; readonly forMs: number } | undefined;
  readonly backlog: { readonly entries: number; readonly ageMs: number; readonly forMs: number } | undefined;
  readonly transportDown: { readonly forMs: number } | undefined;
  readonly rejected: { readonly quietMs: number } | undefined;
  readonly needsResync: boolean;
  readonly deadLetters: { readonly growth: number; readonly quietMs: number } | undefined;
}

/** Defaults of every alert rule. */
export const DEFAULT_ALERT_RULES: ResolvedAlertRules = Object.freeze({
  lag: Object.freeze({ thresholdMs: 10_000, forMs: 60_000 }),
  backlog: Object.freeze({ entries: 10_000, ageMs: 300_000, forMs: 60_000 }),
  transportDown: Object.freeze({ forMs: 30_000 }),
  rejected: Object.freeze({ quietMs: 300_000 }),
  needsResync: true,
  deadLetters: Object.freeze({ growth: 1, quietMs: 300_000 }),
});

type RuleInput = Record<string, unknown> | false | undefined;

function ruleObject(name: string, value: unknown, known: readonly string[]): RuleInput {
  if (value === undefined || value === false) return value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      `alerts.${name}`,
      `must be an object of thresholds or false, got ${describe(value)}`,
    );
  }
  rejectUnknown(value, known, `alerts.${name}`, `alerts.${name}.`);
  return value as Record<string, unknown>;
}

function ms(name: string, value: unknown, fallback: number): number {
  return numberOption(name, value, fallback, { min: 0, minExclusive: false });
}

/** Fills in the alert rules' defaults and validates them, naming the option at fault. */
export function resolveAlertRules(input: unknown): ResolvedAlertRules {
  if (input === undefined) return DEFAULT_ALERT_RULES;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError('alerts', `must be an object of alert rules, got ${describe(input)}`);
  }
  rejectUnknown(input, ALERT_RULES, 'alerts', 'alerts.');
  const rules = input as AlertRules;
  const d = DEFAULT_ALERT_RULES;
  const lag = ruleObject('lag', rules.lag, ['thresholdMs', 'forMs']);
  const backlog = ruleObject('backlog', rules.backlog, ['entries', 'ageMs', 'forMs']);
  const down = ruleObject('transportDown', rules.transportDown, ['forMs']);
  const rejected = ruleObject('rejected', rules.rejected, ['quietMs']);
  const dead = ruleObject('deadLetters', rules.deadLetters, ['growth', 'quietMs']);
  if (rules.needsResync !== undefined && typeof rules.needsResync !== 'boolean') {
    throw new ConfigError('alerts.needsResync', `must be a boolean, got ${describe(rules.needsResync)}`);
  }
  const on = <T>(value: RuleInput, make: (v: Record<string, unknown>) => T): T | undefined =>
    value === false ? undefined : make(value ?? {});
  return Object.freeze({
    lag: on(lag, (v) => ({
      thresholdMs: ms('alerts.lag.thresholdMs', v.thresholdMs, d.lag?.thresholdMs ?? 0),
      forMs: ms('alerts.lag.forMs', v.forMs, d.lag?.forMs ?? 0),
    })),
    backlog: on(backlog, (v) => ({
      entries: numberOption('alerts.backlog.entries', v.entries, d.backlog?.entries ?? 0, { integer: true }),
      ageMs: ms('alerts.backlog.ageMs', v.ageMs, d.backlog?.ageMs ?? 0),
      forMs: ms('alerts.backlog.forMs', v.forMs, d.backlog?.forMs ?? 0),
    })),
    transportDown: on(down, (v) => ({
      forMs: ms('alerts.transportDown.forMs', v.forMs, d.transportDown?.forMs ?? 0),
    })),
    rejected: on(rejected, (v) => ({
      quietMs: ms('alerts.rejected.quietMs', v.quietMs, d.rejected?.quietMs ?? 0),
    })),
    needsResync: rules.needsResync ?? d.needsResync,
    deadLetters: on(dead, (v) => ({
      growth: numberOption('alerts.deadLetters.growth', v.growth, d.deadLetters?.growth ?? 1, {
        integer: true,
      }),
      quietMs: ms('alerts.deadLetters.quietMs', v.quietMs, d.deadLetters?.quietMs ?? 0),
    })),
  });
}
