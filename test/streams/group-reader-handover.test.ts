/**
 * StreamGroupReader's lifecycle and handover (issue 14, items 4 and 6): a reader stopped before it
 * started opens nothing and never runs; one stopped in order hands what it leaves pending to the group's
 * next reader, which takes all of it up at once (more than one XPENDING page, more than one claim),
 * not after `claimIdleMs`.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StreamGroupReader } from '../../src/streams/group-reader.js';
import type { StreamEntry } from '../../src/wire/stream-entry.js';
import { eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('StreamGroupReader lifecycle and handover', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('handover');
  const readers: StreamGroupReader[] = [];
  let n = 0;

  afterEach(async () => {
    await Promise.all(readers.splice(0).map((r) => r.stop(500)));
  });
  afterAll(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  async function stream(count: number): Promise<string> {
    const key = `${prefix}s${n++}`;
    await client.xgroup('CREATE', key, 'g', '0', 'MKSTREAM');
    for (let i = 0; i < count; i += 500) {
      const multi = client.multi();
      for (let j = i; j < Math.min(count, i + 500); j++) multi.xadd(key, '*', 'n', String(j));
      await multi.exec();
    }
    return key;
  }

  function reader(key: string, onBatch: (entries: StreamEntry[]) => Promise<void>) {
    const r = new StreamGroupReader({
      client,
      key,
      group: 'g',
      consumerPrefix: 'test',
      batchSize: 1000,
      blockMs: 200,
      // Far beyond the test: what the next reader handles here was handed over, not claimed as a dead
      // consumer's.
      claimIdleMs: 120_000,
      watchdogMs: 2000,
      maxInFlight: 3,
      onBatch,
      onError: () => {},
    });
    readers.push(r);
    return r;
  }

  const pending = async (key: string) => Number(((await client.xpending(key, 'g')) as [number])[0]);

  it('a reader stopped before it started never reads', async () => {
    const key = await stream(5);
    const seen: StreamEntry[] = [];
    const r = reader(key, async (entries) => {
      seen.push(...entries);
    });
    await r.stop();
    r.start();
    expect(r.state).toBe('closed');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(seen).toEqual([]);
    expect(await pending(key)).toBe(0);
  });

  it('2500 entries a stopped reader was still handling are handled by the next reader at once', async () => {
    const key = await stream(2500);
    // Never resolves: three batches of 1000, 1000 and 500 stay in flight, pending under this consumer.
    const first = reader(key, () => new Promise<void>(() => {}));
    first.start();
    await eventually(async () => (await pending(key)) === 2500, 10_000);
    await first.stop(100);
    expect(first.state).toBe('closed');

    const handled = new Set<string>();
    const next = reader(key, async (entries) => {
      for (const [id] of entries) handled.add(id);
    });
    next.start();
    await eventually(async () => (await pending(key)) === 0, 10_000);
    expect(handled.size).toBe(2500);
  });
});
