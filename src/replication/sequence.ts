import type { Envelope } from '../contracts/envelope.js';
import { TimeoutError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import { parseRanges, type TrackResult, trackSequence } from '../redis/commands.js';
import { withTimeout } from '../runtime/timeout.js';
import type { RedisClient } from '../types.js';

/**
 * Sequence numbers: how a region tells a gap from a duplicate (docs/replication.md, "No silent
 * divergence"). Every change a region publishes is numbered by its scripts, `<epoch>.<n>` in the
 * envelope id (`<origin>:<epoch>.<n>`), so the number is sealed with the envelope; a quiet region
 * announces its last number with a `heartbeat` envelope (`<origin>:<epoch>.<n>.h<time>`). Each receiving
 * region records, in its own Redis and shared by all its processes, what it handled of each origin
 * (src/redis/scripts/track.lua); numbers missing for longer than a grace are a gap, reported with the
 * range missed, and numbers handled before are duplicates, dropped and counted.
 *
 * An origin with outbox shards (src/wire/outbox-shards.ts) numbers each shard on its own counter and
 * epoch: its envelope ids name the shard's stream, `<origin>#<shard>:<epoch>.<n>`, and everything here
 * (the numbers known, the state hash's fields, the held sets) is kept per stream, so interleaved shards
 * are neither gaps nor epoch changes. A gap is still reported against the origin region.
 */

/** The kind of envelope that announces an origin's last number. */
export const HEARTBEAT_KIND = 'heartbeat';

/** The number an envelope id carries. */
export interface EnvelopeNumber {
  /** The stream it numbers: the origin, or `<origin>#<shard>` for one of its outbox shards. */
  readonly stream: string;
  readonly epoch: string;
  readonly n: number;
  /** A heartbeat announces `n` as the last number given; it is not numbered itself. */
  readonly heartbeat: boolean;
}

const NUMBERED = /^([a-z0-9-]{1,32})(#\d{1,3})?:(\d{16})\.(\d{1,15})(\.h\d{1,16})?$/;

/** The number in `envelope`'s id, or `undefined` for an unnumbered envelope or one naming another origin. */
export function numberOf(envelope: Envelope): EnvelopeNumber | undefined {
  const match = NUMBERED.exec(envelope.id);
  if (!match || match[1] !== envelope.origin) return undefined;
  return {
    stream: envelope.origin + (match[2] ?? ''),
    epoch: match[3] as string,
    n: Number(match[4]),
    heartbeat: match[5] !== undefined,
  };
}

/** The origin region of a stream name (`hk` or `hk#3`). */
export function originOfStream(stream: string): string {
  const hash = stream.indexOf('#');
  return hash < 0 ? stream : stream.slice(0, hash);
}

/** A gap: numbers of `origin` that never arrived. */
export interface SequenceGap {
  readonly origin: string;
  /** The origin's stream they were numbered in (`origin`, or `<origin>#<shard>`). */
  readonly stream: string;
  readonly epoch: string;
  readonly from: number;
  readonly to: number;
}

/** Why a gap needs a resync, in words (what the resync state records). */
export function describeGap(gap: SequenceGap): string {
  const count = gap.to - gap.from + 1;
  const where = gap.stream === gap.origin ? gap.origin : `${gap.origin} (outbox ${gap.stream})`;
  return `gap: ${count} numbered change${count === 1 ? '' : 's'} from ${where} (${gap.from}-${gap.to} of epoch ${gap.epoch}) never arrived: a broker's retention or length limit, a trimmed stream or a deleted message dropped them, or the origin dead-lettered a change too large to send`;
}

/** What one region knows of one origin's numbers. */
export interface OriginSequence {
  /** The origin's current epoch, as far as this region knows. */
  readonly epoch: string;
  /** Every number up to this one was handled here (or given up as a gap). */
  readonly low: number;
  /** Ranges given up as gaps and not filled since. */
  readonly gaps: readonly { readonly from: number; readonly to: number }[];
}

/** Options of {@link SequenceTracker}. */
export interface SequenceTrackerOptions {
  readonly client: RedisClient;
  readonly keys: KeySpace;
  /** The receiving region. */
  readonly region: string;
  /** Numbers missing this long are a gap. */
  readonly graceMs: number;
  readonly timeoutMs: number;
  onGap(gap: SequenceGap): void;
  /** Every gap of one of `origin`'s streams was filled by late arrivals (see `hasGaps` for the others). */
  onHealed(origin: string): void;
  /**
   * Changes of an earlier epoch of `origin` were handled after its current epoch was known here: the
   * origin's Redis lost its data (its outbox counts from 1 again) while they were on their way, so it
   * may not hold them.
   */
  onLateEpoch?(origin: string, stream: string): void;
}

/** Per stream and epoch: what was tallied from one delivered batch. */
interface Tally {
  epoch: string;
  numbers: number[];
  announced: number | undefined;
}

/**
 * Tracks, for one region, which numbered envelopes of each origin's stream it handled. {@link isDuplicate} drops
 * what was handled before from what this process knows (no round trip); {@link record} writes what a
 * batch brought once it was applied, which also catches duplicates handled by the region's other
 * processes, and finds gaps.
 */
export class SequenceTracker {
  private readonly known = new Map<string, OriginSequence>();
  /** Duplicates dropped or found, per origin. */
  readonly duplicates: Record<string, number> = {};
  /** Numbers that arrived after their range was given up as a gap, per origin. */
  readonly late: Record<string, number> = {};

  constructor(private readonly options: SequenceTrackerOptions) {}

  /** Loads what the region's processes recorded (at start, and now and then to follow the others). */
  async load(): Promise<void> {
    const { client, keys, region, timeoutMs } = this.options;
    const fields = await withTimeout(
      client.hgetall(keys.seen(region)),
      timeoutMs,
      () => new TimeoutError('reading the sequence state', timeoutMs),
    );
    for (const [stream, text] of Object.entries(fields)) {
      const [epoch = '', low = '', , , , gaps = ''] = text.split('|');
      if (!/^\d{16}$/.test(epoch)) continue;
      const mine = this.known.get(stream);
      // Never move back what this process learnt from a later reply.
      if (mine && mine.epoch === epoch && mine.low > Number(low)) continue;
      if (mine && mine.epoch > epoch) continue;
      this.known.set(stream, { epoch, low: Number(low), gaps: parseRanges(gaps) });
    }
  }

  /**
   * True when `envelope` carries a number this region handled before (it is then counted). Never for an
   * outbox shard's number: a shard lives on a Redis Cluster master, and when that master dies its
   * promoted replica may lack its last writes (asynchronous replication), its counter among them, so it
   * gives those numbers again to new changes; these are applied (the apply script is idempotent and
   * orders by version, so a true duplicate changes nothing) and only counted as duplicates when recorded.
   */
  isDuplicate(envelope: Envelope, number: EnvelopeNumber | undefined = numberOf(envelope)): boolean {
    if (!number || number.heartbeat || number.stream !== envelope.origin) return false;
    const known = this.known.get(number.stream);
    if (!known || known.epoch !== number.epoch || number.n > known.low) return false;
    if (known.gaps.some((gap) => number.n >= gap.from && number.n <= gap.to)) return false;
    this.count(this.duplicates, number.stream, 1);
    return true;
  }

  /** A tally to fill with {@link add} while a batch is handled, then {@link record}. */
  tally(): Map<string, Tally> {
    return new Map();
  }

  /** Adds `envelope`'s number (if any) to `tally`. */
  add(
    tally: Map<string, Tally>,
    envelope: Envelope,
    number: EnvelopeNumber | undefined = numberOf(envelope),
  ) {
    if (!number) return;
    const key = `${number.stream} ${number.epoch}`;
    let entry = tally.get(key);
    if (!entry) {
      entry = { epoch: number.epoch, numbers: [], announced: undefined };
      tally.set(key, entry);
    }
    if (number.heartbeat) entry.announced = Math.max(entry.announced ?? 0, number.n);
    else entry.numbers.push(number.n);
  }

  /** Records a handled batch's numbers in the region's Redis; rejects (the batch comes again) on failure. */
  async record(tally: Map<string, Tally>): Promise<void> {
    if (tally.size === 0) return;
    const { client, keys, region, graceMs, timeoutMs } = this.options;
    // Older epochs first: a batch may straddle an origin's new epoch.
    const entries = [...tally.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const runs = entries.map(([key, t]) => {
      const stream = key.slice(0, key.indexOf(' '));
      // The state hash has one field per stream; its held set sits beside it (same slot).
      const done = trackSequence(
        client,
        { state: keys.seen(region), held: keys.seen(region, stream) },
        { origin: stream, epoch: t.epoch, graceMs, announced: t.announced, numbers: t.numbers },
      );
      return withTimeout(
        done,
        timeoutMs,
        () => new TimeoutError('recording sequence numbers', timeoutMs),
      ).then((result) => ({ stream, epoch: t.epoch, result, changes: t.numbers.length > 0 }));
    });
    for (const { stream, epoch, result, changes } of await Promise.all(runs)) {
      this.learn(stream, epoch, result, changes);
    }
  }

  private learn(stream: string, epoch: string, result: TrackResult, changes: boolean): void {
    if (result.duplicates > 0) this.count(this.duplicates, stream, result.duplicates);
    if (result.late > 0) this.count(this.late, stream, result.late);
    if (result.status === 'old-epoch') {
      if (changes) this.options.onLateEpoch?.(originOfStream(stream), stream);
      return;
    }
    this.known.set(stream, { epoch, low: result.low, gaps: result.gaps });
    const origin = originOfStream(stream);
    if (result.gap) this.options.onGap({ origin, stream, epoch, ...result.gap });
    if (result.healed) this.options.onHealed(origin);
  }

  /** True when one of `origin`'s streams has gaps not filled yet, as far as this process knows. */
  hasGaps(origin: string): boolean {
    for (const [stream, known] of this.known) {
      if (originOfStream(stream) === origin && known.gaps.length > 0) return true;
    }
    return false;
  }

  /** What this process knows of each stream's numbers (keyed `<origin>` or `<origin>#<shard>`). */
  snapshot(): Record<string, OriginSequence> {
    return Object.fromEntries(this.known);
  }

  private count(counter: Record<string, number>, origin: string, n: number): void {
    counter[origin] = (counter[origin] ?? 0) + n;
  }
}
