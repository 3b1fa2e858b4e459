/**
 * Replication suite: two regions, each its own private redis-server, replicating through the Redis
 * Streams transport, measured beside the raw XADD → XREADGROUP → XACK floor of the same Redis in the
 * same run.
 *
 * - lag at a steady write rate (p50 / p99 / max), from the `set` call in hk to the change being applied
 *   in kr's Redis; the raw floor is XADD to the XREADGROUP reply.
 * - the same lag and sustained rate with sealing (PASETO v4.local and v4.public, `createPasetoSealer`):
 *   hk's relay reads its outbox, seals each batch as one token and appends it to hk's relay stream,
 *   which kr reads and opens before applying. Same servers, same run, own key prefix per variant.
 * - sustained rate: 64 writers as fast as they go; replicated writes per second end to end (until the
 *   last one is applied in kr), against the raw stream's end-to-end rate with 64 producers.
 * - catch-up after an outage: kr's subscriber is stopped while hk writes at a steady rate, then started;
 *   events applied per second while it drains the backlog, against the raw drain of the same backlog.
 * - catch-up over a long link: the same drain with kr reading hk's outbox through a proxy that adds a
 *   round trip of `--rtt` ms, beside the raw loop over the same link.
 * - the same job by hand with the raw client, and the CPU each pipeline spends per event.
 * - the local write with the outbox against connect-redis 8's plain SET on the same Redis.
 *
 * Flags: `--rate=<writes/s>` (2000), `--lag-seconds=<s>` (5), `--sustain-seconds=<s>` (5),
 * `--outage=<s>` (30), `--outage-rate=<writes/s>` (5000), `--concurrency=<n>` (64), `--rtt=<ms>` (40) and
 * `--wan-backlog=<events>` (30000) for the catch-up over a long link.
 */
import { RedisStore as ConnectRedis8 } from 'connect-redis-8';
import type { Redis } from 'ioredis';
import type { AppliedBatch } from '../src/replication/replicator.js';
import { sessionEnvelope } from '../src/replication/session-codec.js';
import { GeoSessionStore } from '../src/session/store.js';
import { createRedisStreamsTransport } from '../src/transports/redis-streams.js';
import { internalKey } from '../src/wire/internal-keys.js';
import { startTcpProxy } from '../test/helpers/tcp-proxy.js';
import { type CpuCost, measureCpu } from './lib/cpu.js';
import { EXHAUSTED, runLoad } from './lib/load.js';
import { type BenchRedis, startBenchRedis } from './lib/redis-server.js';
import { Regions } from './lib/regions.js';
import { makeSession } from './lib/session.js';
import {
  type Cell,
  type Check,
  numberFlag,
  type Report,
  type Suite,
  type SuiteOptions,
} from './lib/suite.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface LagFigures {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

function lagFigures(lags: number[]): LagFigures {
  const sorted = [...lags].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    samples: sorted.length,
  };
}

/** Calls `fire(i)` `rate` times a second for `seconds`, not waiting for each call (open loop). */
async function paced(rate: number, seconds: number, fire: (i: number) => void): Promise<number> {
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    while (sent < due) fire(sent++);
    await sleep(1);
  }
  return total;
}

const PAYLOAD = JSON.stringify(makeSession(1));

// ------------------------------------------------------------------------------------------------
// Raw floor: XADD → XREADGROUP (COUNT 500, BLOCK) → XACK on one Redis, publisher and consumer in-process.

/** A stream entry as ioredis returns it: id and flat field list. */
type RawEntry = [id: string, fields: string[]];

class RawStream {
  private readonly key =
    `raw:${process.pid}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 6)}`;
  private stopped = false;
  private loop: Promise<void> | undefined;
  consumed = 0;
  lastConsumedAt = 0;
  /** Called with each batch as it is read, and waited for before the batch is acknowledged. */
  onBatch: ((entries: RawEntry[], readAt: number) => unknown) | undefined;

  constructor(
    private readonly producer: Redis,
    private readonly consumer: Redis,
  ) {}

  async open(): Promise<void> {
    await this.producer.xgroup('CREATE', this.key, 'kr', '$', 'MKSTREAM');
  }

  add(fields: string[]): Promise<unknown> {
    return this.producer.xadd(this.key, '*', ...fields);
  }

  /** Appends `count` entries of `fields`, pipelined 1000 at a time (a backlog). */
  async fill(count: number, fields: string[]): Promise<void> {
    for (let i = 0; i < count; i += 1000) {
      const pipeline = this.producer.pipeline();
      for (let j = i; j < Math.min(count, i + 1000); j++) pipeline.xadd(this.key, '*', ...fields);
      await pipeline.exec();
    }
  }

  start(): void {
    this.stopped = false;
    this.loop = (async () => {
      while (!this.stopped) {
        const reply = (await this.consumer.xreadgroup(
          'GROUP',
          'kr',
          'c1',
          'COUNT',
          500,
          'BLOCK',
          100,
          'STREAMS',
          this.key,
          '>',
        )) as [string, RawEntry[]][] | null;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) continue;
        await this.onBatch?.(entries, performance.now());
        await this.consumer.xack(this.key, 'kr', ...entries.map((e) => e[0]));
        this.consumed += entries.length;
        this.lastConsumedAt = performance.now();
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  async drop(): Promise<void> {
    await this.producer.del(this.key);
  }
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for replication to drain');
    await sleep(2);
  }
}

async function rawLag(raw: RawStream, rate: number, seconds: number): Promise<LagFigures> {
  const lags: number[] = [];
  raw.onBatch = (entries, readAt) => {
    for (const [, fields] of entries) lags.push(readAt - Number(fields[1]));
  };
  raw.start();
  const total = await paced(rate, seconds, () => {
    void raw.add(['t', String(performance.now()), 'd', PAYLOAD]);
  });
  await waitFor(() => lags.length >= total, 30_000);
  await raw.stop();
  raw.onBatch = undefined;
  return lagFigures(lags);
}

/** A throughput run: events per second end to end, and how many events it carried. */
interface Throughput {
  rate: number;
  ops: number;
}

type Measured = Throughput & { cpu: CpuCost };

function best(runs: readonly Measured[]): Measured {
  return runs.reduce((a, b) => (b.rate > a.rate ? b : a));
}

/** A row of the throughput table: both rates and their ratio. */
function ratioRow(label: string, mine: number, reference: number): Cell[] {
  return [label, Math.round(mine), Math.round(reference), Number((mine / reference).toFixed(2))];
}

/** One row of the CPU table: microseconds of CPU per event in each process, and their sum. */
function cpuRow(label: string, run: Measured): Cell[] {
  const us = (name: string) => Number((run.cpu.perOpUs[name] ?? Number.NaN).toFixed(1));
  return [label, us('node'), us('hk redis'), us('kr redis'), Number(run.cpu.totalUs.toFixed(1))];
}

async function rawSustained(raw: RawStream, concurrency: number, seconds: number): Promise<Throughput> {
  raw.consumed = 0;
  raw.start();
  const start = performance.now();
  const load = await runLoad(concurrency, seconds * 1000, () => raw.add(['d', PAYLOAD]));
  await waitFor(() => raw.consumed >= load.ops, 60_000);
  await raw.stop();
  return { rate: (raw.consumed * 1000) / (raw.lastConsumedAt - start), ops: raw.consumed };
}

/**
 * The same job done by hand with the raw client, no library: each write is a pipelined `SET PX` of the
 * session plus an `XADD` of it; the consumer reads batches and writes each session into the other
 * Redis with a pipelined `SET PX`, then acknowledges. No versions, tombstones or fingerprints.
 */
async function rawEquivalent(
  hk: Redis,
  hkReader: Redis,
  kr: Redis,
  concurrency: number,
  seconds: number,
): Promise<Throughput> {
  const raw = new RawStream(hk, hkReader);
  await raw.open();
  raw.onBatch = (entries) => {
    const apply = kr.pipeline();
    for (const [, fields] of entries) apply.set(fields[1] as string, fields[3] as string, 'PX', 86_400_000);
    return apply.exec();
  };
  raw.start();
  const start = performance.now();
  const load = await runLoad(concurrency, seconds * 1000, async (worker, seq) => {
    const sid = `rawq:${worker}x${seq}`;
    await Promise.all([hk.set(sid, PAYLOAD, 'PX', 86_400_000), raw.add(['s', sid, 'd', PAYLOAD])]);
  });
  await waitFor(() => raw.consumed >= load.ops, 60_000);
  await raw.stop();
  await raw.drop();
  return { rate: (raw.consumed * 1000) / (raw.lastConsumedAt - start), ops: raw.consumed };
}

async function rawCatchUp(raw: RawStream, backlog: number): Promise<number> {
  await raw.fill(backlog, ['d', PAYLOAD]);
  raw.consumed = 0;
  const start = performance.now();
  raw.start();
  await waitFor(() => raw.consumed >= backlog, 120_000);
  await raw.stop();
  return (backlog * 1000) / (raw.lastConsumedAt - start);
}

// ------------------------------------------------------------------------------------------------
// geosession: hk writes through GeoSessionStore, kr applies through its own store's subscription.

async function geoLag(regions: Regions, rate: number, seconds: number): Promise<LagFigures> {
  const sentAt = new Map<string, number>();
  const lags: number[] = [];
  regions.onApplied = (batch, now) => {
    for (const event of batch.events) {
      const t = sentAt.get(event.sid);
      if (t !== undefined) {
        lags.push(now - t);
        sentAt.delete(event.sid);
      }
    }
  };
  const total = await paced(rate, seconds, (i) => {
    const sid = `hk.lag${i}`;
    sentAt.set(sid, performance.now());
    void regions.hk.set(sid, makeSession(i));
  });
  await waitFor(() => lags.length >= total, 30_000);
  regions.onApplied = undefined;
  return lagFigures(lags);
}

async function geoSustained(regions: Regions, concurrency: number, seconds: number): Promise<Throughput> {
  regions.applied = 0;
  const session = makeSession(7);
  const start = performance.now();
  const load = await runLoad(concurrency, seconds * 1000, (worker, seq) => {
    session['views'] = seq;
    return regions.hk.set(`hk.sus${worker}x${seq}`, session);
  });
  await waitFor(() => regions.applied >= load.ops, 120_000);
  return { rate: (regions.applied * 1000) / (regions.lastAppliedAt - start), ops: regions.applied };
}

/**
 * The Redis Streams transport alone, as the AMQP and NATS suites measure theirs: events published with
 * `transport.publish` (XADD to the origin's outbox) and delivered to a subscriber that only counts them.
 * No session write, no apply: what the transport itself costs over the raw stream.
 */
async function transportOnly(hk: Redis, kr: Redis, concurrency: number, seconds: number): Promise<number> {
  const transport = createRedisStreamsTransport({ regions: { hk, kr } });
  const channel = `gstr:${process.pid}:${Date.now().toString(36)}:`;
  let delivered = 0;
  let last = 0;
  const sub = await transport.subscribe({
    channel,
    region: 'kr',
    source: 'published',
    handler: async (events) => {
      delivered += events.length;
      last = performance.now();
    },
  });
  const now = Date.now();
  const start = performance.now();
  const load = await runLoad(concurrency, seconds * 1000, (worker, seq) =>
    transport.publish(channel, [
      sessionEnvelope({
        id: `hk:${worker}-${seq}`,
        origin: 'hk',
        time: now,
        sid: `hk.t${worker}x${seq}`,
        op: 'set',
        version: `${String(now).padStart(15, '0')}.0000.hk`,
        expiresAt: now + 86_400_000,
        lifetimeMs: 86_400_000,
        fingerprint: 'fp',
        data: PAYLOAD,
      }),
    ]),
  );
  await waitFor(() => delivered >= load.ops, 60_000);
  await sub.close();
  await transport.close();
  await hk.del(internalKey(channel, 'relay', 'hk'));
  return (delivered * 1000) / (last - start);
}

async function geoCatchUp(
  regions: Regions,
  rate: number,
  seconds: number,
  log: (line: string) => void,
): Promise<{ backlog: number; rate: number }> {
  await regions.stopKr();
  log(`  kr is away for ${seconds} s while hk writes ${rate}/s...`);
  let done = 0;
  const total = await paced(rate, seconds, (i) => {
    void regions.hk.set(`hk.out${i}`, makeSession(i)).then(() => done++);
  });
  await waitFor(() => done >= total, 60_000);
  regions.applied = 0;
  const start = performance.now();
  await regions.startKr();
  await waitFor(() => regions.applied >= total, 300_000);
  return { backlog: total, rate: (total * 1000) / (regions.lastAppliedAt - start) };
}

/**
 * Catch-up across a long link: kr reads hk's outbox through a proxy that delays every chunk by half of
 * `rttMs` each way, as between two regions (Hong Kong and Seoul are about 40 ms apart). The backlog is
 * written while kr is away; then kr starts and drains it. Beside it, the raw XREADGROUP → XACK loop over
 * the same link. Over a long link a reader that waits for each reply in turn is bound by round trips, not
 * by CPU.
 */
async function wanCatchUp(
  regions: Regions,
  hkRedis: BenchRedis,
  rttMs: number,
  backlog: number,
  log: (line: string) => void,
): Promise<{ geo: number; raw: number }> {
  const proxy = await startTcpProxy(hkRedis.port, '127.0.0.1', { delayMs: rttMs / 2 });
  const hkFar = hkRedis.client({ port: proxy.port });
  const transport = createRedisStreamsTransport({ regions: { hk: hkFar, kr: regions.krClient } });
  try {
    await regions.stopKr();
    log(`  catch-up of ${backlog} events over a ${rttMs} ms round trip...`);
    const session = makeSession(3);
    await runLoad(64, 60_000, (worker, seq) => {
      const n = seq * 64 + worker;
      if (n >= backlog) return Promise.resolve(EXHAUSTED);
      return regions.hk.set(`hk.wan${n}`, session);
    });
    let applied = 0;
    let last = 0;
    const kr = new GeoSessionStore({
      region: 'kr',
      client: regions.krClient,
      prefix: regions.prefix,
      transport,
      sealer: 'none',
    });
    kr.on('replicated', (batch: AppliedBatch) => {
      applied += batch.events.length;
      last = performance.now();
    });
    const start = performance.now();
    await kr.ready();
    await waitFor(() => applied >= backlog, 300_000);
    await kr.close();
    const geo = (backlog * 1000) / (last - start);

    const raw = new RawStream(hkRedis.client(), hkFar);
    await raw.open();
    const rawRate = await rawCatchUp(raw, backlog);
    await raw.drop();
    await regions.startKr();
    return { geo, raw: rawRate };
  } finally {
    await transport.close();
    hkFar.disconnect();
    await proxy.close();
  }
}

async function localSetRatio(
  regions: Regions,
  concurrency: number,
): Promise<{ geo: number; cr8: number; written: number }> {
  // Only hk's own work: in production kr applies in its own process, so its subscriber is stopped here
  // and the outbox simply holds the events.
  await regions.stopKr();
  const cr8 = new ConnectRedis8({ client: regions.hkClient, prefix: `${regions.prefix}cr8:` });
  const set = (store: { set(sid: string, s: unknown, cb: (e?: unknown) => void): unknown }, tag: string) =>
    runLoad(concurrency, 3000, (worker, seq) => {
      // A pool of 8192 sessions, rewritten with new content, as in the store suite: the keyspace stays
      // the same size whichever store runs faster.
      const session = makeSession(seq);
      const id = (seq * concurrency + worker) % 8192;
      return new Promise<void>((resolve, reject) =>
        store.set(`${tag}${id}`, session, (e) => (e ? reject(e) : resolve())),
      );
    });
  // Interleaved three times; the best of each is kept (noise only ever slows a run down).
  let geo = 0;
  let other = 0;
  let written = 0;
  for (let round = 0; round < 3; round++) {
    const mine = await set(regions.hk as never, 'hk.loc');
    geo = Math.max(geo, mine.opsPerSec);
    written += mine.ops;
    other = Math.max(other, (await set(cr8 as never, 'cr8')).opsPerSec);
  }
  return { geo, cr8: other, written };
}

export const replicationSuite: Suite = {
  name: 'replication',
  description: 'two regions over Redis Streams: lag, sustained rate, catch-up, beside the raw stream floor',
  async run(options: SuiteOptions): Promise<Report> {
    const rate = numberFlag(options, 'rate', 2000);
    const lagSeconds = numberFlag(options, 'lag-seconds', 5);
    const sustainSeconds = numberFlag(options, 'sustain-seconds', 5);
    const outage = numberFlag(options, 'outage', 30);
    const outageRate = numberFlag(options, 'outage-rate', 5000);
    const concurrency = numberFlag(options, 'concurrency', 64);
    const rtt = numberFlag(options, 'rtt', 40);
    const wanBacklog = numberFlag(options, 'wan-backlog', 30_000);

    const [hkRedis, krRedis] = await Promise.all([startBenchRedis(), startBenchRedis()]);
    const raw = new RawStream(hkRedis.client(), hkRedis.client());
    const regions = new Regions(hkRedis, krRedis);
    // The same two regions sealing with PASETO v4.local and v4.public, each pair under its own prefix.
    const sealed = [new Regions(hkRedis, krRedis, 'v4.local'), new Regions(hkRedis, krRedis, 'v4.public')];
    try {
      await raw.open();
      await regions.startKr();
      for (const pair of sealed) await pair.startKr();
      // Warm up scripts and connections.
      await geoLag(regions, 500, 1);
      for (const pair of sealed) await geoLag(pair, 500, 1);
      await rawLag(raw, 500, 1);

      // First, while both servers are fresh: the later phases leave millions of keys behind, and a
      // ratio of two stores on one Redis is steadier before that.
      options.log('  local set with the outbox vs connect-redis 8...');
      const local = await localSetRatio(regions, concurrency);
      // kr drains what hk wrote meanwhile before anything else is measured.
      regions.applied = 0;
      await regions.startKr();
      await waitFor(() => regions.applied >= local.written, 120_000);
      await sleep(6000); // one trim of the outbox (every 5 s) behind us, so it does not land in the lag phase

      options.log(`  lag at ${rate} writes/s for ${lagSeconds} s...`);
      const geoLagFig = await geoLag(regions, rate, lagSeconds);
      const sealedLag: LagFigures[] = [];
      for (const pair of sealed) sealedLag.push(await geoLag(pair, rate, lagSeconds));
      const rawLagFig = await rawLag(raw, rate, lagSeconds);

      options.log(`  sustained rate, ${concurrency} writers for ${sustainSeconds} s...`);
      // Raw floor, geosession and the same job by hand, interleaved twice; the better run of each is kept.
      const servers = { 'hk redis': hkRedis.client(), 'kr redis': krRedis.client() };
      const handClients = [hkRedis.client(), hkRedis.client(), krRedis.client()] as const;
      const runs = {
        raw: [] as Measured[],
        geo: [] as Measured[],
        sealed: sealed.map(() => [] as Measured[]),
        hand: [] as Measured[],
      };
      for (let round = 0; round < 2; round++) {
        runs.raw.push(await measureCpu(servers, () => rawSustained(raw, concurrency, sustainSeconds)));
        runs.geo.push(await measureCpu(servers, () => geoSustained(regions, concurrency, sustainSeconds)));
        for (const [i, pair] of sealed.entries()) {
          runs.sealed[i]?.push(
            await measureCpu(servers, () => geoSustained(pair, concurrency, sustainSeconds)),
          );
        }
        runs.hand.push(
          await measureCpu(servers, () => rawEquivalent(...handClients, concurrency, sustainSeconds)),
        );
      }
      const rawBest = best(runs.raw);
      const geoBest = best(runs.geo);
      const sealedBest = runs.sealed.map(best);
      const handBest = best(runs.hand);
      for (const pair of sealed) await pair.close();

      options.log('  the Redis Streams transport alone...');
      const transportRate = await transportOnly(
        hkRedis.client(),
        krRedis.client(),
        concurrency,
        sustainSeconds,
      );

      options.log('  catch-up after an outage...');
      const catchUp = await geoCatchUp(regions, outageRate, outage, options.log);
      const rawDrain = await rawCatchUp(raw, catchUp.backlog);

      const wan = await wanCatchUp(regions, hkRedis, rtt, wanBacklog, options.log);

      const ms = (n: number) => Number(n.toFixed(2));
      const checks: Check[] = [
        {
          name: `lag p99 at ${rate} writes/s`,
          actual: ms(geoLagFig.p99),
          target: 5,
          direction: '<=',
          unit: ' ms',
        },
        ...sealed.map(
          (pair, i): Check => ({
            name: `lag p99 at ${rate} writes/s, sealed ${pair.sealing}`,
            actual: ms(sealedLag[i]?.p99 ?? Number.NaN),
            target: 10,
            direction: '<=',
            unit: ' ms',
          }),
        ),
        {
          name: 'sustained replicated writes, sealed v4.local vs unsealed',
          actual: Number(((sealedBest[0]?.rate ?? 0) / geoBest.rate).toFixed(2)),
          target: 0.7,
          direction: '>=',
          unit: 'x',
        },
        {
          name: 'sustained replicated writes vs the same job by hand (SET+XADD, read, SET)',
          actual: Number((geoBest.rate / handBest.rate).toFixed(2)),
          target: 0.8,
          direction: '>=',
          unit: 'x',
        },
        {
          name: 'Redis Streams transport alone vs raw stream floor',
          actual: Number((transportRate / rawBest.rate).toFixed(2)),
          target: 0.8,
          direction: '>=',
          unit: 'x',
        },
        {
          name: `catch-up after a ${outage} s outage`,
          actual: Math.round(catchUp.rate),
          target: 20_000,
          direction: '>=',
          unit: ' events/s',
        },
        {
          name: 'local set with outbox vs connect-redis 8 set',
          actual: Number((local.geo / local.cr8).toFixed(2)),
          target: 0.8,
          direction: '>=',
          unit: 'x',
        },
      ];
      return {
        tables: [
          {
            title: `Replication lag at ${rate} writes/s for ${lagSeconds} s (ms)`,
            columns: ['path', 'p50', 'p99', 'max', 'samples'],
            rows: [
              [
                'geosession hk → kr (set to applied)',
                ms(geoLagFig.p50),
                ms(geoLagFig.p99),
                ms(geoLagFig.max),
                geoLagFig.samples,
              ],
              ...sealed.map((pair, i): Cell[] => {
                const fig = sealedLag[i] as LagFigures;
                return [
                  `geosession sealed ${pair.sealing} (set → relay → relay stream → open → apply)`,
                  ms(fig.p50),
                  ms(fig.p99),
                  ms(fig.max),
                  fig.samples,
                ];
              }),
              [
                'raw XADD → XREADGROUP',
                ms(rawLagFig.p50),
                ms(rawLagFig.p99),
                ms(rawLagFig.max),
                rawLagFig.samples,
              ],
            ],
          },
          {
            title: `Throughput with ${concurrency} writers (per second, best of 2)`,
            columns: ['measure', 'geosession', 'raw floor', 'ratio'],
            rows: [
              ratioRow('sustained, end to end', geoBest.rate, rawBest.rate),
              ...sealed.map((pair, i) =>
                ratioRow(
                  `sustained, sealed ${pair.sealing} (ratio vs unsealed)`,
                  sealedBest[i]?.rate ?? 0,
                  geoBest.rate,
                ),
              ),
              ratioRow('the transport alone (publish → subscriber)', transportRate, rawBest.rate),
              ratioRow(
                'the same job by hand (SET+XADD → SET), vs the raw floor',
                handBest.rate,
                rawBest.rate,
              ),
              ratioRow('sustained vs the same job by hand', geoBest.rate, handBest.rate),
              ratioRow(`catch-up of ${catchUp.backlog} events`, catchUp.rate, rawDrain),
              ratioRow(`catch-up of ${wanBacklog} events over a ${rtt} ms round trip`, wan.geo, wan.raw),
              ratioRow('local set (+outbox) vs connect-redis 8', local.geo, local.cr8),
            ],
          },
          {
            title: 'CPU per replicated event in the sustained runs (µs, best run of each)',
            columns: ['pipeline', 'node', 'hk redis', 'kr redis', 'total'],
            rows: [
              cpuRow('raw floor (XADD → XREADGROUP → XACK)', rawBest),
              cpuRow('the same job by hand (SET+XADD → SET)', handBest),
              cpuRow('geosession (set → outbox → apply)', geoBest),
              ...sealed.map((pair, i) =>
                cpuRow(
                  `geosession sealed ${pair.sealing} (… → relay, seal → open → apply)`,
                  sealedBest[i] as Measured,
                ),
              ),
            ],
          },
        ],
        checks,
        notes: [
          'Two private redis-server processes (hk, kr) on this machine; the benchmark process plays both regions.',
          'geosession lag is from the set() call in hk to the end of the apply script in kr; raw lag is from XADD to the XREADGROUP reply.',
          'The raw floor writes entries of the same size (~500 B) to one stream with one consumer group and acks each batch.',
          'CPU per event is what bounds a ratio once the cores are saturated: the raw floor only appends and reads an entry, a replicated write also writes the session in hk and applies it in kr.',
        ],
        data: {
          geoLagFig,
          sealedLag,
          rawLagFig,
          sustained: runs,
          catchUp,
          rawDrain,
          wan,
          local,
        },
      };
    } finally {
      for (const pair of sealed) await pair.close();
      await regions.close();
      await Promise.all([hkRedis.stop(), krRedis.stop()]);
    }
  },
};
