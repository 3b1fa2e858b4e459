import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StreamGroupReader } from '../../src/streams/group-reader.js';
import type { StreamEntry } from '../../src/wire/stream-entry.js';
import { eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

describe.skipIf(!hasRedis)('StreamGroupReader', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('reader');
  const readers: StreamGroupReader[] = [];
  let n = 0;

  afterEach(async () => {
    await Promise.all(readers.splice(0).map((r) => r.stop()));
  });

  afterAll(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  async function stream(entries: number): Promise<string> {
    const key = `${prefix}s${n++}`;
    await client.xgroup('CREATE', key, 'kr', '0', 'MKSTREAM');
    const pipeline = client.pipeline();
    for (let i = 0; i < entries; i++) pipeline.xadd(key, '*', 'n', String(i));
    await pipeline.exec();
    return key;
  }

  const pending = async (key: string) => ((await client.xpending(key, 'kr')) as [number])[0];

  function reader(
    key: string,
    onBatch: (entries: StreamEntry[]) => Promise<void>,
    over: Redis = client,
    tuning: { claimIdleMs?: number } = {},
  ) {
    const errors: unknown[] = [];
    const r = new StreamGroupReader({
      client: over,
      key,
      group: 'kr',
      consumerPrefix: 'test',
      batchSize: 10,
      blockMs: 200,
      claimIdleMs: tuning.claimIdleMs ?? 60_000,
      watchdogMs: 2000,
      onBatch,
      onError: (error) => errors.push(error),
    });
    readers.push(r);
    return { reader: r, errors };
  }

  /** A reader over a proxied link to the stream, recording the numbers it handles. */
  async function farReader(key: string, tuning: { claimIdleMs?: number; retryMs?: number } = {}) {
    const proxy = await startTcpProxy(6379);
    const far = sharedRedis({ port: proxy.port, retryStrategy: () => tuning.retryMs ?? 50 });
    const seen: number[] = [];
    const { reader: r } = reader(
      key,
      async (entries) => {
        seen.push(...numbers(entries));
      },
      far,
      tuning,
    );
    const close = async () => {
      await r.stop();
      far.disconnect();
      await proxy.close();
    };
    return { proxy, reader: r, seen, close };
  }

  function gate() {
    let open: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      open = resolve;
    });
    return { closed, open };
  }

  const numbers = (entries: StreamEntry[]) => entries.map(([, fields]) => Number(fields?.[1]));

  type Xack = (...args: [string, string, ...string[]]) => Promise<unknown>;
  /** The client with its XACK replaced (fault injection); its duplicates, used for reads, are untouched. */
  function withXack(client: Redis, replace: (xack: Xack) => Xack): Redis {
    const original = client.xack.bind(client) as unknown as Xack;
    client.xack = replace(original) as unknown as Redis['xack'];
    return client;
  }

  /** A started reader whose handler holds on to the first batch until `first.open()`; `seen` in order. */
  function holdingFirstBatch(key: string) {
    const first = gate();
    const seen: number[] = [];
    const { reader: r } = reader(key, async (entries) => {
      seen.push(...numbers(entries));
      if (seen.length === 10) await first.closed;
    });
    r.start();
    return { r, first, seen };
  }

  it('reads the next batch while the current one is being handled', async () => {
    const key = await stream(30);
    const { first, seen } = holdingFirstBatch(key);
    await eventually(() => seen.length === 10);
    // The second batch was delivered to this consumer while the first handler is still running.
    await eventually(async () => (await pending(key)) === 20);
    expect(seen).toHaveLength(10);
    first.open();
    await eventually(() => seen.length === 30);
    await eventually(async () => (await pending(key)) === 0);
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('stop handles the batch it read ahead, so nothing is left pending for a later consumer', async () => {
    const key = await stream(30);
    const { r, first, seen } = holdingFirstBatch(key);
    await eventually(async () => (await pending(key)) === 20);
    const stopping = r.stop();
    first.open();
    await stopping;
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await pending(key)).toBe(0);
    // The rest was never handed to this consumer: the next one gets it.
    const rest: number[] = [];
    const { reader: next } = reader(key, async (entries) => {
      rest.push(...numbers(entries));
    });
    next.start();
    await eventually(() => rest.length === 10);
    expect(rest).toEqual(Array.from({ length: 10 }, (_, i) => 20 + i));
  });

  it('a batch that fails while the next one was read ahead: both are handled later, each once', async () => {
    const key = await stream(40);
    const ids = (await client.xrange(key, '-', '+')).map(([id]) => id);
    const delivered = async () => {
      const groups = (await client.xinfo('GROUPS', key)) as unknown[][];
      const row = groups[0] ?? [];
      return String(row[row.indexOf('last-delivered-id') + 1]);
    };
    // Acknowledgements are slow to land, so a retry that did not wait for them would see their entries.
    const slow = withXack(
      sharedRedis(),
      (xack) =>
        (...args) =>
          new Promise((resolve) => setTimeout(resolve, 300)).then(() => xack(...args)),
    );
    const seen = new Map<number, number>();
    let calls = 0;
    const { reader: r, errors } = reader(
      key,
      async (entries) => {
        calls++;
        if (calls === 2) {
          // The second batch fails once the third one was read ahead, while the first one's
          // acknowledgement is still on its way.
          await eventually(async () => (await delivered()) === ids[29]);
          throw new Error('apply failed on purpose');
        }
        for (const i of numbers(entries)) seen.set(i, (seen.get(i) ?? 0) + 1);
      },
      slow,
    );
    r.start();
    await eventually(() => seen.size === 40);
    await eventually(async () => (await pending(key)) === 0);
    expect(errors.map(String)).toContain('Error: apply failed on purpose');
    expect([...seen.entries()].filter(([, count]) => count !== 1)).toEqual([]);
    await r.stop();
    slow.disconnect();
  });

  it('an acknowledgement that fails leaves its batch pending, and it is handled again', async () => {
    const key = await stream(20);
    let failed = false;
    const flaky = withXack(sharedRedis(), (xack) => (...args) => {
      if (failed) return xack(...args);
      failed = true;
      return Promise.reject(new Error('XACK lost on purpose'));
    });
    const seen = new Map<number, number>();
    const { reader: r, errors } = reader(
      key,
      async (entries) => {
        for (const i of numbers(entries)) seen.set(i, (seen.get(i) ?? 0) + 1);
      },
      flaky,
    );
    r.start();
    await eventually(async () => seen.size === 20 && (await pending(key)) === 0);
    expect(errors.map(String)).toContain('Error: XACK lost on purpose');
    expect([...seen.values()].some((count) => count === 2)).toBe(true);
    await r.stop();
    flaky.disconnect();
  });
  it('acknowledgements that keep failing are retried with a pause, not in a tight loop', async () => {
    const key = await stream(5);
    const broken = withXack(sharedRedis(), () => () => Promise.reject(new Error('XACK refused on purpose')));
    let handled = 0;
    const { reader: r, errors } = reader(
      key,
      async () => {
        handled++;
      },
      broken,
    );
    r.start();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await r.stop();
    broken.disconnect();
    // Backing off from 50 ms, a second holds a handful of attempts; a tight loop holds thousands.
    expect(handled).toBeGreaterThan(1);
    expect(handled).toBeLessThan(30);
    expect(errors.length).toBeLessThan(60);
  });

  it('stop returns even when the link to the stream went silent without closing', async () => {
    const key = await stream(10);
    const { proxy, reader: r, seen, close } = await farReader(key);
    r.start();
    await eventually(() => seen.length === 10);
    proxy.freeze();
    // The reader's own connection is closed by stop; the client it acknowledges and drains through is
    // frozen, so anything sent on it is never answered.
    const outcome = await Promise.race([
      r.stop().then(() => 'stopped'),
      new Promise((resolve) => setTimeout(resolve, 5000, 'still waiting')),
    ]);
    expect(outcome).toBe('stopped');
    proxy.thaw();
    await close();
  });

  it('entries handed to a read whose reply was lost are handled at once, not after claimIdleMs', async () => {
    const key = await stream(0);
    const { proxy, reader: r, seen, close } = await farReader(key);
    r.start();
    await eventually(async () => ((await client.xinfo('CONSUMERS', key, 'kr')) as unknown[]).length === 1);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the read is blocked on the stream
    // The reply to the blocked read is held in the frozen link; Redis hands the entry to it anyway.
    proxy.freeze();
    await client.xadd(key, '*', 'n', '7');
    await eventually(async () => (await pending(key)) === 1);
    proxy.cut();
    proxy.heal();
    // claimIdleMs is a minute: only reading its own pending list after the failed read finds it.
    await eventually(() => seen.includes(7), 5000);
    await eventually(async () => (await pending(key)) === 0);
    await close();
  });

  it('a link that keeps dropping never wedges the reader: every entry is handled once it holds', async () => {
    const key = await stream(0);
    // Claims every 150 ms, so some drops catch an XAUTOCLAIM in flight.
    const { proxy, reader: r, seen, close } = await farReader(key, { claimIdleMs: 300, retryMs: 20 });
    r.start();
    for (let i = 0; i < 40; i++) {
      await client.xadd(key, '*', 'n', String(i));
      await new Promise((resolve) => setTimeout(resolve, 10 + (i % 7) * 13));
      if (i % 3 === 0) {
        proxy.cut();
        proxy.heal();
      }
    }
    await eventually(() => new Set(seen).size === 40, 10_000);
    await eventually(async () => (await pending(key)) === 0, 10_000);
    await close();
  });

  it('stop while batches keep failing leaves them pending, and the next consumer handles them', async () => {
    const key = await stream(10);
    let attempts = 0;
    const { reader: failing } = reader(key, async () => {
      attempts++;
      throw new Error('destination down on purpose');
    });
    failing.start();
    await eventually(() => attempts >= 2);
    await failing.stop();
    expect(await pending(key)).toBe(10);
    const seen: number[] = [];
    // A short claim time stands in for the 30 s after which another process would claim them.
    const { reader: next } = reader(
      key,
      async (entries) => {
        seen.push(...numbers(entries));
      },
      client,
      { claimIdleMs: 1 },
    );
    next.start();
    // At least once: with so short a claim time the same entries can be claimed twice.
    await eventually(() => new Set(seen).size === 10);
    await eventually(async () => (await pending(key)) === 0);
    expect([...new Set(seen)].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });
});
