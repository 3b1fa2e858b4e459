/**
 * Resync: brings a new or emptied region (the target) up from another (the source) under live traffic,
 * then hands over to normal replication with nothing missed, and clears the needs for a resync it
 * settled (docs/replication.md, "Resync").
 *
 * 1. Takes the region's resync lock and records `state: resyncing` in `{P|resync}:<target>`.
 * 2. Reads where the source stands (its outbox counter, what it handled of every other region).
 * 3. Walks the source's keys with SCAN: metadata keys (sessions, expired ones remembered, tombstones)
 *    and values without metadata, and merges each page into the target by the join rules
 *    (src/admin/session-state.ts), a few pages at a time. The stores of both regions keep running and replicating: the copy
 *    and replication converge whatever their order. The cursor is saved after every page, so an
 *    interrupted resync resumes where it stopped.
 * 4. With `bothWays`, does the same from the target to the source.
 * 5. Records the copy in the target's sequence state (changes it holds are not applied twice nor taken
 *    for a gap) and clears the needs it settled; running stores notice within seconds.
 */
import { ConfigError, GeoSessionError, ResyncError, TimeoutError, TransientError } from '../errors.js';
import { classifyFailure } from '../failures/reply-errors.js';
import { prefixProblem } from '../keys.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import { isValidRegion } from '../validation/ids.js';
import { keyCount, type RegionLayout, regionLayout } from './region-layout.js';
import { clearSettledNeeds, coverSequences, readCoverPoints } from './resync-handover.js';
import { ResyncLedger, type ResyncPhase, type ResyncPoint } from './resync-ledger.js';
import { copyUserMarks } from './resync-marks.js';
import { type ScanPage, scanRegionPage } from './session-scan.js';
import {
  addCopyCounts,
  type CopyCounts,
  copyBetween,
  emptyCopyCounts,
  type RegionRef,
} from './session-state.js';

export type { ResyncPhase } from './resync-ledger.js';

/** Options of {@link resyncRegion}. */
export interface ResyncOptions {
  /** The region brought up (new or emptied). */
  readonly target: RegionRef;
  /** The region copied from. */
  readonly source: RegionRef;
  /** The stores' key `prefix` (every region uses the same). Default `'sess:'`. */
  readonly prefix?: string;
  /** Keys asked of each SCAN page (COUNT), and so roughly sessions per round trip. Default 1000. */
  readonly batchSize?: number;
  /** The stores' `maxClockSkewMs`. Default 60,000. */
  readonly maxClockSkewMs?: number;
  /** The stores' `tombstoneTtl`, seconds: the digests (verify) of a tombstone copied depend on it. Default 86,400. */
  readonly tombstoneTtl?: number;
  /**
   * Also copy the target into the source, so both end holding the join of the two, and clear the
   * source's needs for the target too. Default false.
   */
  readonly bothWays?: boolean;
  /** Go on from where an interrupted resync of the same target from the same source stopped. Default true. */
  readonly resume?: boolean;
  /**
   * Times a run stopped by a transient failure of either Redis (a lost connection, a timeout, `LOADING`,
   * `BUSY`, `OOM`, `READONLY`...) goes on where it stopped, after a backoff of 250 ms doubling up to 5 s.
   * 0 fails at the first one. Default 5.
   */
  readonly retries?: number;
  /** Called after every page (and once at the end). */
  readonly onProgress?: (progress: ResyncProgress) => void;
  /** Called when a transient failure stopped the run and it goes on after `delayMs`. */
  readonly onRetry?: (retry: ResyncRetry) => void;
  /** Aborts between pages; the state is then `failed` and a later call resumes. */
  readonly signal?: AbortSignal;
}

/** Where a resync stands. */
export interface ResyncProgress {
  readonly target: string;
  readonly source: string;
  readonly phase: ResyncPhase;
  /** Sessions read and merged so far (tombstones and bare values included; every phase). */
  readonly copied: number;
  /**
   * Sessions to copy, an estimate: the source's key count at start (the target's too both ways),
   * scaled by the sessions per key walked so far; `copied` once done.
   */
  readonly total: number;
  /** Keys walked so far (what SCAN returned, every phase). */
  readonly keys: number;
  /** What the merges did, summed over every phase. */
  readonly counts: CopyCounts;
}

/** A transient failure a resync goes on after (see {@link ResyncOptions.retries}). */
export interface ResyncRetry {
  /** 1 for the first retry. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: unknown;
}

/** What {@link resyncRegion} did. */
export interface ResyncResult extends ResyncProgress {
  /** Epoch ms (this host's clock). */
  readonly startedAt: number;
  readonly finishedAt: number;
  /** True when it went on from an interrupted resync (a retry goes on from its own failed run). */
  readonly resumed: boolean;
  /** Transient failures it went on after (see {@link ResyncOptions.retries}). */
  readonly retries: number;
  /** The needs cleared: in the target (regions it needed a resync with), and in the source. */
  readonly cleared: { readonly target: string[]; readonly source: string[] };
}

const PHASES: readonly { phase: ResyncPhase; reverse: boolean }[] = [
  { phase: 'sessions', reverse: false },
  { phase: 'reverse-sessions', reverse: true },
];

/** SCAN pages merged at once: the source reads one while the target merges others. */
const WINDOW = 4;

/**
 * Walks `from`'s sessions from `cursor` and merges them into `to`, up to {@link WINDOW} pages at a
 * time; `onPage` runs for each page in SCAN order, once it and every page before it are merged (so the
 * cursor it saves is one to resume from).
 */
async function walk(a: {
  from: RegionLayout;
  to: RegionLayout;
  /** The id of the region copied into (`to`), whose digests follow. */
  toId: string;
  cursor: string;
  o: ReturnType<typeof settle>;
  signal: AbortSignal | undefined;
  targetId: string;
  onPage: (page: ScanPage, done: CopyCounts) => Promise<void>;
}): Promise<void> {
  const copy = {
    prefix: a.o.prefix,
    maxClockSkewMs: a.o.maxClockSkewMs,
    digestRegion: a.toId,
    tombstoneTtl: a.o.tombstoneTtl,
  };
  const merge = async (page: ScanPage): Promise<CopyCounts> => {
    const [sessions, bare] = await Promise.all([
      page.sids.length > 0 ? copyBetween(a.from, a.to, page.sids, copy) : emptyCopyCounts(),
      page.valueSids.length > 0
        ? copyBetween(a.from, a.to, page.valueSids, { ...copy, bareOnly: true })
        : emptyCopyCounts(),
    ]);
    return addCopyCounts(sessions, bare);
  };
  let cursor = a.cursor;
  let tail: Promise<void> = Promise.resolve();
  const window: Promise<void>[] = [];
  try {
    do {
      if (a.signal?.aborted) throw new ResyncError(a.targetId, 'aborted', { cause: a.signal.reason });
      const page = await scanRegionPage(a.from.client, a.from.keys, cursor, a.o.batchSize);
      cursor = page.cursor;
      const previous = tail;
      const merged = merge(page);
      tail = Promise.all([merged, previous]).then(([done]) => a.onPage(page, done));
      tail.catch(() => {});
      window.push(tail);
      if (window.length >= WINDOW) await window.shift();
    } while (cursor !== '0');
    await tail;
  } catch (error) {
    // Let the pages in flight settle first, so nothing writes progress after the failure is recorded.
    await tail.catch(() => {});
    throw error;
  }
}

function checkRegion(option: string, region: RegionRef | undefined, prefix: string): RegionLayout {
  if (!region || typeof region !== 'object') throw new ConfigError(option, 'is required: { id, client }');
  if (!isValidRegion(region.id)) throw new ConfigError(`${option}.id`, 'is not a valid region id');
  const client = region.client;
  if (!client || typeof client.scan !== 'function') {
    throw new ConfigError(`${option}.client`, 'must be an ioredis client (a Redis or a Cluster)');
  }
  return regionLayout(client, prefix, region.outboxShards, `${option}.outboxShards`);
}

function integer(option: string, value: number | undefined, fallback: number, least: 0 | 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < least) {
    throw new ConfigError(option, least === 1 ? 'must be a positive integer' : 'must be an integer ≥ 0');
  }
  return value;
}

const positive = (option: string, value: number | undefined, fallback: number) =>
  integer(option, value, fallback, 1);

/** Checks the options (a `ConfigError` naming the one at fault) and fills in the defaults. */
function settle(options: ResyncOptions) {
  const prefix = options.prefix ?? 'sess:';
  const problem = typeof prefix === 'string' ? prefixProblem(prefix) : 'must be a string';
  const target = checkRegion('target', options.target, problem ? 'sess:' : prefix);
  const source = checkRegion('source', options.source, problem ? 'sess:' : prefix);
  if (options.target.id === options.source.id) {
    throw new ConfigError('source', 'must be another region than the target');
  }
  if (problem) throw new ConfigError('prefix', problem);
  return {
    target,
    source,
    prefix,
    batchSize: positive('batchSize', options.batchSize, 1000),
    maxClockSkewMs: positive('maxClockSkewMs', options.maxClockSkewMs, 60_000),
    tombstoneTtl: positive('tombstoneTtl', options.tombstoneTtl, 86_400),
    bothWays: options.bothWays ?? false,
    resume: options.resume ?? true,
    retries: integer('retries', options.retries, 5, 0),
  };
}

/**
 * True for a failure a later run may not meet: one of Redis or of the connection to it, as the
 * replication applier classifies them (src/failures/reply-errors.ts). A resync's own refusals (another
 * resync holds the region, the target lost its data, an abort) and anything unknown stop it.
 */
function isRetryable(error: unknown): boolean {
  if (error instanceof ResyncError || error instanceof ConfigError) return false;
  if (
    error instanceof GeoSessionError &&
    !(error instanceof TimeoutError || error instanceof TransientError)
  ) {
    return false;
  }
  const { kind, code } = classifyFailure(error);
  return kind === 'transient' && code !== 'OTHER';
}

/**
 * Resyncs `target` from `source` (see the module's comment). Resolves once the target holds every
 * session, version and tombstone the source held when it started (merged with what the target
 * held and was written meanwhile), the handover is recorded and the settled needs are cleared. Rejects
 * with a `ConfigError` for bad options, or a `ResyncError` when another resync holds the target, the
 * target lost its data while it ran, or a failure stopped it that was not transient or outlasted
 * `retries` (the state is then `failed` and a later call resumes).
 */
export async function resyncRegion(options: ResyncOptions): Promise<ResyncResult> {
  const o = settle(options);
  const ledger = new ResyncLedger(o.target.client, o.target.keys, options.target.id, options.source.id);
  const backoff = new Backoff(250, 5_000);
  for (;;) {
    try {
      // A retry goes on from where the failed run stopped (its record says `failed`, from this source).
      const run = await runOnce(o, options, ledger, backoff.failures > 0 || o.resume);
      return { ...run, retries: backoff.failures };
    } catch (error) {
      if (backoff.failures >= o.retries || !isRetryable(error) || options.signal?.aborted) {
        if (error instanceof GeoSessionError) throw error;
        const detail = error instanceof Error ? error.message : String(error);
        throw new ResyncError(options.target.id, `failed: ${detail}`, { cause: error });
      }
      const delayMs = backoff.next();
      options.onRetry?.({ attempt: backoff.failures, delayMs, error });
      await sleep(delayMs, options.signal);
    }
  }
}

/** One run of {@link resyncRegion}, from its ledger's point when `resume`; rejects with what stopped it. */
async function runOnce(
  o: ReturnType<typeof settle>,
  options: ResyncOptions,
  ledger: ResyncLedger,
  resume: boolean,
): Promise<Omit<ResyncResult, 'retries'>> {
  const targetId = options.target.id;
  const sourceId = options.source.id;
  await ledger.lock();
  let copied = 0;
  let total = 0;
  let keys = 0;
  let keysTotal = 0;
  const counts = emptyCopyCounts();
  try {
    const resumed = resume ? await ledger.resumable(o.bothWays) : undefined;
    let point: ResyncPoint;
    if (resumed) {
      ({ copied, total, keys, keysTotal } = resumed);
      Object.assign(counts, resumed.counts);
      point = resumed;
    } else {
      const cover = await readCoverPoints(o.source.client, o.source.keys, sourceId, targetId);
      keysTotal = (await keyCount(o.source.client)) + (o.bothWays ? await keyCount(o.target.client) : 0);
      // A live session has two keys (value and metadata), a tombstone one.
      total = Math.round(keysTotal / 2);
      point = await ledger.begin(cover, o.bothWays, { copied, total, keys, keysTotal, counts });
    }
    // The users' "revoked before" marks first, so that the sessions they cover, copied or in flight,
    // are refused in the target as in the source (one small read per user index; idempotent on resume).
    await copyUserMarks(o.source.client, o.target.client, o.source.keys, o.target.keys);
    if (o.bothWays) await copyUserMarks(o.target.client, o.source.client, o.target.keys, o.source.keys);
    const report = (phase: ResyncPhase) =>
      options.onProgress?.({ target: targetId, source: sourceId, phase, copied, total, keys, counts });
    const steps = PHASES.filter((step) => o.bothWays || !step.reverse);
    for (const [i, step] of steps.entries()) {
      if (point.phase !== step.phase) continue;
      if (step.reverse && !point.reverseCover) {
        point = {
          ...point,
          reverseCover: await readCoverPoints(o.target.client, o.target.keys, targetId, sourceId),
        };
      }
      await walk({
        from: step.reverse ? o.target : o.source,
        to: step.reverse ? o.source : o.target,
        toId: step.reverse ? sourceId : targetId,
        cursor: point.cursor,
        o,
        signal: options.signal,
        targetId,
        onPage: async (page, done) => {
          addCopyCounts(counts, done);
          keys += page.keys;
          copied += done.read;
          if (keys > 0) total = Math.max(copied, Math.round((copied * Math.max(keysTotal, keys)) / keys));
          point =
            page.cursor === '0'
              ? { ...point, phase: steps[i + 1]?.phase ?? 'handover', cursor: '0' }
              : { ...point, cursor: page.cursor };
          await ledger.progress(point, { copied, total, keys, keysTotal, counts });
          report(step.phase);
        },
      });
    }
    await ledger.checkTarget(point);
    const cleared = await handover(o, { targetId, sourceId, point });
    const finishedAt = Date.now();
    total = copied;
    await ledger.finish({ copied, total, keys, keysTotal, counts, finishedAt });
    report('done');
    return {
      target: targetId,
      source: sourceId,
      phase: 'done',
      copied,
      total,
      keys,
      counts,
      startedAt: point.startedAt,
      finishedAt,
      resumed: resumed !== undefined,
      cleared,
    };
  } catch (error) {
    await ledger.fail(error, { copied, total, keys, keysTotal, counts }).catch(() => {});
    throw error;
  } finally {
    await ledger.unlock().catch(() => {});
  }
}

async function handover(
  o: ReturnType<typeof settle>,
  a: {
    targetId: string;
    sourceId: string;
    point: ResyncPoint;
  },
): Promise<{ target: string[]; source: string[] }> {
  const { targetId, sourceId, point } = a;
  await coverSequences(o.target.client, o.target.keys, targetId, point.cover);
  const target = await clearSettledNeeds(o.source.client, o.target.client, o.target.keys, {
    from: sourceId,
    to: targetId,
    startedAt: point.startedAt,
    points: point.cover,
  });
  if (!o.bothWays) return { target, source: [] };
  const reverse = point.reverseCover ?? [];
  await coverSequences(o.source.client, o.source.keys, sourceId, reverse);
  const source = await clearSettledNeeds(o.target.client, o.source.client, o.source.keys, {
    from: targetId,
    to: sourceId,
    startedAt: point.startedAt,
    points: reverse,
  });
  return { target, source };
}
