/**
 * The relay keeps several batches in flight while the broker confirms earlier ones, acknowledges outbox
 * entries only after their confirm and in read order, and after a failed publish publishes again, in
 * their order, every batch from the failed one on: a session's changes never overtake each other.
 * The outbox is real (the machine's Redis); `publish` is controlled by the test. Run on a plain client
 * and on one made with `enableAutoPipelining`.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import { OutboxRelay, RELAY_GROUP } from '../../src/replication/relay.js';
import { dropKeys, eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

interface Call {
  envelopes: Envelope[];
  confirm(): void;
  fail(): void;
}

// Also on a client made with enableAutoPipelining (issue 18): its acknowledgements are auto-pipelined,
// its blocking reads run on a duplicate that is not.
describe.skipIf(!hasRedis).each([
  ['a plain client', false],
  ['an auto-pipelining client', true],
])('OutboxRelay on %s', (_name, enableAutoPipelining) => {
  const client = sharedRedis({ enableAutoPipelining });
  const prefix = uniquePrefix('relay');
  const relays: OutboxRelay[] = [];
  let n = 0;

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop(2000)));
  });
  afterAll(async () => {
    await dropKeys(client, prefix);
    client.disconnect();
  });

  /**
   * A relay over a fresh outbox (or `key`'s) whose every publish waits for the test to confirm or fail
   * it.
   */
  function relayOf(maxInFlight: number, batchSize: number, key = `{${prefix}${++n}|outbox}:hk`) {
    const calls: Call[] = [];
    const relay = new OutboxRelay({
      client,
      region: 'hk',
      outboxKey: key,
      publish: (envelopes) =>
        new Promise<void>((resolve, reject) => {
          calls.push({ envelopes, confirm: resolve, fail: () => reject(new Error('not confirmed')) });
        }),
      onPoison: () => {},
      onError: () => {},
      onBacklog: () => {},
      batchSize,
      maxInFlight,
      bound: { maxEntries: 1_000_000, maxAgeMs: 86_400_000, warnAt: 0.5 },
      trimIntervalMs: 60_000,
      consumerIdleMs: 3_600_000,
    });
    relays.push(relay);
    const append = async (count: number, sid = 's') => {
      for (let i = 0; i < count; i++) await client.xadd(key, '*', 'b', `${sid}:${i}`);
    };
    const pending = async () => Number(((await client.xpending(key, RELAY_GROUP)) as [number])[0]);
    return { key, calls, relay, append, pending };
  }

  it('keeps several batches in flight and acknowledges nothing before its confirm', async () => {
    const r = relayOf(4, 5);
    await r.append(20);
    r.relay.start();
    // Four batches of five go out without waiting for any confirm.
    await eventually(() => r.calls.length === 4);
    expect(r.calls.map((c) => c.envelopes.length)).toEqual([5, 5, 5, 5]);
    expect(await r.pending()).toBe(20);
    r.calls[0]?.confirm();
    await eventually(async () => (await r.pending()) === 15);
    for (const call of r.calls.slice(1)) call.confirm();
    await eventually(async () => (await r.pending()) === 0);
  });

  it('acknowledges in read order: a later confirm waits for the earlier one', async () => {
    const r = relayOf(3, 2);
    await r.append(6);
    r.relay.start();
    await eventually(() => r.calls.length === 3);
    r.calls[2]?.confirm();
    r.calls[1]?.confirm();
    await new Promise((res) => setTimeout(res, 200));
    expect(await r.pending()).toBe(6);
    r.calls[0]?.confirm();
    await eventually(async () => (await r.pending()) === 0);
  });

  it('after a failed publish, publishes again from the failed batch on, in order, then acknowledges', async () => {
    const r = relayOf(3, 2);
    await r.append(6);
    r.relay.start();
    await eventually(() => r.calls.length === 3);
    const first = r.calls.slice(0, 3);
    first[1]?.confirm();
    first[2]?.confirm();
    first[0]?.fail();
    // Batches 2 and 3 were confirmed but come after the failed one: they go out again after it.
    await eventually(() => r.calls.length >= 4, 10_000);
    expect((r.calls[3] as Call).envelopes.map((e) => e.body)).toEqual(first[0]?.envelopes.map((e) => e.body));
    // From now on the broker confirms everything.
    const confirming = setInterval(() => {
      for (const call of r.calls.slice(3)) call.confirm();
    }, 10);
    try {
      await eventually(async () => (await r.pending()) === 0, 10_000);
    } finally {
      clearInterval(confirming);
    }
    // What the broker ended up confirming last for each change is in outbox order.
    const retried = r.calls.slice(3).flatMap((c) => c.envelopes.map((e) => e.body));
    expect(retried).toEqual(['s:0', 's:1', 's:2', 's:3', 's:4', 's:5']);
  });

  it('an orderly stop hands unconfirmed batches over: the next relay publishes them at once, not after claimIdleMs', async () => {
    const r = relayOf(2, 5);
    await r.append(10);
    r.relay.start();
    // The broker never confirms: both batches stay pending under this relay's consumer.
    await eventually(() => r.calls.length === 2);
    await r.relay.stop(200);
    expect(await r.pending()).toBe(10);
    // The next process's relay (the relay claims after 30 s, past this wait) publishes them.
    const next = relayOf(2, 5, r.key);
    next.relay.start();
    const confirming = setInterval(() => {
      for (const call of next.calls) call.confirm();
    }, 10);
    try {
      await eventually(async () => (await next.pending()) === 0, 10_000);
    } finally {
      clearInterval(confirming);
    }
    expect(next.calls.flatMap((c) => c.envelopes.map((e) => e.body)).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `s:${i}`).sort(),
    );
  });
});
