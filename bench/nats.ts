/**
 * NATS suite: the JetStream floor (raw `js.publish({msgID})` + pull `consume()` with an ack per message,
 * no library) against the same traffic through `createNatsTransport`, in the same run, interleaved.
 * Measures end-to-end throughput (N messages published with a bounded window, until the last one is
 * received) and latency at a steady rate (publish time to handler time, p50/p99).
 *
 * Flags: `--nats=<url>` (nats://127.0.0.1:4222), `--messages=<n>` per throughput run (20000),
 * `--rate=<msg/s>` for the latency runs (2000), `--seconds=<s>` per latency run (5), `--rounds=<n>` (3).
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Envelope } from '../src/contracts/envelope.js';
import { encodeFrames } from '../src/wire/broker-frame.js';

/** One envelope as the transports frame it. */
const encodeFrame = (envelope: Envelope): string => (encodeFrames([envelope])[0] as { text: string }).text;

import { sessionEnvelope } from '../src/replication/session-codec.js';
import { createNatsTransport } from '../src/transports/nats.js';
import { median } from './lib/load.js';
import { type Check, numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

const WINDOW = 1000;
const BATCH = 500;

/** One side of the comparison: publish a batch, and get told of each received message's send time. */
interface Pipe {
  /** Publishes `events` (each carrying its send time in `sentAt`) and resolves when all are confirmed. */
  publish(events: Envelope[]): Promise<void>;
  close(): Promise<void>;
}

type OnReceive = (sentAt: number) => void;

let seq = 0;
function makeEvent(now: number): Envelope {
  seq++;
  const payload = JSON.stringify({
    cookie: { originalMaxAge: 86_400_000, expires: new Date(now + 86_400_000).toISOString(), httpOnly: true },
    user: { id: seq, name: 'bench user', roles: ['reader', 'writer'] },
    cart: ['tea', 'dumplings', 'kimchi'],
    sentAt: now,
  });
  return sessionEnvelope({
    id: `a:${now}-${seq}`,
    origin: 'a',
    time: now,
    sid: `a.${String(seq).padStart(24, '0')}`,
    op: 'set',
    version: `${String(now).padStart(15, '0')}.${String(seq % 10000).padStart(4, '0')}.a`,
    expiresAt: now + 86_400_000,
    lifetimeMs: 86_400_000,
    fingerprint: 'f'.repeat(40),
    data: payload,
  });
}

const sentAtOf = (envelope: Envelope): number => envelope.time;

/** Raw JetStream, as an application would write it without this library. */
async function rawPipe(url: string, id: string, onReceive: OnReceive): Promise<Pipe> {
  const pub: NatsConnection = await connect({ servers: url });
  const sub: NatsConnection = await connect({ servers: url });
  const jsm = await jetstreamManager(pub);
  const stream = `GSBENCH_RAW_${id}`;
  const subject = `gsbench.raw.${id}`;
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`], storage: StorageType.File });
  await jsm.consumers.add(stream, {
    durable_name: 'b',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: `${subject}.>`,
  });
  const js = jetstream(pub);
  const messages = await (await jetstream(sub).consumers.get(stream, 'b')).consume({ max_messages: BATCH });
  const reading = (async () => {
    for await (const m of messages) {
      const text = m.string();
      m.ack();
      // gsb1 1, then `<id> <origin> <kind> <time> <length>`: the time is the envelope's.
      onReceive(Number(text.split('\n')[1]?.split(' ')[3]));
    }
  })();
  return {
    async publish(events) {
      let next = 0;
      const worker = async () => {
        while (next < events.length) {
          const event = events[next++] as Envelope;
          await js.publish(`${subject}.${event.origin}`, encodeFrame(event), { msgID: event.id });
        }
      };
      await Promise.all(Array.from({ length: Math.min(WINDOW, events.length) }, worker));
    },
    async close() {
      messages.stop();
      await reading;
      await jsm.streams.delete(stream);
      await Promise.all([pub.drain(), sub.drain()]);
    },
  };
}

/** The same through the library's transport: one transport per region, as two processes would. */
async function transportPipe(url: string, id: string, onReceive: OnReceive): Promise<Pipe> {
  const options = {
    servers: url,
    regions: ['a', 'b'],
    streamPrefix: `GSBENCH_${id}`,
    subjectPrefix: `gsbench.t.${id}`,
  };
  const a = createNatsTransport(options);
  const b = createNatsTransport(options);
  const sub = await b.subscribe({
    channel: 'bench:',
    region: 'b',
    handler: async (events) => {
      for (const event of events) onReceive(sentAtOf(event));
    },
  });
  return {
    async publish(events) {
      // Like the relay: batches of up to 500, each confirmed before the next, two relays in parallel.
      const batches: Envelope[][] = [];
      for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH));
      let next = 0;
      const relay = async () => {
        while (next < batches.length) await a.publish('bench:', batches[next++] as Envelope[]);
      };
      await Promise.all([relay(), relay()]);
    },
    async close() {
      await sub.close();
      const nc = await connect({ servers: url });
      const jsm = await jetstreamManager(nc);
      for await (const name of jsm.streams.names())
        if (name.startsWith(`GSBENCH_${id}`)) await jsm.streams.delete(name);
      await nc.close();
      await Promise.all([a.close(), b.close()]);
    },
  };
}

interface Figures {
  throughput: number;
  p50: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function measure(
  kind: 'raw' | 'transport',
  url: string,
  messages: number,
  rate: number,
  seconds: number,
): Promise<Figures> {
  const id = `${process.pid}${Date.now().toString(36)}`;
  let received = 0;
  let latencies: number[] = [];
  let wake: (() => void) | undefined;
  let want = 0;
  const onReceive: OnReceive = (sentAt) => {
    received++;
    latencies.push(performance.timeOrigin + performance.now() - sentAt);
    if (received >= want) wake?.();
  };
  const pipe = await (kind === 'raw' ? rawPipe : transportPipe)(url, id, onReceive);
  const waitFor = (count: number) =>
    new Promise<void>((resolve) => {
      want = count;
      wake = resolve;
      if (received >= count) resolve();
    });
  try {
    // Warm-up.
    await pipe.publish(Array.from({ length: 2000 }, () => makeEvent(Date.now())));
    await waitFor(2000);
    // Throughput: everything at once, bounded windows, until the last one arrives.
    received = 0;
    const start = performance.now();
    const now = Date.now();
    await pipe.publish(Array.from({ length: messages }, () => makeEvent(now)));
    await waitFor(messages);
    const throughput = messages / ((performance.now() - start) / 1000);
    // Latency at a steady rate: every 5 ms, rate/200 messages.
    received = 0;
    latencies = [];
    const perTick = Math.max(1, Math.round(rate / 200));
    const ticks = Math.round((seconds * 1000) / 5);
    const began = performance.now();
    const pending: Promise<void>[] = [];
    for (let t = 0; t < ticks; t++) {
      const due = began + t * 5;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const at = Date.now();
      pending.push(pipe.publish(Array.from({ length: perTick }, () => makeEvent(at))));
    }
    await Promise.all(pending);
    await waitFor(ticks * perTick);
    const sorted = latencies.sort((x, y) => x - y);
    return { throughput, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  } finally {
    await pipe.close();
  }
}

/** The NATS suite. */
export const natsSuite: Suite = {
  name: 'nats',
  description: 'NATS JetStream transport vs raw JetStream publish(msgID) + pull consume (same run)',
  async run(options: SuiteOptions): Promise<Report> {
    const url = options.flags['nats'] ?? 'nats://127.0.0.1:4222';
    const messages = Math.floor(numberFlag(options, 'messages', 20_000));
    const rate = numberFlag(options, 'rate', 2000);
    const seconds = numberFlag(options, 'seconds', 5);
    const rounds = Math.floor(numberFlag(options, 'rounds', 3));
    const runs: Record<'raw' | 'transport', Figures[]> = { raw: [], transport: [] };
    for (let round = 0; round < rounds; round++) {
      for (const kind of ['raw', 'transport'] as const) {
        options.log(`nats: ${kind}, round ${round + 1}/${rounds}`);
        runs[kind].push(await measure(kind, url, messages, rate, seconds));
      }
    }
    const pick = (kind: 'raw' | 'transport') => ({
      throughput: median(runs[kind].map((f) => f.throughput)),
      p50: median(runs[kind].map((f) => f.p50)),
      p99: median(runs[kind].map((f) => f.p99)),
    });
    const raw = pick('raw');
    const ours = pick('transport');
    const checks: Check[] = [
      {
        name: 'transport / raw end-to-end throughput',
        actual: ours.throughput / raw.throughput,
        target: 0.8,
        direction: '>=',
        unit: 'x',
      },
      { name: `transport p99 at ${rate} msg/s`, actual: ours.p99, target: 10, direction: '<=', unit: ' ms' },
    ];
    return {
      tables: [
        {
          title: `NATS JetStream, ${messages} messages end to end; latency at ${rate} msg/s for ${seconds} s (median of ${rounds} rounds)`,
          columns: ['pipeline', 'msg/s end to end', `p50 ms @${rate}/s`, `p99 ms @${rate}/s`],
          rows: [
            ['raw JetStream', raw.throughput, raw.p50, raw.p99],
            ['createNatsTransport', ours.throughput, ours.p50, ours.p99],
            ['ratio', ours.throughput / raw.throughput, ours.p50 / raw.p50, ours.p99 / raw.p99],
          ],
        },
      ],
      checks,
      notes: [
        'raw: js.publish({msgID}) with 1000 in flight, pull consume() with an ack per message, one connection each side.',
        'transport: publish() in batches of 500 (two relays in parallel), handler batches, ack per message after the handler.',
        'latency: send time to handler time, publishing every 5 ms; payload about 330 bytes.',
      ],
      data: runs,
    };
  },
};
