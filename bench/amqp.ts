/**
 * AMQP suite: the floor of raw amqplib (confirm-channel publish to a durable topic exchange, persistent
 * messages, durable classic queue, manual acks) against the same traffic through `createAmqpTransport`
 * publish/subscribe, on the machine's RabbitMQ. Measures end-to-end throughput (publish until the last
 * delivery is handled, window of 1000 unconfirmed messages) and latency at a steady rate.
 *
 * Flags: `--messages=<n>` for throughput (20000), `--rate=<msg/s>` (2000), `--seconds=<n>` at that rate
 * (5), `--rounds=<n>` (3, best throughput round kept), `--amqp-url=<url>` (amqp://guest:guest@127.0.0.1:5672).
 */
import amqplib from 'amqplib';
import type { Envelope } from '../src/contracts/envelope.js';
import { encodeFrames } from '../src/wire/broker-frame.js';

/** One envelope as the transports frame it. */
const encodeFrame = (envelope: Envelope): string => (encodeFrames([envelope])[0] as { text: string }).text;

import { sessionEnvelope } from '../src/replication/session-codec.js';
import { amqpTopology, createAmqpTransport } from '../src/transports/amqp.js';
import { numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

const REGIONS = ['src', 'dst'];

let seq = 0;
/** A session change as the pipeline sends it: one envelope of kind `session`. */
function event(): Envelope {
  seq++;
  const now = Date.now();
  return sessionEnvelope({
    id: `src:${now}-${seq}`,
    origin: 'src',
    time: now,
    sid: `src.${seq.toString(36).padStart(24, 'x')}`,
    op: 'set',
    version: `${String(now).padStart(15, '0')}.${String(seq % 10000).padStart(4, '0')}.src`,
    expiresAt: now + 86_400_000,
    lifetimeMs: 86_400_000,
    fingerprint: 'f'.repeat(40),
    data: JSON.stringify({
      cookie: { originalMaxAge: 86_400_000, expires: new Date(now + 86_400_000), httpOnly: true, path: '/' },
      user: { id: seq, name: 'bench user', roles: ['reader', 'writer'] },
      views: seq,
    }),
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** A pipe under test: send events, get told when each arrives. */
interface Pipe {
  /** Sends a batch; resolves when the broker confirmed it. */
  send(events: Envelope[]): Promise<void>;
  /** Called with each delivered event id. */
  onDelivered: (id: string) => void;
  close(): Promise<void>;
}

async function rawPipe(url: string, namePrefix: string): Promise<Pipe> {
  const conn = await amqplib.connect(url, { noDelay: true });
  conn.on('error', () => {});
  const pub = await conn.createConfirmChannel();
  const sub = await conn.createChannel();
  const names = amqpTopology('raw', REGIONS, namePrefix);
  const queue = names.queues['dst'] as string;
  await pub.assertExchange(names.exchange, 'topic', { durable: true });
  await pub.assertQueue(queue, { durable: true });
  await pub.bindQueue(queue, names.exchange, 'src.#');
  await sub.prefetch(1000);
  const pipe: Pipe = {
    onDelivered: () => {},
    async send(events) {
      await Promise.all(
        events.map(
          (e) =>
            new Promise<void>((resolve, reject) => {
              pub.publish(
                names.exchange,
                'src.session',
                Buffer.from(encodeFrame(e)),
                { persistent: true, messageId: e.id },
                (err) => (err ? reject(err) : resolve()),
              );
            }),
        ),
      );
    },
    async close() {
      await pub.deleteQueue(queue);
      await pub.deleteExchange(names.exchange);
      await conn.close();
    },
  };
  // Ack every 100 deliveries (multiple), and whatever is left when the queue goes quiet.
  let unacked: amqplib.ConsumeMessage | undefined;
  let count = 0;
  let idle: NodeJS.Timeout | undefined;
  await sub.consume(queue, (m) => {
    if (!m) return;
    pipe.onDelivered(m.properties.messageId as string);
    unacked = m;
    if (++count % 100 === 0) {
      sub.ack(m, true);
      unacked = undefined;
    }
    clearTimeout(idle);
    idle = setTimeout(() => {
      if (unacked) sub.ack(unacked, true);
      unacked = undefined;
    }, 5);
  });
  return pipe;
}

async function transportPipe(url: string, namePrefix: string): Promise<Pipe> {
  const transport = createAmqpTransport({ url, regions: REGIONS, namePrefix });
  transport.on('error', (e) => console.error(e));
  const pipe: Pipe = {
    onDelivered: () => {},
    send: (events) => transport.publish('geo', events),
    async close() {
      await sub.close();
      await transport.close();
      const conn = await amqplib.connect(url);
      const ch = await conn.createChannel();
      const names = amqpTopology('geo', REGIONS, namePrefix);
      for (const q of Object.values(names.queues)) await ch.deleteQueue(q);
      await ch.deleteExchange(names.exchange);
      await conn.close();
    },
  };
  const sub = await transport.subscribe({
    channel: 'geo',
    region: 'dst',
    handler: async (events) => {
      for (const e of events) pipe.onDelivered(e.id);
    },
  });
  return pipe;
}

/** Sends `total` events in batches of 250 from 4 concurrent senders (1000 in flight); msg/s end to end. */
async function throughput(pipe: Pipe, total: number): Promise<number> {
  const events = Array.from({ length: total }, event);
  let received = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => {
    done = r;
  });
  pipe.onDelivered = () => {
    if (++received === total) done();
  };
  const start = performance.now();
  let next = 0;
  const sender = async () => {
    while (next < total) {
      const batch = events.slice(next, next + 250);
      next += batch.length;
      await pipe.send(batch);
    }
  };
  await Promise.all([sender(), sender(), sender(), sender()]);
  await all;
  return total / ((performance.now() - start) / 1000);
}

/** Sends at a steady rate, each event on its own (as a relay under light load); p50/p99 in ms. */
async function latency(pipe: Pipe, rate: number, seconds: number): Promise<{ p50: number; p99: number }> {
  const sentAt = new Map<string, number>();
  const samples: number[] = [];
  pipe.onDelivered = (id) => {
    const t0 = sentAt.get(id);
    if (t0 !== undefined) samples.push(performance.now() - t0);
  };
  const total = rate * seconds;
  const start = performance.now();
  let sent = 0;
  const pending: Promise<void>[] = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    if (due > sent) {
      const batch = Array.from({ length: due - sent }, event);
      for (const e of batch) sentAt.set(e.id, performance.now());
      pending.push(pipe.send(batch));
      sent = due;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  const deadline = performance.now() + 10_000;
  while (samples.length < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

export const amqpSuite: Suite = {
  name: 'amqp',
  description: 'AMQP transport vs raw amqplib on RabbitMQ: end-to-end msg/s and latency at 2k msg/s',
  async run(options: SuiteOptions): Promise<Report> {
    const url = options.flags['amqp-url'] ?? 'amqp://guest:guest@127.0.0.1:5672';
    const messages = numberFlag(options, 'messages', 20_000);
    const rate = numberFlag(options, 'rate', 2000);
    const seconds = numberFlag(options, 'seconds', 5);
    const rounds = numberFlag(options, 'rounds', 3);
    const namePrefix = `gsbench.${process.pid}`;
    const results = {
      raw: { tput: [] as number[], p50: 0, p99: 0 },
      transport: { tput: [] as number[], p50: 0, p99: 0 },
    };
    const pipes = { raw: await rawPipe(url, namePrefix), transport: await transportPipe(url, namePrefix) };
    try {
      // Warm both, then interleave rounds so drift on a shared machine hits both alike.
      await throughput(pipes.raw, 2000);
      await throughput(pipes.transport, 2000);
      for (let round = 1; round <= rounds; round++) {
        for (const kind of ['raw', 'transport'] as const) {
          const value = await throughput(pipes[kind], messages);
          results[kind].tput.push(value);
          options.log(`round ${round} ${kind}: ${Math.round(value)} msg/s`);
        }
      }
      for (const kind of ['raw', 'transport'] as const) {
        const { p50, p99 } = await latency(pipes[kind], rate, seconds);
        results[kind].p50 = p50;
        results[kind].p99 = p99;
        options.log(`${kind} at ${rate}/s: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
      }
    } finally {
      await pipes.raw.close();
      await pipes.transport.close();
    }
    const best = (xs: number[]) => Math.max(...xs);
    const ratio = best(results.transport.tput) / best(results.raw.tput);
    return {
      tables: [
        {
          title: `RabbitMQ end to end (${messages} events of ~${encodeFrame(event()).length} B; 1000 in flight)`,
          columns: ['pipe', 'msg/s (best)', 'msg/s (rounds)', `p50 ms @${rate}/s`, `p99 ms @${rate}/s`],
          rows: (['raw', 'transport'] as const).map((kind) => [
            kind === 'raw' ? 'raw amqplib' : 'createAmqpTransport',
            Math.round(best(results[kind].tput)),
            results[kind].tput.map((x) => Math.round(x)).join(' / '),
            Number(results[kind].p50.toFixed(2)),
            Number(results[kind].p99.toFixed(2)),
          ]),
        },
      ],
      checks: [
        {
          name: 'transport / raw throughput',
          actual: Number(ratio.toFixed(2)),
          target: 0.8,
          direction: '>=',
          unit: 'x',
        },
        {
          name: `transport p99 at ${rate} msg/s`,
          actual: Number(results.transport.p99.toFixed(2)),
          target: 10,
          direction: '<=',
          unit: ' ms',
        },
      ],
      notes: [
        'Both pipes: confirm channel, persistent messages, durable topic exchange and classic queue, noDelay, one process.',
        'Throughput: 4 concurrent senders of 250-event batches; the raw consumer acks every 100 (multiple).',
        'Latency: events sent at a steady rate, timed from send to the handler (transport) or delivery (raw).',
      ],
      data: results,
    };
  },
};
