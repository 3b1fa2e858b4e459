/**
 * How verify tells that a session differs between regions: each region's state is reduced to what must
 * converge (tombstone or live, version, expiry, value), then compared by the applier's rules
 * (docs/replication.md): a tombstone anywhere wins, the newer version wins, expiry travels with the
 * version and may differ by less than a tolerance (a touch that moved it less than the touch step is
 * not replicated).
 */
import type { SessionState } from './region-state.js';

/** The kinds of difference verify reports. */
export type DifferenceKind =
  /** A region holds nothing (or metadata without the value) of a session or tombstone another holds. */
  | 'missing'
  /** A region holds an older version of the session or tombstone. */
  | 'older-version'
  /** Same version, expiries further apart than the tolerance. */
  | 'expiry-drift'
  /** A tombstone in one region, the live session in another. */
  | 'tombstone-vs-live'
  /** Same version, different values (a value changed outside geosession). */
  | 'value-differs';

/** A session's state in one region, as verify reports it. */
export interface RegionView {
  /**
   * `absent` also stands for a local (never replicated) tombstone; `no-value`: metadata only; `ended`:
   * metadata of a version whose expiry passed (newer than a live copy elsewhere, it wins).
   */
  readonly state: 'absent' | 'live' | 'tombstone' | 'no-value' | 'ended';
  readonly version?: string;
  /** Absolute expiry, epoch ms, 0 for never. */
  readonly expiresAt?: number;
}

/** One session that differs. */
export interface Difference {
  readonly sid: string;
  readonly kind: DifferenceKind;
  /** The regions whose state is not the one the applier's rules make win. */
  readonly behind: readonly string[];
  /** Each region's state, by region id. */
  readonly regions: Readonly<Record<string, RegionView>>;
}

/** How states are compared. */
export interface CompareRules {
  /** Now, epoch ms. */
  readonly now: number;
  /** Sessions that end within this many ms of now are not compared (expiry timing differs). */
  readonly marginMs: number;
  /** Largest expiry difference between regions that is not a difference, ms. */
  readonly toleranceMs: number;
}

interface Reduced extends RegionView {
  /** Ends within the margin: not compared. */
  readonly fading: boolean;
  readonly value?: string;
}

function reduce(state: SessionState, rules: CompareRules): Reduced {
  const { meta, value } = state;
  if (!meta) {
    return value === undefined
      ? { state: 'absent', fading: false }
      : { state: 'live', fading: false, value, expiresAt: Number.NaN };
  }
  const x = meta.expiresAt;
  // Ends (or ended) within the margin of now: its expiry may have passed in one region and not another.
  const fading = x !== 0 && Math.abs(x - rules.now) <= rules.marginMs;
  const gone = x !== 0 && x < rules.now - rules.marginMs;
  const base = { version: meta.version, expiresAt: x, fading } as const;
  if (meta.tombstone) {
    // A local tombstone (r = 0, a never-saved id's logout) is never replicated.
    if (meta.replicatedExpiry === 0 || gone) return { state: 'absent', fading: false };
    return { ...base, state: 'tombstone' };
  }
  if (value === undefined) {
    // Metadata kept after its session expired, or an expiry that arrived before its session.
    if (meta.version === undefined) return { state: 'absent', fading };
    if (x !== 0 && x <= rules.now) return { ...base, state: 'ended' };
    if (meta.replicatedExpiry === undefined) return { state: 'absent', fading };
    return { ...base, state: 'no-value' };
  }
  return { ...base, state: 'live', value };
}

function highest(versions: readonly (string | undefined)[]): string {
  let top = '';
  for (const v of versions) if (v !== undefined && v > top) top = v;
  return top;
}

const expiryRank = (x: number | undefined): number => (x === 0 ? Number.POSITIVE_INFINITY : (x ?? 0));

/**
 * The difference between the states of `sid` in each region (`states[i]` in `ids[i]`), or `undefined`
 * when they agree (or a state ends within the margin).
 */
export function compareStates(
  sid: string,
  ids: readonly string[],
  states: readonly SessionState[],
  rules: CompareRules,
): Difference | undefined {
  const reduced = states.map((state) => reduce(state, rules));
  if (reduced.some((r) => r.fading)) return undefined;
  const regions: Record<string, RegionView> = {};
  reduced.forEach((r, i) => {
    const view: RegionView =
      r.state === 'absent'
        ? { state: 'absent' }
        : { state: r.state, version: r.version, expiresAt: r.expiresAt };
    regions[ids[i] as string] = view;
  });
  const where = (test: (r: Reduced) => boolean) => ids.filter((_, i) => test(reduced[i] as Reduced));
  const found = (kind: DifferenceKind, behind: string[]): Difference | undefined =>
    behind.length === 0 ? undefined : { sid, kind, behind, regions };

  const tombs = reduced.filter((r) => r.state === 'tombstone');
  if (tombs.length > 0) {
    if (reduced.some((r) => r.state === 'live' || r.state === 'no-value')) {
      return found(
        'tombstone-vs-live',
        where((r) => r.state !== 'tombstone'),
      );
    }
    if (tombs.length < reduced.length)
      return found(
        'missing',
        where((r) => r.state !== 'tombstone'),
      );
    const top = highest(tombs.map((r) => r.version));
    return found(
      'older-version',
      where((r) => (r.version ?? '') !== top),
    );
  }
  const lives = reduced.filter((r) => r.state === 'live');
  if (lives.length === 0) return undefined;
  const ended = highest(reduced.filter((r) => r.state === 'ended').map((r) => r.version));
  if (ended > highest(lives.map((r) => r.version))) {
    return found(
      'older-version',
      where((r) => r.state === 'live' || r.state === 'no-value'),
    );
  }
  if (lives.length < reduced.length)
    return found(
      'missing',
      where((r) => r.state !== 'live'),
    );
  const top = highest(lives.map((r) => r.version));
  const older = where((r) => (r.version ?? '') !== top);
  if (older.length > 0) return found('older-version', older);
  const value = lives[0]?.value;
  if (lives.some((r) => r.value !== value)) return found('value-differs', ids.slice(1));
  const latest = Math.max(...lives.map((r) => expiryRank(r.expiresAt)));
  return found(
    'expiry-drift',
    where((r) => latest - expiryRank(r.expiresAt) > rules.toleranceMs),
  );
}
