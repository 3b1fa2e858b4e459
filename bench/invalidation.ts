/**
 * `npm run bench -- users-invalidation`: cross-region cache invalidation lag at a steady rate across two
 * regions (two private redis-servers, the Redis Streams transport, unsealed), from the `invalidate()`
 * call in hk to the `invalidated` event in a kr process (heard after the delete in kr's Redis: the delete
 * and the publish are one script). The same job done by hand with the raw client (DEL + XADD in one
 * script in hk; a blocking XREAD from kr; DEL + PUBLISH in one script in kr; a kr subscriber) runs in the
 * same process at the same rate, and the ratios are printed.
 *
 * Flags: `--rate=<per s>` (2000), `--ms=<run>` (5000 per side, after a 1 s warm-up).
 */
import type { Redis } from 'ioredis';
import { createInvalidator } from '../src/index.js';
import { createRedisStreamsTransport } from '../src/transports/redis-streams.js';
import { type LagFigures, lagFigures, paceBatches, wallNow } from './lib/lag.js';
import { type BenchRedis, startBenchRedis } from './lib/redis-server.js';
import { numberFlag, type Report, type Suite, type SuiteOptions } from './lib/suite.js';

const WARMUP_MS = 1000;

/** Lag percentiles and the mean (the seed quoted an average). */
type Figures = LagFigures & { mean: number };

/** Runs `fire` at `rate` for `ms` and collects the lags reported through `done` for the fired keys. */
async function measure(
  rate: number,
  ms: number,
  start: Map<string, number>,
  lags: number[],
  fire: (key: string) => void,
  tag: string,
): Promise<Figures> {
  await paceBatches(rate, WARMUP_MS, (i) => fire(`warm:${tag}:${i}`));
  await settle(start, 5000);
  lags.length = 0;
  const sent = await paceBatches(rate, ms, (i) => fire(`run:${tag}:${i}`));
  await settle(start, 10_000);
  if (lags.length < sent)
    throw new Error(`${tag}: ${sent - lags.length} of ${sent} invalidations never arrived`);
  return { ...lagFigures(lags), mean: lags.reduce((a, b) => a + b, 0) / lags.length };
}

async function settle(start: Map<string, number>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (start.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

async function geosession(hk: BenchRedis, kr: BenchRedis, rate: number, ms: number): Promise<Figures> {
  const channel = 'bench-inv:';
  const open = (region: 'hk' | 'kr') => {
    const own = (region === 'hk' ? hk : kr).client();
    const transport = createRedisStreamsTransport({
      regions: { hk: hk.client(), kr: kr.client(), [region]: own },
    });
    const inv = createInvalidator({ client: own, region, transport, channel, sealer: 'none' });
    return { inv, transport };
  };
  const a = open('hk');
  const b = open('kr');
  const start = new Map<string, number>();
  const lags: number[] = [];
  b.inv.on('invalidated', (event) => {
    for (const key of event.keys) {
      const t = start.get(key);
      if (t === undefined) continue;
      start.delete(key);
      lags.push(wallNow() - t);
    }
  });
  await Promise.all([a.inv.ready(), b.inv.ready()]);
  try {
    return await measure(
      rate,
      ms,
      start,
      lags,
      (key) => {
        start.set(key, wallNow());
        a.inv.invalidate(key).catch(() => {});
      },
      'geosession',
    );
  } finally {
    await Promise.all([a.inv.close(), b.inv.close()]);
    await Promise.all([a.transport.close(), b.transport.close()]);
  }
}

const RAW_SEND = "redis.call('DEL', KEYS[1]) redis.call('XADD', KEYS[2], '*', 'k', KEYS[1])";
const RAW_APPLY = "redis.call('DEL', KEYS[1]) redis.call('PUBLISH', ARGV[1], KEYS[1])";

async function raw(hk: BenchRedis, kr: BenchRedis, rate: number, ms: number): Promise<Figures> {
  const stream = 'raw-inv:out';
  const channel = 'raw-inv:heard';
  const sender = hk.client();
  const reader = hk.client();
  const applier = kr.client();
  const subscriber = kr.client();
  const start = new Map<string, number>();
  const lags: number[] = [];
  subscriber.on('message', (_channel: string, key: string) => {
    const t = start.get(key);
    if (t === undefined) return;
    start.delete(key);
    lags.push(wallNow() - t);
  });
  await subscriber.subscribe(channel);
  let running = true;
  const loop = (async () => {
    let last = '$';
    while (running) {
      const reply = (await reader.xread('COUNT', 2000, 'BLOCK', 200, 'STREAMS', stream, last)) as
        | [string, [string, string[]][]][]
        | null;
      const entries = reply?.[0]?.[1] ?? [];
      for (const [id, fields] of entries) {
        last = id;
        void (applier as Redis).eval(RAW_APPLY, 1, fields[1] as string, channel);
      }
    }
  })();
  try {
    return await measure(
      rate,
      ms,
      start,
      lags,
      (key) => {
        start.set(key, wallNow());
        void sender.eval(RAW_SEND, 2, key, stream);
      },
      'raw',
    );
  } finally {
    running = false;
    await loop;
  }
}

export const invalidationSuite: Suite = {
  name: 'users-invalidation',
  description: 'cross-region cache invalidation lag p50/p99 at 2,000/s over Redis Streams, vs the raw client',
  async run(options: SuiteOptions): Promise<Report> {
    const rate = numberFlag(options, 'rate', 2000);
    const ms = numberFlag(options, 'ms', 5000);
    const [hk, kr] = await Promise.all([startBenchRedis(), startBenchRedis()]);
    try {
      options.log(`invalidation: raw client at ${rate}/s for ${ms} ms`);
      const rawFigures = await raw(hk, kr, rate, ms);
      options.log(`invalidation: geosession at ${rate}/s for ${ms} ms`);
      const ours = await geosession(hk, kr, rate, ms);
      const row = (name: string, f: Figures) => [name, f.samples, f.mean, f.p50, f.p99, f.max];
      return {
        tables: [
          {
            title: `Invalidation lag hk → kr at ${rate}/s (ms, call in hk to the event in a kr process)`,
            columns: ['', 'samples', 'mean', 'p50', 'p99', 'max'],
            rows: [
              row('geosession invalidator', ours),
              row('raw client (DEL+XADD, XREAD, DEL+PUBLISH)', rawFigures),
              [
                'ratio geosession / raw',
                '',
                ours.mean / rawFigures.mean,
                ours.p50 / rawFigures.p50,
                ours.p99 / rawFigures.p99,
                '',
              ],
            ],
          },
        ],
        checks: [
          {
            name: 'invalidation lag p99 (seed: 180 ms average)',
            actual: ours.p99,
            target: 10,
            direction: '<=',
            unit: ' ms',
          },
        ],
        notes: [
          'Two private redis-servers on loopback, one process for both regions, unsealed, default transport options.',
          'Lag runs from the invalidate() call in hk to the invalidated event in kr, heard after the keys were deleted there.',
        ],
        data: { rate, ms, geosession: ours, raw: rawFigures },
      };
    } finally {
      await Promise.all([hk.stop(), kr.stop()]);
    }
  },
};
