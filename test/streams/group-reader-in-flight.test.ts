/**
 * StreamGroupReader with several batches in flight (`maxInFlight` > 1, as the outbox relay runs it while
 * it waits for broker confirms): a batch that fails is reported and handled again with backoff, as soon
 * as the reader notices, even when no new entries arrive and even when a later batch succeeded after it.
 * Before, both cases left the failed batch pending and unreported until XAUTOCLAIM took it back
 * (claimIdleMs, 30 s for the relay): a broker that went away while the outbox was idle went unreported.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StreamGroupReader } from '../../src/streams/group-reader.js';
import type { StreamEntry } from '../../src/wire/stream-entry.js';
import { eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('StreamGroupReader with several batches in flight', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('in-flight');
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

  async function stream(): Promise<string> {
    const key = `${prefix}s${n++}`;
    await client.xgroup('CREATE', key, 'relay', '0', 'MKSTREAM');
    return key;
  }

  /** Appends entries `from` … `from + count - 1` at once (MULTI), so one read returns them together. */
  async function add(key: string, from: number, count: number): Promise<void> {
    const multi = client.multi();
    for (let i = from; i < from + count; i++) multi.xadd(key, '*', 'n', String(i));
    await multi.exec();
  }

  const numbers = (entries: StreamEntry[]) => entries.map(([, fields]) => Number(fields?.[1]));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  function reader(key: string, onBatch: (entries: StreamEntry[]) => Promise<void>, blockMs = 200) {
    const errors: unknown[] = [];
    const r = new StreamGroupReader({
      client,
      key,
      group: 'relay',
      consumerPrefix: 'test',
      batchSize: 100,
      blockMs,
      // Far beyond the test: a batch handled again here was retried, not claimed back.
      claimIdleMs: 120_000,
      watchdogMs: 2000,
      maxInFlight: 4,
      onBatch,
      onError: (error) => errors.push(error),
    });
    readers.push(r);
    r.start();
    return errors;
  }

  it('a batch that fails while nothing new arrives is reported and handled again', async () => {
    const key = await stream();
    await add(key, 0, 5);
    const handled: number[][] = [];
    const failure = new Error('not confirmed');
    let calls = 0;
    const errors = reader(key, async (entries) => {
      calls++;
      if (calls === 1) {
        await sleep(100);
        throw failure;
      }
      handled.push(numbers(entries));
    });
    await eventually(() => handled.length > 0);
    expect(handled[0]).toEqual([0, 1, 2, 3, 4]);
    expect(errors).toContain(failure);
    await eventually(async () => ((await client.xpending(key, 'relay')) as [number])[0] === 0);
  });

  it('a later batch that succeeds does not hide an earlier one that failed', async () => {
    const key = await stream();
    await add(key, 0, 3);
    const handled: number[] = [];
    const failure = new Error('not confirmed');
    const gate = () => {
      let open: () => void = () => {};
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      return { opened, open };
    };
    const [failFirst, passSecond] = [gate(), gate()];
    const started: number[][] = [];
    let first = true;
    const errors = reader(
      key,
      async (entries) => {
        started.push(numbers(entries));
        if (first) {
          first = false;
          await failFirst.opened;
          throw failure;
        }
        if (numbers(entries).includes(3)) await passSecond.opened;
        handled.push(...numbers(entries));
      },
      1000,
    );
    await eventually(() => started.length === 1);
    await add(key, 3, 3);
    await eventually(() => started.length === 2);
    // Both settle while the reader waits on its next read: the first fails, then the second succeeds.
    failFirst.open();
    await sleep(20);
    passSecond.open();
    await eventually(() => [0, 1, 2, 3, 4, 5].every((x) => handled.includes(x)));
    expect(errors).toContain(failure);
  });
});
