/**
 * The record of a region's resync in its own Redis: the hash `{P|resync}:<region>`, read by operators'
 * tools (the CLI's `status`, `store.status()`) and by the next resync to resume, and the lock
 * `{P|resync}:<region>:lock` that keeps two resyncs of one region apart.
 *
 * | field | meaning |
 * |---|---|
 * | `state` | `resyncing`, `done` or `failed` |
 * | `from` | the source region |
 * | `startedAt`, `finishedAt` | epoch ms (the resyncing host's clock); `finishedAt` empty while it runs |
 * | `copied`, `total` | sessions read and merged so far, and an estimate of all (`copied` once done) |
 * | `keys`, `keysTotal` | keys SCAN walked so far, and the source's key count at start (the target's too both ways) |
 * | `error` | why it failed, empty otherwise |
 * | `phase`, `cursor` | where it stands (`sessions`, `reverse-sessions`, `handover`) and the SCAN cursor, to resume |
 * | `cover`, `reverseCover` | where the source (the target) stood when the copy began (JSON), for the handover |
 * | `counts` | what the merges did (JSON: changed, unchanged, absorbed…) |
 * | `bothWays` | `1` for a resync both ways |
 * | `updatedAt` | epoch ms of the last page |
 */
import { randomBytes } from 'node:crypto';
import { ResyncError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import type { RedisClient } from '../types.js';
import type { CoverPoint } from './resync-handover.js';
import { type CopyCounts, emptyCopyCounts } from './session-state.js';

/** The steps of a resync, in order. */
export type ResyncPhase = 'sessions' | 'reverse-sessions' | 'handover' | 'done';

/** The phases that walk keys, in order (`handover` follows the last one that runs). */
export const COPY_PHASES: readonly ResyncPhase[] = ['sessions', 'reverse-sessions'];

/** Where a resync stands, as saved after every page. */
export interface ResyncPoint {
  readonly phase: ResyncPhase;
  readonly cursor: string;
  readonly startedAt: number;
  readonly cover: CoverPoint[];
  readonly reverseCover?: CoverPoint[] | undefined;
}

/** A resync that can go on where it stopped. */
export interface ResumablePoint extends ResyncPoint {
  readonly copied: number;
  readonly total: number;
  readonly keys: number;
  readonly keysTotal: number;
  readonly counts: CopyCounts;
}

/** Tallies saved with the state. */
interface Tallies {
  copied: number;
  total: number;
  keys: number;
  keysTotal: number;
  counts: CopyCounts;
}

/** How long the lock outlives a resync that stopped renewing it (a crashed process), ms. */
export const LOCK_MS = 60_000;

function parseJson<T>(text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** The resync hash and lock of one target region, for one run. */
export class ResyncLedger {
  private readonly key: string;
  private readonly lockKey: string;
  private readonly token = randomBytes(8).toString('hex');

  constructor(
    private readonly client: RedisClient,
    keys: KeySpace,
    private readonly target: string,
    private readonly source: string,
  ) {
    this.key = keys.resync(target);
    this.lockKey = keys.resync(target, 'lock');
  }

  /**
   * Takes the lock, or rejects with a `ResyncError` when another resync holds it. Taking it again is a
   * no-op: a retry whose first SET's answer was lost with the connection finds its own token.
   */
  async lock(): Promise<void> {
    const ok = await this.client.set(this.lockKey, this.token, 'PX', LOCK_MS, 'NX');
    if (ok === 'OK') return;
    if ((await this.client.get(this.lockKey)) === this.token) {
      await this.client.pexpire(this.lockKey, LOCK_MS);
      return;
    }
    throw new ResyncError(
      this.target,
      `another resync of this region is running (lock ${this.lockKey}; it expires ${LOCK_MS / 1000} s after that resync stops)`,
    );
  }

  /** Releases the lock if it is still ours. */
  async unlock(): Promise<void> {
    if ((await this.client.get(this.lockKey)) === this.token) await this.client.del(this.lockKey);
  }

  /** The point an interrupted resync from the same source (and the same direction) stopped at. */
  async resumable(bothWays: boolean): Promise<ResumablePoint | undefined> {
    const f = await this.client.hgetall(this.key);
    if (f.state !== 'resyncing' && f.state !== 'failed') return undefined;
    if (f.from !== this.source || (f.bothWays === '1') !== bothWays) return undefined;
    const phase = f.phase as ResyncPhase;
    const cover = parseJson<CoverPoint[]>(f.cover);
    const startedAt = Number(f.startedAt);
    if (!COPY_PHASES.includes(phase) && phase !== 'handover') return undefined;
    if (!Array.isArray(cover) || !Number.isFinite(startedAt) || typeof f.cursor !== 'string')
      return undefined;
    return {
      phase,
      cursor: f.cursor,
      startedAt,
      cover,
      reverseCover: parseJson<CoverPoint[]>(f.reverseCover),
      copied: Number(f.copied) || 0,
      total: Number(f.total) || 0,
      keys: Number(f.keys) || 0,
      keysTotal: Number(f.keysTotal) || 0,
      counts: { ...emptyCopyCounts(), ...parseJson<CopyCounts>(f.counts) },
    };
  }

  /** Records a new resync, copying from where the source stands (`cover`). */
  async begin(cover: CoverPoint[], bothWays: boolean, t: Tallies): Promise<ResyncPoint> {
    const point: ResyncPoint = { phase: 'sessions', cursor: '0', startedAt: Date.now(), cover };
    await this.client
      .multi()
      .del(this.key)
      .hset(this.key, {
        state: 'resyncing',
        from: this.source,
        startedAt: point.startedAt,
        finishedAt: '',
        copied: t.copied,
        total: t.total,
        keys: t.keys,
        keysTotal: t.keysTotal,
        error: '',
        phase: point.phase,
        cursor: point.cursor,
        cover: JSON.stringify(cover),
        counts: JSON.stringify(emptyCopyCounts()),
        bothWays: bothWays ? '1' : '0',
        updatedAt: point.startedAt,
      })
      .exec();
    return point;
  }

  /** Saves where it stands after a page, and renews the lock. */
  async progress(point: ResyncPoint, t: Tallies): Promise<void> {
    const fields: Record<string, string | number> = {
      phase: point.phase,
      cursor: point.cursor,
      copied: t.copied,
      total: t.total,
      keys: t.keys,
      keysTotal: t.keysTotal,
      counts: JSON.stringify(t.counts),
      updatedAt: Date.now(),
    };
    if (point.reverseCover) fields.reverseCover = JSON.stringify(point.reverseCover);
    await this.client.multi().hset(this.key, fields).pexpire(this.lockKey, LOCK_MS).exec();
  }

  /**
   * Checks that the target kept its data while the copy ran: a Redis that restarted empty or was
   * flushed meanwhile lost the record of this resync (`startedAt`), and what was copied before.
   */
  async checkTarget(point: ResyncPoint): Promise<void> {
    const startedAt = await this.client.hget(this.key, 'startedAt');
    if (startedAt === String(point.startedAt)) return;
    throw new ResyncError(
      this.target,
      'the target lost its data while the resync ran (its Redis restarted empty or was flushed): run it again',
    );
  }

  /** Records success. */
  async finish(t: Tallies & { finishedAt: number }): Promise<void> {
    await this.client
      .multi()
      .hset(this.key, {
        state: 'done',
        finishedAt: t.finishedAt,
        copied: t.copied,
        total: t.total,
        keys: t.keys,
        keysTotal: t.keysTotal,
        counts: JSON.stringify(t.counts),
        error: '',
        phase: 'done',
        cursor: '0',
        updatedAt: t.finishedAt,
      })
      .hdel(this.key, 'cover', 'reverseCover')
      .exec();
  }

  /** Records failure (the point saved last stays, for the next run to resume). */
  async fail(error: unknown, t: Tallies): Promise<void> {
    const message =
      error instanceof Error
        ? error.cause instanceof Error
          ? `${error.message}: ${error.cause.message}`
          : error.message
        : String(error);
    await this.client.hset(this.key, {
      state: 'failed',
      finishedAt: Date.now(),
      copied: t.copied,
      total: t.total,
      keys: t.keys,
      keysTotal: t.keysTotal,
      counts: JSON.stringify(t.counts),
      error: message.slice(0, 1024),
      updatedAt: Date.now(),
    });
  }
}
