/**
 * The raw clients' publish-to-consume floors of the e2e suite, with no library in between: ioredis XADD →
 * XREADGROUP, amqplib confirm publish → consume, JetStream publish with msgID → pull consume. The
 * publisher runs in hk's process (over hk's link to the broker), the consumer in kr's (over kr's link to
 * hk's Redis), as the transports do. Each message carries its phase and send time.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import amqplib from 'amqplib';
import { Redis } from 'ioredis';
import { wallNow } from '../lib/lag.js';
import { makeSession } from '../lib/session.js';

/** The transports the suite compares. */
export type TransportKind = 'redis-streams' | 'amqp' | 'nats';

/** Where a raw pipe's endpoints are, as seen from the process that opens it. */
export interface RawAddress {
  kind: TransportKind;
  /** Port of hk's Redis (Redis Streams). */
  redisPort: number;
  /** Broker URL (AMQP). */
  amqpUrl: string;
  /** Server URL (NATS). */
  natsUrl: string;
  /** Unique name of this run's stream, exchange and queue. */
  name: string;
}

/** Sends messages from hk. */
export interface RawPublisher {
  /** Sends one message of `phase`, stamped with the time of the call. */
  publish(phase: number): void;
  /** Waits for every confirm so far; resolves with how many failed. */
  settle(): Promise<number>;
  close(): Promise<void>;
}

/** Receives in kr; `onArrival` is called on receipt with the message's phase and send time. */
export interface RawConsumer {
  close(): Promise<void>;
}

export type OnArrival = (phase: number, sentAt: number, now: number) => void;

const PAYLOAD = JSON.stringify(makeSession(1));

/** `phase|sentAt|payload`: the session's size, the phase and send time up front. */
function body(phase: number): string {
  return `${phase}|${wallNow().toFixed(3)}|${PAYLOAD}`;
}

function parse(text: string, now: number, onArrival: OnArrival): void {
  const a = text.indexOf('|');
  const b = text.indexOf('|', a + 1);
  onArrival(Number(text.slice(0, a)), Number(text.slice(a + 1, b)), now);
}

/** Tracks promises of confirms without keeping settled ones. */
function confirms() {
  let inFlight = 0;
  let failed = 0;
  let idle: (() => void) | undefined;
  return {
    track(promise: Promise<unknown>) {
      inFlight++;
      promise
        .then(
          () => undefined,
          () => {
            failed++;
          },
        )
        .finally(() => {
          if (--inFlight === 0) idle?.();
        });
    },
    async settle(): Promise<number> {
      if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
      idle = undefined;
      const count = failed;
      failed = 0;
      return count;
    },
  };
}

export async function openRawPublisher(at: RawAddress): Promise<RawPublisher> {
  const tracker = confirms();
  if (at.kind === 'redis-streams') {
    const client = new Redis({ port: at.redisPort, host: '127.0.0.1' });
    return {
      publish: (phase) => tracker.track(client.xadd(at.name, '*', 'd', body(phase))),
      settle: tracker.settle,
      async close() {
        await client.del(at.name);
        client.disconnect();
      },
    };
  }
  if (at.kind === 'amqp') {
    const conn = await amqplib.connect(at.amqpUrl, { noDelay: true });
    conn.on('error', () => {});
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange(at.name, 'topic', { durable: true });
    await ch.assertQueue(`${at.name}.kr`, { durable: true });
    await ch.bindQueue(`${at.name}.kr`, at.name, '#');
    return {
      publish(phase) {
        tracker.track(
          new Promise<void>((resolve, reject) => {
            ch.publish(at.name, 'hk', Buffer.from(body(phase)), { persistent: true }, (error) =>
              error ? reject(error) : resolve(),
            );
          }),
        );
      },
      settle: tracker.settle,
      async close() {
        await ch.deleteQueue(`${at.name}.kr`);
        await ch.deleteExchange(at.name);
        await conn.close();
      },
    };
  }
  const nc = await natsConnect({ servers: at.natsUrl });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: at.name, subjects: [`${at.name}.>`], storage: StorageType.File });
  const js = jetstream(nc);
  let seq = 0;
  return {
    publish(phase) {
      tracker.track(js.publish(`${at.name}.hk`, body(phase), { msgID: `hk-${++seq}` }));
    },
    settle: tracker.settle,
    async close() {
      await jsm.streams.delete(at.name);
      await nc.drain();
    },
  };
}

export async function openRawConsumer(at: RawAddress, onArrival: OnArrival): Promise<RawConsumer> {
  if (at.kind === 'redis-streams') {
    const client = new Redis({ port: at.redisPort, host: '127.0.0.1' });
    await client.xgroup('CREATE', at.name, 'kr', '$', 'MKSTREAM');
    let stopped = false;
    // One read outstanding, the next sent as soon as a reply arrives; acks go without waiting.
    const loop = (async () => {
      while (!stopped) {
        const reply = (await client.xreadgroup(
          'GROUP',
          'kr',
          'c1',
          'COUNT',
          2000,
          'BLOCK',
          500,
          'STREAMS',
          at.name,
          '>',
        )) as [string, [string, string[]][]][] | null;
        const now = wallNow();
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) continue;
        for (const [, fields] of entries) parse(fields[1] as string, now, onArrival);
        client.xack(at.name, 'kr', ...entries.map((e) => e[0])).catch(() => {});
      }
    })();
    return {
      async close() {
        stopped = true;
        await loop;
        client.disconnect();
      },
    };
  }
  if (at.kind === 'amqp') {
    const conn = await amqplib.connect(at.amqpUrl, { noDelay: true });
    conn.on('error', () => {});
    const ch = await conn.createChannel();
    await ch.prefetch(1000);
    await ch.assertQueue(`${at.name}.kr`, { durable: true });
    let last: amqplib.ConsumeMessage | undefined;
    // What arrived together is acknowledged together (multiple), right after it was handled.
    const flush = () => {
      if (last) ch.ack(last, true);
      last = undefined;
    };
    await ch.consume(`${at.name}.kr`, (m) => {
      if (!m) return;
      parse(m.content.toString(), wallNow(), onArrival);
      if (!last) setImmediate(flush);
      last = m;
    });
    return {
      async close() {
        await conn.close();
      },
    };
  }
  const nc = await natsConnect({ servers: at.natsUrl });
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(at.name, {
    durable_name: 'kr',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  });
  const messages = await (await jetstream(nc).consumers.get(at.name, 'kr')).consume({ max_messages: 1000 });
  const reading = (async () => {
    for await (const m of messages) {
      parse(m.string(), wallNow(), onArrival);
      m.ack();
    }
  })();
  return {
    async close() {
      messages.stop();
      await reading;
      await nc.drain();
    },
  };
}
