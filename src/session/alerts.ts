import type { TransportState } from '../contracts/transport.js';
import type { ResyncNeed } from '../replication/resync-state.js';
import type { Alert, AlertRule, ResolvedAlertRules } from './alert-options.js';

/** What the alert rules are evaluated on, once per status interval. */
export interface AlertInputs {
  /** Epoch ms, host clock. */
  readonly now: number;
  readonly transportState: TransportState | 'none';
  readonly peers: readonly {
    readonly region: string;
    /** Lag p99 over the last minute, ms, when anything arrived. */
    readonly lagP99Ms: number | undefined;
    readonly backlog: { readonly entries: number; readonly oldestAgeMs: number | undefined } | undefined;
    readonly needsResync: ResyncNeed | undefined;
    /** Envelopes of that peer rejected by this process so far. */
    readonly rejectedTotal: number;
  }[];
  /** Dead letters ever added to this region's stream (or its length), `undefined` when unknown now. */
  readonly deadLettersAdded: number | undefined;
}

interface Condition {
  readonly rule: AlertRule;
  readonly peer: string | undefined;
  readonly holds: boolean;
  readonly value: number;
  readonly threshold: number;
  readonly forMs: number;
  readonly message: string;
}

interface Tracked {
  since: number;
  fired: Alert | undefined;
}

/** A counter that fires on growth and clears after a quiet time (rules `rejected`, `deadLetters`). */
interface Burst {
  last: number | undefined;
  changedAt: number;
  grown: number;
}

/**
 * Evaluates the alert rules (src/session/alert-options.ts) and remembers which fire, so each is
 * delivered once when it fires and once when it clears. Holds no timer: the status monitor calls
 * {@link AlertMonitor.evaluate} every interval.
 */
export class AlertMonitor {
  private readonly tracked = new Map<string, Tracked>();
  private readonly bursts = new Map<string, Burst>();

  constructor(
    private readonly region: string,
    private readonly rules: ResolvedAlertRules,
    private readonly deliver: (alert: Alert) => void,
  ) {}

  /** The alerts firing now. */
  firing(): Alert[] {
    const out: Alert[] = [];
    for (const t of this.tracked.values()) if (t.fired) out.push(t.fired);
    return out;
  }

  /** Checks every rule against `inputs`; delivers what fires and what clears. */
  evaluate(inputs: AlertInputs): void {
    const seen = new Set<string>();
    for (const condition of this.conditions(inputs)) {
      const key = `${condition.rule}\u0000${condition.peer ?? ''}`;
      seen.add(key);
      this.step(key, condition, inputs.now);
    }
    for (const [key, t] of this.tracked) {
      if (seen.has(key)) continue;
      this.tracked.delete(key);
      if (t.fired) this.resolve(t.fired, inputs.now, t.fired.value);
    }
  }

  private step(key: string, c: Condition, now: number): void {
    const t = this.tracked.get(key);
    if (!c.holds) {
      if (!t) return;
      this.tracked.delete(key);
      if (t.fired) this.resolve(t.fired, now, c.value);
      return;
    }
    const tracked = t ?? { since: now, fired: undefined };
    if (!t) this.tracked.set(key, tracked);
    if (tracked.fired || now - tracked.since < c.forMs) return;
    tracked.fired = Object.freeze({
      state: 'firing',
      rule: c.rule,
      region: this.region,
      peer: c.peer,
      value: c.value,
      threshold: c.threshold,
      since: tracked.since,
      at: now,
      message: c.message,
    });
    this.deliver(tracked.fired);
  }

  private resolve(fired: Alert, now: number, value: number): void {
    this.deliver(
      Object.freeze({
        ...fired,
        state: 'resolved',
        value,
        at: now,
        message: `resolved: ${fired.message}`,
      }),
    );
  }

  /** Growth of a running count `total` since the burst began; 0 once `quietMs` passed without growth. */
  private burst(
    key: string,
    total: number | undefined,
    now: number,
    quietMs: number,
    fromZero: boolean,
  ): number {
    let b = this.bursts.get(key);
    if (!b) {
      b = { last: fromZero ? 0 : total, changedAt: 0, grown: 0 };
      this.bursts.set(key, b);
    }
    if (total === undefined) return b.grown;
    if (b.last === undefined) b.last = total;
    if (total > b.last) {
      b.grown += total - b.last;
      b.changedAt = now;
    } else if (total < b.last) {
      b.last = total; // the stream was deleted or recreated: start again from there
    }
    b.last = total;
    if (b.grown > 0 && now - b.changedAt >= quietMs) b.grown = 0;
    return b.grown;
  }

  private conditions(inputs: AlertInputs): Condition[] {
    const { rules } = this;
    const out: Condition[] = [];
    const { now } = inputs;
    if (rules.transportDown && inputs.transportState !== 'none') {
      const down = inputs.transportState !== 'ready';
      out.push({
        rule: 'transportDown',
        peer: undefined,
        holds: down,
        value: down ? 1 : 0,
        threshold: rules.transportDown.forMs,
        forMs: rules.transportDown.forMs,
        message: `the transport of ${this.region} is ${inputs.transportState}, not ready`,
      });
    }
    if (rules.deadLetters) {
      const { growth, quietMs } = rules.deadLetters;
      const grown = this.burst('dead', inputs.deadLettersAdded, now, quietMs, false);
      out.push({
        rule: 'deadLetters',
        peer: undefined,
        holds: grown >= growth,
        value: grown,
        threshold: growth,
        forMs: 0,
        message: `${grown} envelope(s) dead-lettered in ${this.region} (see store.deadLetters())`,
      });
    }
    for (const peer of inputs.peers) {
      const p = peer.region;
      if (rules.lag) {
        const lag = peer.lagP99Ms;
        out.push({
          rule: 'lag',
          peer: p,
          holds: lag !== undefined && lag > rules.lag.thresholdMs,
          value: lag ?? 0,
          threshold: rules.lag.thresholdMs,
          forMs: rules.lag.forMs,
          message: `lag p99 of changes from ${p} to ${this.region} is ${lag ?? 0} ms (threshold ${rules.lag.thresholdMs} ms)`,
        });
      }
      if (rules.backlog && peer.backlog) {
        const { entries, oldestAgeMs } = peer.backlog;
        const byAge = oldestAgeMs !== undefined && oldestAgeMs > rules.backlog.ageMs;
        out.push({
          rule: 'backlog',
          peer: p,
          holds: entries > rules.backlog.entries || byAge,
          value: byAge ? (oldestAgeMs ?? 0) : entries,
          threshold: byAge ? rules.backlog.ageMs : rules.backlog.entries,
          forMs: rules.backlog.forMs,
          message: byAge
            ? `${p} has not consumed ${entries} change(s) of ${this.region}, the oldest ${oldestAgeMs} ms old (threshold ${rules.backlog.ageMs} ms)`
            : `${p} has not consumed ${entries} change(s) of ${this.region} (threshold ${rules.backlog.entries})`,
        });
      }
      if (rules.rejected) {
        const grown = this.burst(`rejected\u0000${p}`, peer.rejectedTotal, now, rules.rejected.quietMs, true);
        out.push({
          rule: 'rejected',
          peer: p,
          holds: grown > 0,
          value: grown,
          threshold: 0,
          forMs: 0,
          message: `${grown} envelope(s) from ${p} rejected by ${this.region} (sealing, malformed …; dead-lettered)`,
        });
      }
      if (rules.needsResync) {
        const need = peer.needsResync;
        out.push({
          rule: 'needsResync',
          peer: p,
          holds: need !== undefined,
          value: need ? 1 : 0,
          threshold: 0,
          forMs: 0,
          message: need
            ? `${this.region} needs a resync with ${p}${need.cause ? ` (${need.cause})` : ''}: ${need.reason}`
            : `${this.region} needs no resync with ${p}`,
        });
      }
    }
    return out;
  }
}
