/**
 * The Redis clock lag is measured with: an offset measured over a slow round trip (a busy event loop
 * that read Redis's answer late) must not replace one measured over a fast one, or every lag reported
 * after it is off by half that round trip (the demo once reported 39 ms for a write it measured at 13).
 * "Slow" here is the machine's Redis answering `TIME` as it does, and the answer handed over 400 ms
 * later, as a blocked event loop does. Offsets are compared exactly, not timed.
 */
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisClock } from '../../src/replication/redis-clock.js';
import { hasRedis, sharedRedis } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('RedisClock', () => {
  const client = hasRedis ? sharedRedis() : (undefined as unknown as Redis);
  afterAll(() => client?.disconnect());

  /** `client`, whose TIME answers reach the caller `lateMs()` ms after Redis sent them. */
  const late = (lateMs: () => number) =>
    ({
      time: async () => {
        const answer = await client.time();
        const ms = lateMs();
        if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
        return answer;
      },
    }) as unknown as Redis;

  it('keeps the offset of a fast round trip over a slow one, for a minute', async () => {
    let lateMs = 0;
    let jumpMs = 0;
    // A host clock 10 s behind the machine's (and so Redis's), which the test can move ahead.
    const host = () => Date.now() - 10_000 + jumpMs;
    const clock = new RedisClock(
      late(() => lateMs),
      host,
    );
    const offset = () => clock.now() - host();

    await clock.sync();
    const fast = offset();
    expect(Math.abs(fast - 10_000), 'the host is 10 s behind Redis').toBeLessThan(1000);

    lateMs = 400; // the midpoint of a call is now about 200 ms after Redis answered
    await clock.sync();
    expect(offset(), 'a slow measure does not replace a fast one').toBe(fast);

    jumpMs = 61_000; // a minute later the old measure is no longer trusted over a new one
    await clock.sync();
    expect(offset(), 'after a minute a slow measure is taken').toBeLessThan(fast - 61_000 - 100);

    lateMs = 0; // a fast measure is always taken
    await clock.sync();
    expect(Math.abs(offset() - (fast - 61_000))).toBeLessThan(100);
  });

  it('takes the fastest of its calls', async () => {
    let calls = 0;
    // The first call of each sync is handed over 400 ms late; the other two are as fast as they are.
    const clock = new RedisClock(
      late(() => (calls++ % 3 === 0 ? 400 : 0)),
      () => Date.now(),
    );
    await clock.sync();
    // Redis and this process share the machine's clock: the offset is a few ms, not -200.
    expect(Math.abs(clock.now() - Date.now())).toBeLessThan(100);
  });
});
