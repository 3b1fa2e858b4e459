/**
 * `repairRegions`: fixes what verify found, by the applier's own rules (docs/replication.md): a
 * tombstone anywhere wins and is copied where it is missing (a tombstoned id is never revived), the
 * newest version wins with its value and expiry, and of one version the later expiry wins. Every fix is
 * an event given to the region's own apply script (src/redis/scripts/apply.lua), which checks it as it
 * checks a replicated one and keeps the region's digests in step; nothing is replicated.
 *
 * On a Redis Cluster a fix names one session's keys and its shard's digest key, all in the shard's slot
 * (the sharded layout: give each Cluster region its stores' `outboxShards`).
 */
import { ConfigError } from '../errors.js';
import { type ApplyResult, applyChanges, forgetMeta, type RemoteChange } from '../redis/commands.js';
import type { SessionMeta } from '../redis/meta.js';
import { hashTagOf } from '../wire/internal-keys.js';
import type { Difference } from './difference.js';
import { isCluster } from './region-layout.js';
import { type AdminRegion, type ResolvedRegion, readStates, resolveRegions } from './region-state.js';
import { resolveVerifyOptions, type VerifyOptions, verifyRegions } from './verify.js';

/** One fix repair makes (or, with `dryRun`, would make). */
export interface RepairAction {
  readonly sid: string;
  /** The region it is made in. */
  readonly region: string;
  /**
   * `destroy`: the tombstone is copied; `set`: the winning version (its value and expiry) is copied;
   * `expire`: a newer version that already ended is copied (the older live copy ends with it);
   * `touch`: the later expiry of the same version is copied; `skip`: no rule says which copy wins (a
   * value changed outside geosession, or a value without metadata) and nothing is done.
   */
  readonly op: 'destroy' | 'set' | 'expire' | 'touch' | 'skip';
  readonly version?: string;
  readonly expiresAt?: number;
  /** The apply script's result code (ApplyResult: 0 applied, 2 for an `expire` that ended it), when it ran. */
  readonly result?: number;
}

/** Options of {@link repairRegions}. */
export interface RepairOptions extends VerifyOptions {
  /** The differences to fix (a verify's); without them, repair runs verify first. */
  readonly differences?: readonly Difference[];
  /** List what would be done, change nothing. @default false */
  readonly dryRun?: boolean;
  /** The stores' `tombstoneTtl`, seconds (the stale-event horizon; the digests depend on it). @default 86400 */
  readonly tombstoneTtl?: number;
  /** The stores' `maxClockSkewMs`. @default 60000 */
  readonly maxClockSkewMs?: number;
}

/** What {@link repairRegions} did. */
export interface RepairResult {
  /** The differences it set out to fix. */
  readonly differences: readonly Difference[];
  /** Every fix, in order. */
  readonly actions: readonly RepairAction[];
  readonly dryRun: boolean;
}

interface Live {
  readonly meta: SessionMeta;
  readonly value: string;
}

/** The fixes that make every region hold the winning state of one session. */
function plan(
  sid: string,
  regions: readonly ResolvedRegion[],
  states: readonly { meta?: SessionMeta; value?: string }[],
  now: number,
): RepairAction[] {
  const actions: RepairAction[] = [];
  const tombs = states.filter((s) => s.meta?.tombstone && s.meta.replicatedExpiry !== 0);
  if (tombs.length > 0) {
    let version = '';
    let expiresAt = 0;
    for (const t of tombs) {
      const meta = t.meta as SessionMeta;
      if ((meta.version ?? '') > version) version = meta.version ?? '';
      if (meta.expiresAt > expiresAt) expiresAt = meta.expiresAt;
    }
    states.forEach((s, i) => {
      const meta = s.meta;
      const done = meta?.tombstone && meta.version === version && meta.expiresAt >= expiresAt;
      if (!done)
        actions.push({ sid, region: (regions[i] as ResolvedRegion).id, op: 'destroy', version, expiresAt });
    });
    return actions;
  }
  let winner: Live | undefined;
  for (const s of states) {
    if (!s.meta || s.meta.version === undefined || s.value === undefined) continue;
    if (!winner || s.meta.version > (winner.meta.version as string))
      winner = { meta: s.meta, value: s.value };
  }
  // A newer version that ended (its metadata remains, its value and expiry are gone) beats older live
  // copies: they expire with it.
  let ended: SessionMeta | undefined;
  for (const { meta, value } of states) {
    if (!meta || meta.tombstone || value !== undefined || meta.version === undefined) continue;
    if (meta.expiresAt === 0 || meta.expiresAt > now) continue;
    if (!ended || meta.version > (ended.version as string)) ended = meta;
  }
  if (ended && (!winner || (ended.version as string) > (winner.meta.version as string))) {
    const { version, expiresAt } = ended;
    states.forEach((s, i) => {
      if (s.value === undefined) return;
      actions.push({ sid, region: (regions[i] as ResolvedRegion).id, op: 'expire', version, expiresAt });
    });
    return actions;
  }
  const latest = Math.max(
    ...states.map((s) =>
      s.meta && !s.meta.tombstone && s.value !== undefined && s.meta.version === winner?.meta.version
        ? s.meta.expiresAt === 0
          ? Number.POSITIVE_INFINITY
          : s.meta.expiresAt
        : 0,
    ),
  );
  states.forEach((s, i) => {
    const region = (regions[i] as ResolvedRegion).id;
    if (!winner) {
      if (s.value !== undefined) actions.push({ sid, region, op: 'skip' });
      return;
    }
    const version = winner.meta.version as string;
    if (s.meta?.version === version && s.value !== undefined) {
      if (s.value !== winner.value) {
        actions.push({ sid, region, op: 'skip', version });
        return;
      }
      const x = s.meta.expiresAt === 0 ? Number.POSITIVE_INFINITY : s.meta.expiresAt;
      if (x < latest)
        actions.push({
          sid,
          region,
          op: 'touch',
          version,
          expiresAt: latest === Number.POSITIVE_INFINITY ? 0 : latest,
        });
      return;
    }
    actions.push({ sid, region, op: 'set', version, expiresAt: winner.meta.expiresAt });
  });
  return actions;
}

/** The remote changes that carry out `action` (`winner`: the winning live state, for a set). */
function changesOf(
  region: ResolvedRegion,
  action: RepairAction,
  winner: Live | undefined,
  now: number,
): RemoteChange[] {
  const base = { value: region.keys.session(action.sid), meta: region.keys.meta(action.sid), time: now };
  const version = action.version as string;
  if (action.op === 'destroy') {
    return [
      {
        ...base,
        op: 'd',
        version,
        expiresAt: action.expiresAt ?? 0,
        lifetimeMs: undefined,
        fingerprint: '',
        data: '',
      },
    ];
  }
  const lifetimeMs = winner?.meta.lifetimeMs ?? 0;
  if (action.op === 'expire') {
    // A set of a version whose expiry has passed: the apply script ends the session (its value goes).
    return [
      { ...base, op: 's', version, expiresAt: action.expiresAt ?? 0, lifetimeMs, fingerprint: '', data: '' },
    ];
  }
  if (action.op === 'touch' || !winner) {
    return [
      { ...base, op: 't', version, expiresAt: action.expiresAt ?? 0, lifetimeMs, fingerprint: '', data: '' },
    ];
  }
  const { meta, value } = winner;
  // The expiry written with the value, unless it has passed (the session lives on through a touch):
  // then the expiry it has now, or the apply script would end it.
  let written = meta.writtenExpiry ?? meta.expiresAt;
  if (written !== 0 && written <= now + 1000) written = meta.replicatedExpiry ?? meta.expiresAt;
  const changes: RemoteChange[] = [
    {
      ...base,
      op: 's',
      version,
      expiresAt: written,
      lifetimeMs,
      fingerprint: meta.fingerprint ?? '',
      data: value,
    },
  ];
  // The expiry every region was told of (its touches below the touch step stay where they were made).
  const told = meta.replicatedExpiry ?? meta.expiresAt;
  if (told !== written) {
    const touched = meta.expiryVersion ?? version;
    changes.push({
      ...base,
      op: 't',
      version: touched,
      expiresAt: told,
      lifetimeMs,
      fingerprint: '',
      data: '',
    });
  }
  return changes;
}

/**
 * Fixes the differences between `regions` (those given in `options.differences`, or those a verify with
 * the same options finds) by the applier's rules, and lists every fix; with `dryRun`, lists them only.
 * Each session is read again first, so a session that changed since the verify is fixed as it is now.
 */
export async function repairRegions(
  regionList: readonly AdminRegion[],
  options: RepairOptions = {},
): Promise<RepairResult> {
  const regions = resolveRegions(regionList);
  regions.forEach((region, i) => {
    // Unsharded on a Cluster, a session's keys and the region's digest key are in different slots (and
    // no store replicates there: a replicating Cluster keeps the sharded layout).
    const tagged = hashTagOf(region.keyPrefix + region.keys.prefix) !== undefined;
    if (isCluster(region.client) && region.keys.shards === 0 && !tagged) {
      throw new ConfigError(
        `regions[${i}].outboxShards`,
        "is required for a Cluster region: its stores' outboxShards (8 by default on a Cluster that replicates)",
      );
    }
  });
  const o = resolveVerifyOptions(options);
  const tombstoneTtl = options.tombstoneTtl ?? 86_400;
  if (typeof tombstoneTtl !== 'number' || !(tombstoneTtl > 0)) {
    throw new ConfigError('tombstoneTtl', 'must be a number of seconds > 0');
  }
  const maxSkewMs = options.maxClockSkewMs ?? 60_000;
  if (typeof maxSkewMs !== 'number' || !(maxSkewMs >= 0)) {
    throw new ConfigError('maxClockSkewMs', 'must be a number of ms >= 0');
  }
  const horizonMs = Math.round(tombstoneTtl * 1000);
  const differences = options.differences ?? (await verifyRegions(regionList, options)).differences;
  const dryRun = options.dryRun === true;
  const sids = differences.map((d) => d.sid);
  const states = await Promise.all(regions.map((region) => readStates(region, sids, o.batch)));
  const actions: RepairAction[] = [];
  for (let i = 0; i < sids.length; i++) {
    const sid = sids[i] as string;
    const mine = states.map((s) => s[i] ?? { meta: undefined, value: undefined });
    const planned = plan(sid, regions, mine, Date.now());
    if (dryRun) {
      actions.push(...planned);
      continue;
    }
    const winnerIndex = mine.findIndex(
      (s) =>
        s.value !== undefined &&
        s.meta?.version !== undefined &&
        s.meta.version === planned.find((a) => a.op === 'set')?.version,
    );
    const winner = winnerIndex >= 0 ? (mine[winnerIndex] as Live) : undefined;
    for (const action of planned) {
      if (action.op === 'skip') {
        actions.push(action);
        continue;
      }
      const region = regions.find((r) => r.id === action.region) as ResolvedRegion;
      // The session's shard's digest key (the one digest key when unsharded).
      const digest = region.keys.digestOf(sid, region.id);
      const own = mine[regions.indexOf(region)];
      if (action.op === 'set' && own?.meta && !own.meta.tombstone && own.value === undefined) {
        // Metadata of a version whose value is gone: forgotten first, or the set would be a duplicate.
        await forgetMeta(
          region.client,
          { value: region.keys.session(sid), meta: region.keys.meta(sid), digest },
          horizonMs,
        );
      }
      const changes = changesOf(region, action, winner, Date.now());
      const { results } = await applyChanges(
        region.client,
        changes,
        horizonMs,
        maxSkewMs,
        digest,
        region.keys.revoked(region.id),
      );
      actions.push({ ...action, result: results[0] as ApplyResult });
    }
  }
  return { differences, actions, dryRun };
}
