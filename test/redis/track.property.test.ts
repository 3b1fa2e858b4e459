/**
 * track.lua, the record of which numbered envelopes of an origin a region handled, against the machine's
 * Redis: random deliveries (reordered, repeated, some numbers never delivered) hold its promises —
 * every number is counted once as handled, once more as a duplicate for each repeat, the numbers given up
 * as gaps are exactly the ones that never came, and late arrivals fill gaps until the origin is whole.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { type TrackResult, trackSequence } from '../../src/redis/commands.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const EPOCH = '1765000000000000';
const LATER_EPOCH = '1765000000000001';

describe.skipIf(!hasRedis)('track.lua (sequence numbers)', () => {
  const redis = sharedRedis();
  const prefix = uniquePrefix('track');
  let run = 0;

  afterAll(async () => {
    await dropKeys(redis, `{${prefix}`);
    redis.disconnect();
  });

  /** A fresh receiving region. */
  function region() {
    const keys = createKeySpace(prefix);
    const name = `r${++run}`;
    const track = (numbers: number[], o: { graceMs?: number; announced?: number; epoch?: string } = {}) =>
      trackSequence(
        redis,
        { state: keys.seen(name), held: keys.seen(name, 'hk') },
        {
          origin: 'hk',
          epoch: o.epoch ?? EPOCH,
          graceMs: o.graceMs ?? 60_000,
          announced: o.announced,
          numbers,
        },
      );
    return { track };
  }

  it('in order, out of order and repeated: every number handled once, every repeat a duplicate', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.integer({ min: 1, max: 7 }),
        fc.nat(),
        async (count, repeats, batchSize, seed) => {
          const { track } = region();
          // Number 1 first (the first contact starts from what arrives), then the rest shuffled.
          const rest = Array.from({ length: count - 1 }, (_, i) => i + 2);
          let s = seed;
          for (let i = rest.length - 1; i > 0; i--) {
            s = (s * 1103515245 + 12345) % 2147483648;
            const j = s % (i + 1);
            [rest[i], rest[j]] = [rest[j] as number, rest[i] as number];
          }
          const deliveries = [1, ...rest];
          for (const r of repeats) deliveries.splice(1 + (r % deliveries.length), 0, 1 + (r % count));
          let duplicates = 0;
          let last: TrackResult | undefined;
          for (let i = 0; i < deliveries.length; i += batchSize) {
            last = await track(deliveries.slice(i, i + batchSize));
            duplicates += last.duplicates;
            expect(last.gap).toBeUndefined();
          }
          expect(duplicates).toBe(repeats.length);
          expect(last?.low).toBe(count);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('numbers that never come are given up as exactly the gaps, and late arrivals heal them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 40 }),
        fc.array(fc.integer({ min: 2, max: 40 }), { minLength: 1, maxLength: 10 }),
        async (count, missingRaw) => {
          const missing = new Set(missingRaw.filter((n) => n <= count));
          if (missing.size === 0) return;
          const { track } = region();
          const delivered = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !missing.has(n));
          // Grace 0: whatever is missing when a batch was recorded is given up at once.
          const given: number[] = [];
          let last = await track(delivered, { graceMs: 0, announced: count });
          if (last.gap) for (let n = last.gap.from; n <= last.gap.to; n++) given.push(n);
          for (let round = 0; round < 50 && last.low < count; round++) {
            last = await track([], { graceMs: 0, announced: count });
            if (last.gap) for (let n = last.gap.from; n <= last.gap.to; n++) given.push(n);
          }
          expect(last.low).toBe(count);
          expect(given.sort((a, b) => a - b)).toEqual([...missing].sort((a, b) => a - b));
          // The missing numbers arrive after all: late, and the origin is whole again.
          const late = await track([...missing], { graceMs: 0 });
          expect(late.late).toBe(missing.size);
          expect(late.duplicates).toBe(0);
          expect(late.healed).toBe(true);
          expect(late.gaps).toEqual([]);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a gap is given up only after the grace, and a heartbeat reveals one at the tail', async () => {
    const { track } = region();
    expect((await track([1, 2, 3])).low).toBe(3);
    // 4 and 5 were lost; the origin then went quiet and announced 5.
    const first = await track([], { announced: 5, graceMs: 200 });
    expect(first.gap).toBeUndefined();
    expect(first.low).toBe(3);
    await new Promise((r) => setTimeout(r, 250));
    const later = await track([], { announced: 5, graceMs: 200 });
    expect(later.gap).toEqual({ from: 4, to: 5 });
    expect(later.low).toBe(5);
  });

  it('the first contact counts from 1: first numbers that never came are a gap, late ones fill in', async () => {
    const { track } = region();
    const first = await track([5, 6, 7], { graceMs: 60_000 });
    expect(first).toMatchObject({ status: 'first', low: 0, duplicates: 0 });
    const earlier = await track([1, 2, 3, 4], { graceMs: 0 });
    expect(earlier).toMatchObject({ low: 7, duplicates: 0, late: 0 });
    expect(earlier.gap).toBeUndefined();
    expect((await track([6], { graceMs: 0 })).duplicates).toBe(1);
    // Another region's first contact after its origin's first changes were lost.
    const other = region();
    await other.track([3, 4], { graceMs: 60_000 });
    expect((await other.track([5], { graceMs: 0 })).gap).toEqual({ from: 1, to: 2 });
  });

  it('a new epoch (the origin lost its outbox) counts from 1; numbers of an older epoch are not tracked', async () => {
    const { track } = region();
    await track([1, 2, 3]);
    const fresh = await track([2], { epoch: LATER_EPOCH, graceMs: 0 });
    expect(fresh.status).toBe('new-epoch');
    expect(fresh.gap).toEqual({ from: 1, to: 1 });
    const old = await track([4], { epoch: EPOCH });
    expect(old.status).toBe('old-epoch');
    expect(old.duplicates).toBe(0);
  });
});
