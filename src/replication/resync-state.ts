import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** The kinds of divergence a {@link ResyncNeed} records. */
export type ResyncCause = 'gap' | 'horizon' | 'backlog' | 'data-lost' | 'trimmed' | 'late';

/** Why and since when this region and another may hold different sessions. */
export interface ResyncNeed {
  readonly reason: string;
  /**
   * What kind of divergence: `gap` (numbered changes of that region never arrived; `missed` says
   * which), `horizon` (changes older than the stale-event horizon arrived), `backlog` (a backlog bound
   * dropped changes), `data-lost` (a Redis lost its data), `trimmed` (a stream was trimmed past a reader),
   * `late` (changes that region made before its Redis lost its data arrived here after it restarted:
   * it may not hold them, and a resync of it from this region brings them back).
   * Absent in needs recorded by older versions.
   */
  readonly cause?: ResyncCause;
  /**
   * For a `gap`: the numbers missed (the latest range when there were several), and the stream they
   * were numbered in (`<region>#<shard>` for an outbox shard's; absent for the region's one outbox and
   * in needs recorded by older versions).
   */
  readonly missed?: {
    readonly epoch: string;
    readonly from: number;
    readonly to: number;
    readonly stream?: string;
  };
  /** Epoch ms (this host's clock) when it was first noticed. */
  readonly since: number;
}

/**
 * Which regions this region needs a resync with, kept in this region's state hash
 * (`{<prefix>|state}:<region>`, fields `resync:<region>`) so that it survives restarts and operators'
 * tools can read it from Redis alone. Each need is reported once. The hash also holds an `epoch`
 * written at start: when it disappears while the process runs, this region's Redis lost its data (a
 * restart without persistence, FLUSHALL, a replacement), and the region needs a resync with every other.
 */
export class ResyncState {
  private readonly needs = new Map<string, ResyncNeed>();
  private epoch: string | undefined;
  /** Counts marks, so that a refresh whose read began before a mark does not forget it. */
  private marks = 0;

  constructor(
    private readonly client: Redis,
    private readonly key: string,
    private readonly region: string,
    private readonly onNeed: (region: string, need: ResyncNeed) => void,
    private readonly onError: (error: unknown) => void,
    /** The region's resync record (src/admin/resync.ts), when known: see {@link checkEpoch}. */
    private readonly resyncKey?: string,
  ) {}

  /** Loads what earlier processes recorded, and writes (or adopts) the epoch. */
  async load(): Promise<void> {
    const fields = await this.client.hgetall(this.key);
    for (const [region, need] of parseNeeds(fields)) this.needs.set(region, need);
    const fresh = randomBytes(8).toString('hex');
    await this.client.hsetnx(this.key, 'epoch', fresh);
    this.epoch = (await this.client.hget(this.key, 'epoch')) ?? fresh;
  }

  /**
   * Follows what other processes and tools changed in the hash: a need cleared there (a resync ran, an
   * operator's HDEL) is forgotten here, one recorded there is adopted (without reporting it again).
   * Skipped when the epoch is not the one this process holds: {@link checkEpoch} deals with that.
   */
  async refresh(): Promise<void> {
    if (this.epoch === undefined) return;
    const marks = this.marks;
    const fields = await this.client.hgetall(this.key);
    if (fields.epoch !== this.epoch || marks !== this.marks) return;
    const stored = new Map(parseNeeds(fields));
    for (const region of [...this.needs.keys()]) if (!stored.has(region)) this.needs.delete(region);
    for (const [region, need] of stored) if (!this.needs.has(region)) this.needs.set(region, need);
  }

  /** Checks that this region's Redis still holds the epoch seen at start. */
  async checkEpoch(): Promise<void> {
    if (this.epoch === undefined) return;
    try {
      const now = await this.client.hget(this.key, 'epoch');
      if (now === this.epoch) return;
      if (now === null) await this.client.hsetnx(this.key, 'epoch', this.epoch);
      else this.epoch = now;
      // A resync that finished since the data was lost brought it back (one that ran across the loss
      // would have lost its record with the data, and fails).
      if (this.resyncKey && (await this.client.hget(this.resyncKey, 'state')) === 'done') return;
      // The needs recorded before went with the data: write them again (refresh() would forget them).
      this.marks++;
      for (const [region, need] of this.needs) {
        this.client.hset(this.key, `resync:${region}`, JSON.stringify(need)).catch(this.onError);
      }
      this.mark(this.region, 'this region’s Redis lost its data (restarted empty, flushed or replaced)', {
        cause: 'data-lost',
      });
    } catch (error) {
      this.onError(error);
    }
  }

  /**
   * Records that this region needs a resync with `region` (once; later marks keep the first reason, but
   * a gap found later records the range missed, whatever noticed the divergence first).
   */
  mark(
    region: string,
    reason: string,
    detail: { cause?: ResyncCause; missed?: ResyncNeed['missed'] } = {},
  ): void {
    this.marks++;
    const known = this.needs.get(region);
    if (known) {
      if (detail.cause === 'gap' && detail.missed) {
        const need = { ...known, missed: detail.missed };
        this.needs.set(region, need);
        this.client.hset(this.key, `resync:${region}`, JSON.stringify(need)).catch(this.onError);
      }
      return;
    }
    const need: ResyncNeed = { reason, since: Date.now(), ...detail };
    this.needs.set(region, need);
    this.client.hset(this.key, `resync:${region}`, JSON.stringify(need)).catch(this.onError);
    this.onNeed(region, need);
  }

  /** Forgets a need (late arrivals healed it; a resync clears needs in Redis, see {@link refresh}). */
  async clear(region: string): Promise<void> {
    this.marks++;
    this.needs.delete(region);
    await this.client.hdel(this.key, `resync:${region}`);
  }

  snapshot(): Record<string, ResyncNeed> {
    return Object.fromEntries(this.needs);
  }
}

/** The needs recorded in a state hash's fields (`resync:<region>`); fields we did not write are skipped. */
export function parseNeeds(fields: Record<string, string>): [string, ResyncNeed][] {
  const out: [string, ResyncNeed][] = [];
  for (const [field, value] of Object.entries(fields)) {
    if (!field.startsWith('resync:')) continue;
    try {
      const need = JSON.parse(value) as ResyncNeed;
      out.push([
        field.slice('resync:'.length),
        {
          reason: String(need.reason),
          since: Number(need.since),
          ...(need.cause ? { cause: need.cause } : {}),
          ...(need.missed ? { missed: need.missed } : {}),
        },
      ]);
    } catch {
      // A field we did not write: ignore it.
    }
  }
  return out;
}
