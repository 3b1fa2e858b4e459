/**
 * Backlog trimming measures ages with the Redis clock (issue 14 item 6): stream ids carry the time of
 * the Redis that wrote them, so a host whose clock runs days ahead must not take unread entries for
 * old ones and trim them. The host clock is shifted in-process (only `Date`; timers are real), as the
 * store's own clock tests do. A private redis-server.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { trimStream } from '../../src/streams/trim.js';
import { hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

const DAY = 86_400_000;
const BOUND = { maxEntries: 1000, maxAgeMs: 3_600_000, warnAt: 0.5 };

describe.skipIf(!hasRedis)('trimStream and the clock', () => {
  let server: PrivateRedis;
  let client: Redis;

  beforeAll(async () => {
    server = await startRedis();
    client = server.client();
  });

  afterAll(async () => {
    await server.stop();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  async function unreadStream(key: string): Promise<void> {
    for (let i = 0; i < 3; i++) await client.xadd(key, '*', 'n', String(i));
    await client.xgroup('CREATE', key, 'kr', '0');
  }

  it('a host clock two days ahead trims no unread entry and reports no backlog', async () => {
    const key = 'trim:ahead';
    await unreadStream(key);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 2 * DAY);
    const [report] = await trimStream(client, key, ['kr'], BOUND);
    expect(await client.xlen(key)).toBe(3);
    expect(report).toMatchObject({ region: 'kr', entries: 3, level: 'ok' });
    expect(report?.oldestAgeMs).toBeLessThan(BOUND.maxAgeMs);
  });

  it('a host clock behind still lets entries past the age bound go', async () => {
    const key = 'trim:behind';
    await unreadStream(key);
    // Only the Redis clock says how old they are: one tiny bound, met for real.
    await new Promise((r) => setTimeout(r, 50));
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 2 * DAY);
    const [report] = await trimStream(client, key, ['kr'], { ...BOUND, maxAgeMs: 20 });
    expect(report?.level).toBe('exceeded');
    expect(await client.xlen(key)).toBe(0);
  });
});
