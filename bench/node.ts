/**
 * The generic replication node (src/replication/node.ts): what appending a numbered envelope costs
 * against a raw `XADD` of the same entry on the same Redis in the same run, one envelope per call and
 * ten per call, and the end-to-end lag of a kind between two regions over the Redis Streams transport
 * (both regions' keys on the benchmark Redis, unsealed, so the figure is the node's own cost).
 *
 * Options: `--seconds=<n>` per throughput run (default 2), `--concurrency=<n>` (default 32),
 * `--rate=<n>` envelopes/s for the lag run (default 2000).
 */
import { Redis } from 'ioredis';
import type { Envelope } from '../src/contracts/envelope.js';
import { ReplicationNode } from '../src/replication/node.js';
import { createRedisStreamsTransport } from '../src/transports/redis-streams.js';
import { entryFields } from '../src/wire/stream-entry.js';
import { REDIS_HOST, REDIS_PORT } from './lib/env.js';
import { lagFigures, paceBatches, wallNow } from './lib/lag.js';
import { runLoad } from './lib/load.js';
import { numberFlag, type Report, type Suite } from './lib/suite.js';

const BODY = JSON.stringify({ keys: ['user:42:profile', 'user:42:avatar'], tags: ['user:42'] });

async function dropChannel(client: Redis, channel: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `*${channel}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}

export const nodeSuite: Suite = {
  name: 'node',
  description: 'replication node: append vs raw XADD, and lag of a kind between two regions',
  async run(options): Promise<Report> {
    const seconds = numberFlag(options, 'seconds', 2);
    const concurrency = numberFlag(options, 'concurrency', 32);
    const rate = numberFlag(options, 'rate', 2000);
    const channel = `bench-node-${process.pid}:`;
    const clients = {
      hk: new Redis({ host: REDIS_HOST, port: REDIS_PORT }),
      kr: new Redis({ host: REDIS_HOST, port: REDIS_PORT }),
    };
    const transports = {
      hk: createRedisStreamsTransport({ regions: { ...clients } }),
      kr: createRedisStreamsTransport({ regions: { ...clients } }),
    };
    const lags: number[] = [];
    const nodes = (['hk', 'kr'] as const).map((region) => {
      const node = new ReplicationNode({
        region,
        channel,
        client: clients[region],
        transport: transports[region],
        onError: (error) => options.log(`${region}: ${error.message}`),
      });
      node.register<number>('bench', {
        decode: (envelope: Envelope) =>
          Number((JSON.parse(envelope.body) as { t?: unknown }).t ?? Number.NaN),
        apply: async (items) => {
          const now = wallNow();
          for (const t of items) if (Number.isFinite(t)) lags.push(now - t);
        },
      });
      return node;
    });
    const hk = nodes[0] as ReplicationNode;
    try {
      const ms = seconds * 1000;
      const raw = hk.appendKeys().outbox.replace('|outbox}', '|rawbench}');
      options.log('raw XADD...');
      let n = 0;
      const xadd = await runLoad(concurrency, ms, () =>
        clients.hk.xadd(
          raw,
          '*',
          ...entryFields({ id: `hk:${++n}`, origin: 'hk', kind: 'bench', time: Date.now(), body: BODY }),
        ),
      );
      await clients.hk.del(raw);
      options.log('node.append, one envelope per call...');
      const one = await runLoad(concurrency, ms, () => hk.append('bench', [BODY]));
      options.log('node.append, ten envelopes per call...');
      const ten = await runLoad(concurrency, ms, () => hk.append('bench', Array(10).fill(BODY)));
      await clients.hk.del(hk.appendKeys().outbox);

      options.log(`lag at ${rate}/s between two regions...`);
      await Promise.all(nodes.map((node) => node.start()));
      const sent = await paceBatches(rate, ms, () => {
        void hk.append('bench', [JSON.stringify({ t: wallNow(), body: BODY })]);
      });
      const deadline = Date.now() + 10_000;
      while (lags.length < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const lag = lagFigures(lags);
      const ratio1 = one.opsPerSec / xadd.opsPerSec;
      const ratio10 = (ten.opsPerSec * 10) / xadd.opsPerSec;
      return {
        tables: [
          {
            title: `appending to the outbox (${concurrency} concurrent callers, ${seconds} s each)`,
            columns: ['operation', 'envelopes/s', 'vs raw XADD'],
            rows: [
              ['raw XADD (one entry, no number)', Math.round(xadd.opsPerSec), '1.00x'],
              ['node.append, 1 per call', Math.round(one.opsPerSec), `${ratio1.toFixed(2)}x`],
              ['node.append, 10 per call', Math.round(ten.opsPerSec * 10), `${ratio10.toFixed(2)}x`],
            ],
          },
          {
            title: `lag of a kind, hk to kr over Redis Streams, ${rate}/s for ${seconds} s`,
            columns: ['sent', 'received', 'p50 ms', 'p99 ms', 'max ms'],
            rows: [[sent, lag.samples, lag.p50, lag.p99, lag.max]],
          },
        ],
        checks: [
          {
            name: 'append (1 per call) vs raw XADD',
            actual: ratio1,
            target: 0.5,
            direction: '>=',
            unit: 'x',
          },
          { name: `lag p99 at ${rate}/s`, actual: lag.p99, target: 10, direction: '<=', unit: ' ms' },
          { name: 'every envelope received', actual: lag.samples / sent, target: 1, direction: '>=' },
        ],
        notes: [
          'append numbers each envelope (one EVALSHA: TIME, HGET/HINCRBY of the counter, XADD); raw XADD writes the same entry with no number.',
          'lag: from the append call (wall clock in the body) to the handler in the other region, same process.',
        ],
        data: { xadd, one, ten, lag },
      };
    } finally {
      await Promise.all(nodes.map((node) => node.close()));
      await Promise.all(Object.values(transports).map((t) => t.close()));
      await dropChannel(clients.hk, channel);
      for (const client of Object.values(clients)) client.disconnect();
    }
  },
};
