import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** The kinds of divergence a {@link ResyncNeed} records. */
export type ResyncCause = 'gap' | 'horizon' | 'backlog' | 'data-lost' | 'trimmed';

/** Why and since when this region and another may hold different sessions. */
export interface ResyncNeed {
  readonly reason: string;
  /**
   * What kind of divergence: `gap` (numbered changes of that region never arrived; `missed` says
   * which), `horizon` (changes older than the stale-event horizon arrived), `backlog` (a backlog bound
   * dropped changes), `data-lost` (a Redis lost its data), `trimmed` (a stream was trimmed past a reader).
   * Absent in needs recorded by older versions.
   */
  readonly cause?: ResyncCause;
  /** For a `gap`: the numbers missed (the latest range when there were several). */
  readonly missed?: { readonly epoch: string; readonly from: number; readonly to: number };
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

  constructor(
    private readonly client: Redis,
    private readonly key: string,
    private readonly region: string,
    private readonly onNeed: (region: string, need: ResyncNeed) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Loads what earlier processes recorded, and writes (or adopts) the epoch. */
  async load(): Promise<void> {
    const fields = await this.client.hgetall(this.key);
    for (const [field, value] of Object.entries(fields)) {
      if (!field.startsWith('resync:')) continue;
      try {
        const need = JSON.parse(value) as ResyncNeed;
        this.needs.set(field.slice('resync:'.length), {
          reason: String(need.reason),
          since: Number(need.since),
          ...(need.cause ? { cause: need.cause } : {}),
          ...(need.missed ? { missed: need.missed } : {}),
        });
      } catch {
        // A field we did not write: ignore it.
      }
    }
    const fresh = randomBytes(8).toString('hex');
    await this.client.hsetnx(this.key, 'epoch', fresh);
    this.epoch = (await this.client.hget(this.key, 'epoch')) ?? fresh;
  }

  /** Checks that this region's Redis still holds the epoch seen at start. */
  async checkEpoch(): Promise<void> {
    if (this.epoch === undefined) return;
    try {
      const now = await this.client.hget(this.key, 'epoch');
      if (now === this.epoch) return;
      if (now === null) await this.client.hsetnx(this.key, 'epoch', this.epoch);
      else this.epoch = now;
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

  /** Forgets a need once a resync has run (the resync command of a later release calls this). */
  async clear(region: string): Promise<void> {
    this.needs.delete(region);
    await this.client.hdel(this.key, `resync:${region}`);
  }

  snapshot(): Record<string, ResyncNeed> {
    return Object.fromEntries(this.needs);
  }
}
