/**
 * AMQP and a region that never comes back (issue 11): every region's queue is declared bounded
 * (`x-max-length` with `x-overflow: drop-head`, and `x-message-ttl`), checked here against the broker
 * itself, and the one removal procedure of docs/replication.md ("Removing a region") is run as written.
 * Before, the queue of a region that was gone grew without limit.
 */
import amqplib from 'amqplib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { amqpTopology, createAmqpTransport } from '../../src/transports/amqp.js';
import { eventually, serviceAvailable } from '../helpers/servers.js';
import { AMQP_URL, deleteTopology, recordChannels } from './amqp-fixtures.js';
import { sampleEvent } from './conformance.js';

const hasRabbit = await serviceAvailable('rabbitmq', 5672);
const THREE = ['hk', 'kr', 'us'];

describe.skipIf(!hasRabbit)('amqp: bounded queues and removing a region', () => {
  const namePrefix = `gsregions.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  const seen = new Set<string>();
  const opened: ReplicationTransport[] = [];
  const channel = () => `regions${Math.random().toString(36).slice(2, 8)}:`;

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((t) => t.close()));
  });
  afterAll(async () => {
    await deleteTopology(seen, THREE, namePrefix);
  });

  function transport(regions: string[], extra: Partial<Parameters<typeof createAmqpTransport>[0]> = {}) {
    const t = recordChannels(
      createAmqpTransport({ url: AMQP_URL, regions, namePrefix, publishTimeoutMs: 5000, ...extra }),
      seen,
    );
    t.on('error', () => {});
    opened.push(t);
    return t;
  }

  /** Runs `work` on a channel of its own connection (a failed declare closes the channel). */
  async function withBroker<T>(work: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
    const conn = await amqplib.connect(AMQP_URL);
    conn.on('error', () => {});
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      return await work(ch);
    } finally {
      await conn.close().catch(() => {});
    }
  }

  const messagesIn = (queue: string) => withBroker(async (ch) => (await ch.checkQueue(queue)).messageCount);
  const queueExists = (queue: string) =>
    withBroker((ch) =>
      ch.checkQueue(queue).then(
        () => true,
        () => false,
      ),
    );

  it('declares every region’s queue with x-max-length (drop-head) and x-message-ttl', async () => {
    const ch = channel();
    const t = transport(THREE, { maxQueueLength: 5, messageTtlMs: 600_000 });
    await t.publish(ch, [sampleEvent('hk')]);
    const queue = amqpTopology(ch, THREE, namePrefix).queues.us as string;
    const bounded = { 'x-max-length': 5, 'x-overflow': 'drop-head', 'x-message-ttl': 600_000 };
    // The broker accepts the same arguments and refuses a declaration that differs (406 PRECONDITION_FAILED
    // "inequivalent arg"): so these are the queue's arguments.
    await withBroker((c) => c.assertQueue(queue, { durable: true, arguments: bounded }));
    await expect(
      withBroker((c) =>
        c.assertQueue(queue, { durable: true, arguments: { ...bounded, 'x-max-length': 6 } }),
      ),
    ).rejects.toThrow(/PRECONDITION_FAILED|inequivalent/);
    await expect(withBroker((c) => c.assertQueue(queue, { durable: true }))).rejects.toThrow(
      /PRECONDITION_FAILED|inequivalent/,
    );

    // us never consumes: its queue keeps the newest maxQueueLength envelopes, never more.
    // One publish per envelope: x-max-length counts messages, and one publish is one message.
    const sent: Envelope[] = Array.from({ length: 12 }, () => sampleEvent('hk'));
    for (const envelope of sent) await t.publish(ch, [envelope]);
    await eventually(async () => (await messagesIn(queue)) === 5);
    const head = await withBroker(async (c) => {
      const message = await c.get(queue, { noAck: true });
      return message === false ? undefined : String(message.properties.messageId);
    });
    expect(sent.slice(-5).map((e) => `${e.id}+1`)).toContain(head);
  });

  it('drops what a region has not consumed within messageTtlMs', async () => {
    const ch = channel();
    const t = transport(THREE, { messageTtlMs: 300 });
    await t.publish(ch, [sampleEvent('hk'), sampleEvent('kr'), sampleEvent('hk')]);
    const queue = amqpTopology(ch, THREE, namePrefix).queues.us as string;
    await eventually(async () => (await messagesIn(queue)) === 0);
  });

  it('removing a region: out of `regions` everywhere, then its queue deleted; the others go on', async () => {
    const ch = channel();
    const topology = amqpTopology(ch, THREE, namePrefix);
    const usQueue = topology.queues.us as string;
    let hk = transport(THREE);
    let kr = transport(THREE);
    const krInbox = new Set<string>();
    const handler = async (events: Envelope[]) => {
      for (const e of events) krInbox.add(e.id);
    };
    await kr.subscribe({ channel: ch, region: 'kr', handler });
    const before = Array.from({ length: 20 }, () => sampleEvent('hk'));
    for (const envelope of before) await hk.publish(ch, [envelope]);
    await eventually(() => before.every((e) => krInbox.has(e.id)));
    // us is gone for good: what it never consumed waits in its queue.
    await eventually(async () => (await messagesIn(usQueue)) === before.length);

    // 1. Every remaining region drops us from `regions` (a redeploy with the new configuration).
    for (const t of opened.splice(0)) await t.close();
    hk = transport(['hk', 'kr']);
    kr = transport(['hk', 'kr']);
    await kr.subscribe({ channel: ch, region: 'kr', handler });
    // 2. Its queue is deleted (no transport declares it any more).
    await withBroker((c) => c.deleteQueue(usQueue));

    const after = Array.from({ length: 20 }, () => sampleEvent('hk'));
    await hk.publish(ch, after);
    await eventually(() => after.every((e) => krInbox.has(e.id)));
    expect(await queueExists(usQueue)).toBe(false);
  });
});
