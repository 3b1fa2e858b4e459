/**
 * The publishing side of "a big change never stalls the others" (issue 14 item 3), on a broker of the
 * test's own: a memory transport behind a message size limit, as NATS's max_payload or RabbitMQ's
 * max_message_size. A batch the broker refuses for its size is split until each change too large alone
 * is isolated and dead-lettered (`too-large`), and every other change is published, in order, sealed or
 * not. A transient failure still fails the publish (the relay retries it) and dead-letters nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { MessageTooLargeError, TransportError } from '../../src/errors.js';
import { DeadLetters } from '../../src/replication/dead-letters.js';
import { Pipeline, type RejectedEnvelope } from '../../src/replication/pipeline.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { encodeFrames } from '../../src/wire/broker-frame.js';
import { eventually } from '../helpers/eventually.js';
import { generatePasetoKey, localSealer } from '../helpers/forgery.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const LIMIT = 64 * 1024;

/** `inner`, refusing (as a broker does) any message over `LIMIT` UTF-8 bytes; or failing every publish. */
function limited(inner: ReplicationTransport, mode: { down: boolean }): ReplicationTransport {
  return Object.assign(Object.create(inner) as ReplicationTransport, {
    async publish(channel: string, envelopes: readonly Envelope[]) {
      if (mode.down) throw new TransportError('the broker is away');
      for (const frame of encodeFrames(envelopes)) {
        if (frame.bytes > LIMIT)
          throw new MessageTooLargeError(`a message of ${frame.bytes} bytes is too large`);
      }
      await inner.publish(channel, envelopes);
    },
  });
}

describe.skipIf(!hasRedis)('publishing a batch with changes too large for the broker', () => {
  const redis = sharedRedis();
  const prefix = uniquePrefix('split');
  afterAll(async () => {
    await dropKeys(redis, prefix);
    redis.disconnect();
  });

  describe.each([
    ['unsealed', false],
    ['sealed', true],
  ] as const)('%s', (name, sealed) => {
    it('isolates and dead-letters each one; the others arrive, in order', async () => {
      const memory = createMemoryTransport({ regions: ['kr'] });
      const mode = { down: false };
      const transport = limited(memory, mode);
      const sealer = sealed ? localSealer([generatePasetoKey().key]) : undefined;
      const channel = `${prefix}${name}:`;
      const rejected: RejectedEnvelope[] = [];
      const letters = new DeadLetters(redis, `${prefix}|dead:${name}`, 1000, () => {});
      const make = (region: string) =>
        new Pipeline({
          region,
          channel,
          transport,
          sealer,
          acceptUnsealed: false,
          deadLetters: region === 'hk' ? letters : undefined,
          now: Date.now,
          onError: () => {},
          onRejected: (r) => rejected.push(r),
        });
      const hk = make('hk');
      const kr = make('kr');
      const received: string[] = [];
      kr.register<string>('note', {
        decode: (envelope) => envelope.id,
        apply: async (ids) => {
          received.push(...ids);
        },
      });
      const sub = await kr.subscribe({ source: 'published', relayed: true });
      const big = new Set([5, 20, 49]);
      const batch: Envelope[] = Array.from({ length: 50 }, (_, i) => ({
        id: `hk:${i}-0`,
        origin: 'hk',
        kind: 'note',
        time: 1,
        // 30,000 syllables: 30,000 UTF-16 units but 90,000 bytes, over the limit alone.
        body: big.has(i) ? '가'.repeat(30_000) : `small ${i}`,
      }));

      mode.down = true;
      await expect(hk.publish(batch)).rejects.toBeInstanceOf(TransportError);
      expect(rejected).toEqual([]);
      mode.down = false;

      await hk.publish(batch);
      const expected = batch.filter((_, i) => !big.has(i)).map((e) => e.id);
      await eventually(() => received.length >= expected.length);
      await sub.close();
      await memory.close();
      // Duplicates are allowed (a split publishes again what went out before the refusal); order is kept.
      expect([...new Set(received)]).toEqual(expected);
      expect(rejected.map((r) => [r.reason, r.id])).toEqual([...big].map((i) => ['too-large', `hk:${i}-0`]));
      expect(hk.stats.rejected['too-large']).toBe(3);
      expect(hk.stats.published).toBe(47);
      await eventually(async () => (await letters.latest(10)).length === 3);
      expect((await letters.latest(10)).map((l) => [l.reason, l.id])).toEqual(
        [...big].reverse().map((i) => ['too-large', `hk:${i}-0`]),
      );
    });
  });
});
