/**
 * End-to-end lag suite: from `store.set()` in hk (one process) to the key appearing in kr's Redis, where
 * kr's GeoSessionStore (another process) applies it, for Redis Streams, AMQP and NATS, at steady write
 * rates, on direct loopback and over a link with a long round trip; beside each, the raw client's
 * publish-to-consume floor on the same link at the same rate, in the same run.
 *
 * - hk and kr each have a private redis-server. AMQP uses the machine's RabbitMQ; NATS a private
 *   nats-server with JetStream (or `--nats=<url>` with unique stream names).
 * - Arrival in kr is seen without polling: this process subscribes to keyspace notifications of kr's
 *   Redis and timestamps each `set` on receipt; the sid of every write carries its send time (processes
 *   of one machine share the wall clock; the suite checks how well and reports it).
 * - The link: a delay proxy in a process of its own, between kr's process and hk's Redis for Redis
 *   Streams (kr reads hk's outbox), between hk's process and the broker for AMQP and NATS.
 * - Load: open loop, `rate / 100` writes every 10 ms, `--warmup` ms, then `--seconds` measured.
 *
 * Flags: `--transports=redis-streams,amqp,nats`, `--rates=200,1000,2000,5000`, `--links=loopback,wan`,
 * `--seconds=<s>` (4), `--warmup=<ms>` (1000), `--rtt=<ms>` (40), `--amqp-url=<url>`
 * (amqp://guest:guest@127.0.0.1:5672), `--nats=<url>` (default: a private nats-server),
 * `--chart=<file>` (docs/img/e2e-lag.svg; `none` to skip).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { TransportKind } from './e2e/raw-pipes.js';
import { type GeoInit, parseSid } from './e2e/region.js';
import { cleanUpBrokers, listFlag, loadAverage, measureClockSkew } from './e2e/support.js';
import { type LagPoint, writeLagChart } from './lib/chart.js';
import { type Child, forkChild } from './lib/child.js';
import { type LagFigures, lagFigures, wallNow } from './lib/lag.js';
import { type BenchNats, startBenchNats } from './lib/nats-server.js';
import { type BenchRedis, startBenchRedis } from './lib/redis-server.js';
import {
  type Check,
  numberFlag,
  type Report,
  type Suite,
  type SuiteOptions,
  type Table,
} from './lib/suite.js';

const REGION_CHILD = fileURLToPath(new URL('./e2e/region.ts', import.meta.url));
const KINDS: readonly TransportKind[] = ['redis-streams', 'amqp', 'nats'];
const LINKS = ['loopback', 'wan'] as const;
type Link = (typeof LINKS)[number];
type Pipeline = 'geosession' | 'raw client';

/** Loopback p99 targets at 2,000 writes/s (issue 9). */
const LOOPBACK_P99: Record<TransportKind, number> = { 'redis-streams': 5, amqp: 10, nats: 10 };

/** One measured phase. */
interface Row {
  kind: TransportKind;
  link: Link;
  rate: number;
  pipeline: Pipeline;
  lag: LagFigures;
  sent: number;
  /** Writes whose arrival was not seen before the timeout. */
  lost: number;
  failed: number;
  hkCpuUsPerWrite: number;
  krCpuUsPerWrite: number;
  /**
   * Longest stall of this (the measuring) process's event loop during the phase, in ms: it does little
   * besides timestamping arrivals, so a long stall means the machine was busy with something else.
   */
  stallMs: number;
}

const loopDelay = monitorEventLoopDelay({ resolution: 1 });

/** Timestamps each `set` of a key under `e2e:` in kr's Redis as it is notified, by phase. */
class KeyspaceMeasurer {
  private readonly arrivals = new Map<number, number[]>();
  private readonly sub: Redis;

  constructor(private readonly kr: BenchRedis) {
    this.sub = kr.client();
  }

  async start(): Promise<void> {
    const admin = this.kr.client();
    await admin.config('SET', 'notify-keyspace-events', 'K$');
    admin.disconnect();
    const head = '__keyspace@0__:';
    this.sub.on('pmessage', (_pattern: string, channel: string, event: string) => {
      const now = wallNow();
      if (event !== 'set') return;
      const parsed = parseSid(channel.slice(channel.lastIndexOf(':') + 1));
      if (!parsed || !channel.startsWith(head)) return;
      const list = this.arrivals.get(parsed.phase);
      if (list) list.push(now - parsed.sentAt);
      else this.arrivals.set(parsed.phase, [now - parsed.sentAt]);
    });
    await this.sub.psubscribe(`${head}e2e:*`);
  }

  async collect(phase: number, count: number, timeoutMs: number): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    while ((this.arrivals.get(phase)?.length ?? 0) < count && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const lags = this.arrivals.get(phase) ?? [];
    this.arrivals.delete(phase);
    return lags;
  }
}

/** The four processes of one transport on one link, and the proxy if the link has one. */
interface Combo {
  kind: TransportKind;
  link: Link;
  geoHk: Child;
  geoKr: Child;
  rawHk: Child;
  rawKr: Child;
  proxy: Child | undefined;
  prefix: string;
  brokerPrefix: string;
  rawName: string;
}

interface Servers {
  hk: BenchRedis;
  kr: BenchRedis;
  amqpUrl: string;
  natsUrl: string;
}

function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.toString();
}

async function openCombo(kind: TransportKind, link: Link, servers: Servers, rttMs: number): Promise<Combo> {
  const id = `${process.pid}x${Date.now().toString(36)}`;
  const names = { prefix: `e2e:${id}:`, brokerPrefix: `gsbench.e2e.${id}`, rawName: `gsbench_e2eraw_${id}` };
  const spawn = (role: string) => forkChild(REGION_CHILD, `${kind} ${link} ${role}`);
  let proxy: Child | undefined;
  let proxyPort = 0;
  if (link === 'wan') {
    proxy = await spawn('proxy');
    const target =
      kind === 'redis-streams'
        ? servers.hk.port
        : Number(new URL(kind === 'amqp' ? servers.amqpUrl : servers.natsUrl).port);
    proxyPort = await proxy.call<number>('proxy', { targetPort: target, delayMs: rttMs / 2 });
  }
  const far = (url: string, proxied: boolean) => (link === 'wan' && proxied ? withPort(url, proxyPort) : url);
  // hk's process reaches the broker over the link (AMQP, NATS); kr's reaches hk's Redis over it (Redis Streams).
  const hkSide = {
    amqpUrl: far(servers.amqpUrl, kind === 'amqp'),
    natsUrl: far(servers.natsUrl, kind === 'nats'),
  };
  const krHkPort = link === 'wan' && kind === 'redis-streams' ? proxyPort : servers.hk.port;
  const [geoHk, geoKr, rawHk, rawKr] = await Promise.all([
    spawn('geosession hk'),
    spawn('geosession kr'),
    spawn('raw hk'),
    spawn('raw kr'),
  ]);
  const geo = (region: 'hk' | 'kr'): GeoInit => ({
    region,
    kind,
    prefix: names.prefix,
    redisPorts: { hk: region === 'hk' ? servers.hk.port : krHkPort, kr: servers.kr.port },
    amqpUrl: region === 'hk' ? hkSide.amqpUrl : servers.amqpUrl,
    natsUrl: region === 'hk' ? hkSide.natsUrl : servers.natsUrl,
    brokerPrefix: names.brokerPrefix,
  });
  await Promise.all([geoKr.call('geo', geo('kr')), geoHk.call('geo', geo('hk'))]);
  const raw = { kind, name: names.rawName };
  await rawHk.call('raw-publisher', { ...raw, redisPort: servers.hk.port, ...hkSide });
  await rawKr.call('raw-consumer', {
    ...raw,
    redisPort: krHkPort,
    amqpUrl: servers.amqpUrl,
    natsUrl: servers.natsUrl,
  });
  return { kind, link, geoHk, geoKr, rawHk, rawKr, proxy, ...names };
}

async function closeCombo(combo: Combo): Promise<void> {
  await Promise.all([combo.geoHk.stop(), combo.geoKr.stop(), combo.rawHk.stop(), combo.rawKr.stop()]);
  await combo.proxy?.stop();
}

let phases = 0;

async function measure(
  combo: Combo,
  pipeline: Pipeline,
  rate: number,
  opts: { warmupMs: number; ms: number },
  measurer: KeyspaceMeasurer,
): Promise<Row> {
  const writer = pipeline === 'geosession' ? combo.geoHk : combo.rawHk;
  const reader = pipeline === 'geosession' ? combo.geoKr : combo.rawKr;
  const collect = (phase: number, count: number, timeoutMs: number) =>
    pipeline === 'geosession'
      ? measurer.collect(phase, count, timeoutMs)
      : reader.call<number[]>('collect', { phase, count, timeoutMs });
  const warm = ++phases;
  const warmed = await writer.call<{ sent: number }>('write', { phase: warm, rate, ms: opts.warmupMs });
  await collect(warm, warmed.sent, 30_000);
  await Promise.all([writer.call('cpu-mark'), reader.call('cpu-mark')]);
  const phase = ++phases;
  loopDelay.reset();
  const { sent, failed } = await writer.call<{ sent: number; failed: number }>('write', {
    phase,
    rate,
    ms: opts.ms,
  });
  const lags = await collect(phase, sent, 30_000);
  const stallMs = loopDelay.max / 1e6;
  type Cpu = { cpuUs: number; errors: number; firstError?: string };
  const [hkCpu, krCpu] = await Promise.all([writer.call<Cpu>('cpu-read'), reader.call<Cpu>('cpu-read')]);
  for (const [side, cpu] of [
    ['hk', hkCpu],
    ['kr', krCpu],
  ] as const) {
    if (cpu.errors > 0)
      console.error(`  ${combo.kind} ${pipeline} ${side}: ${cpu.errors} errors, first: ${cpu.firstError}`);
  }
  return {
    kind: combo.kind,
    link: combo.link,
    rate,
    pipeline,
    lag: lagFigures(lags),
    sent,
    lost: sent - lags.length,
    failed,
    hkCpuUsPerWrite: hkCpu.cpuUs / Math.max(1, sent),
    krCpuUsPerWrite: krCpu.cpuUs / Math.max(1, sent),
    stallMs,
  };
}

const ms2 = (n: number) => (Number.isFinite(n) ? Number(n.toFixed(2)) : 'n/a');
const us1 = (n: number) => Number(n.toFixed(1));

function tableOf(rows: readonly Row[], link: Link, rttMs: number): Table {
  const title =
    link === 'loopback'
      ? 'Direct loopback: lag set() → key in kr (ms)'
      : `Over a ${rttMs} ms round trip: lag (ms)`;
  const lines = rows.filter((r) => r.link === link && r.pipeline === 'geosession');
  return {
    title,
    columns: [
      'transport',
      'writes/s',
      'p50',
      'p99',
      'max',
      'raw p50',
      'raw p99',
      'raw max',
      'hk CPU µs/write',
      'raw hk µs/write',
      'kr CPU µs/write',
      'lost',
      'stall ms',
    ],
    rows: lines.map((geo) => {
      const raw = rows.find(
        (r) => r.link === link && r.kind === geo.kind && r.rate === geo.rate && r.pipeline === 'raw client',
      );
      return [
        geo.kind,
        geo.rate,
        ms2(geo.lag.p50),
        ms2(geo.lag.p99),
        ms2(geo.lag.max),
        ms2(raw?.lag.p50 ?? Number.NaN),
        ms2(raw?.lag.p99 ?? Number.NaN),
        ms2(raw?.lag.max ?? Number.NaN),
        us1(geo.hkCpuUsPerWrite),
        us1(raw?.hkCpuUsPerWrite ?? Number.NaN),
        us1(geo.krCpuUsPerWrite),
        `${geo.lost + geo.failed}/${raw ? raw.lost + raw.failed : '-'}`,
        `${Math.round(geo.stallMs)}/${raw ? Math.round(raw.stallMs) : '-'}`,
      ];
    }),
  };
}

function checksOf(rows: readonly Row[], rttMs: number): Check[] {
  const checks: Check[] = [];
  for (const row of rows) {
    if (row.pipeline !== 'geosession' || row.rate !== 2000) continue;
    if (row.link === 'loopback') {
      const target = LOOPBACK_P99[row.kind];
      checks.push({
        name: `${row.kind} loopback p99 at 2,000/s`,
        actual: ms2(row.lag.p99) as number,
        target,
        direction: '<=',
        unit: ' ms',
      });
    } else {
      checks.push(
        {
          name: `${row.kind} ${rttMs} ms RTT p50 at 2,000/s`,
          actual: ms2(row.lag.p50) as number,
          target: 30,
          direction: '<=',
          unit: ' ms',
        },
        {
          name: `${row.kind} ${rttMs} ms RTT p99 at 2,000/s`,
          actual: ms2(row.lag.p99) as number,
          target: 60,
          direction: '<=',
          unit: ' ms',
        },
      );
    }
    if (row.lost + row.failed > 0) {
      checks.push({
        name: `${row.kind} ${row.link} writes lost or failed at 2,000/s`,
        actual: row.lost + row.failed,
        target: 0,
        direction: '<=',
      });
    }
  }
  return checks;
}

export const e2eSuite: Suite = {
  name: 'e2e',
  description:
    'end-to-end lag hk set() → key in kr Redis, per transport, rate and link, beside raw client floors',
  async run(options: SuiteOptions): Promise<Report> {
    const kinds = listFlag(options, 'transports', KINDS);
    const links = listFlag(options, 'links', LINKS);
    const rates = listFlag(options, 'rates', ['200', '1000', '2000', '5000']).map(Number);
    const seconds = numberFlag(options, 'seconds', 4);
    const warmupMs = numberFlag(options, 'warmup', 1000);
    const rttMs = numberFlag(options, 'rtt', 40);
    const chartFile = options.flags['chart'] ?? 'docs/img/e2e-lag.svg';
    const loadBefore = loadAverage();

    const [hk, kr] = await Promise.all([startBenchRedis(), startBenchRedis()]);
    loopDelay.enable();
    let nats: BenchNats | undefined;
    const rows: Row[] = [];
    const skews: number[] = [];
    const brokers: { kind: TransportKind; brokerPrefix: string; rawName: string; prefix: string }[] = [];
    const servers: Servers = {
      hk,
      kr,
      amqpUrl: options.flags['amqp-url'] ?? 'amqp://guest:guest@127.0.0.1:5672',
      natsUrl: options.flags['nats'] ?? '',
    };
    try {
      if (kinds.includes('nats') && !servers.natsUrl) {
        nats = await startBenchNats();
        servers.natsUrl = nats.url;
      }
      const measurer = new KeyspaceMeasurer(kr);
      await measurer.start();
      for (const kind of kinds) {
        for (const link of links) {
          options.log(`  ${kind}, ${link === 'wan' ? `${rttMs} ms round trip` : 'direct loopback'}...`);
          const combo = await openCombo(kind, link, servers, rttMs);
          brokers.push(combo);
          try {
            skews.push(...(await measureClockSkew([combo.geoHk, combo.rawHk, combo.rawKr])));
            // Connections, scripts and JIT warmed before the first rate.
            await measure(combo, 'geosession', 500, { warmupMs: 500, ms: 500 }, measurer);
            await measure(combo, 'raw client', 500, { warmupMs: 500, ms: 500 }, measurer);
            for (const [i, rate] of rates.entries()) {
              // Alternate which pipeline goes first, so drift on a shared machine hits both alike.
              const order: Pipeline[] =
                i % 2 === 0 ? ['geosession', 'raw client'] : ['raw client', 'geosession'];
              for (const pipeline of order) {
                const row = await measure(combo, pipeline, rate, { warmupMs, ms: seconds * 1000 }, measurer);
                rows.push(row);
                options.log(
                  `    ${rate}/s ${pipeline}: p50 ${ms2(row.lag.p50)} p99 ${ms2(row.lag.p99)} max ${ms2(row.lag.max)} ms, hk ${us1(row.hkCpuUsPerWrite)} µs/write, stall ${Math.round(row.stallMs)} ms${row.lost + row.failed > 0 ? `, ${row.lost} lost ${row.failed} failed` : ''}`,
                );
              }
            }
          } finally {
            await closeCombo(combo);
            await Promise.all([hk.client().flushall(), kr.client().flushall()]);
          }
        }
      }
    } finally {
      await cleanUpBrokers(servers.amqpUrl, options.flags['nats'], brokers).catch((e: unknown) =>
        options.log(`  broker clean-up failed: ${String(e)}`),
      );
      loopDelay.disable();
      await nats?.stop();
      await Promise.all([hk.stop(), kr.stop()]);
    }

    const linkName = (link: Link) => (link === 'loopback' ? 'direct loopback' : `${rttMs} ms round trip`);
    const points: LagPoint[] = rows.flatMap((r) =>
      (['p50', 'p99'] as const).map((stat) => ({
        transport: r.kind,
        link: linkName(r.link),
        rate: r.rate,
        pipeline: r.pipeline,
        stat,
        ms: r.lag[stat],
      })),
    );
    if (rates.includes(2000)) {
      for (const kind of kinds) {
        const at = { transport: kind, rate: 2000, pipeline: 'target' };
        if (links.includes('loopback')) {
          points.push({ ...at, link: linkName('loopback'), stat: 'p99', ms: LOOPBACK_P99[kind] });
        }
        if (links.includes('wan')) {
          points.push({ ...at, link: linkName('wan'), stat: 'p50', ms: 30 });
          points.push({ ...at, link: linkName('wan'), stat: 'p99', ms: 60 });
        }
      }
    }
    if (chartFile !== 'none' && rows.length > 0) {
      await writeLagChart(
        points,
        {
          text: 'End-to-end lag: set() in hk → key in kr Redis (solid) vs the raw client floor (dashed)',
          subtitle: `${seconds} s per rate, open loop; pale bars: targets at 2,000 writes/s; ${new Date().toISOString().slice(0, 10)}, load average ${loadAverage()}`,
        },
        chartFile,
      );
      options.log(`  wrote ${chartFile}`);
    }
    const maxSkew = skews.length > 0 ? Math.max(...skews.map(Math.abs)) : Number.NaN;
    return {
      tables: links.map((link) => tableOf(rows, link, rttMs)),
      checks: checksOf(rows, rttMs),
      notes: [
        `${seconds} s measured per rate after ${warmupMs} ms of warm-up at that rate; rate/100 writes every 10 ms (open loop).`,
        'geosession lag: set() call in hk (one process) → keyspace notification of the key in kr Redis (kr applies in another process).',
        'raw client lag: publish call in hk → receipt in kr: XADD → XREADGROUP (ioredis), confirm publish → consume (amqplib), js.publish(msgID) → pull consume (JetStream).',
        `The link: a delay proxy process, ${rttMs / 2} ms each way, between kr and hk Redis (Redis Streams) or between hk and the broker (AMQP, NATS).`,
        'CPU per write: user + system time of the writing (hk) and the applying (kr) process over the measured phase and its drain.',
        'stall ms: longest event-loop stall of the measuring process during the phase, geosession/raw; more than a few ms means the machine was busy.',
        `lost: writes not seen in kr within 30 s after the phase, geosession/raw. Clocks of the processes agreed within ${maxSkew.toFixed(3)} ms.`,
        `Load average before: ${loadBefore}; after: ${loadAverage()}.`,
      ],
      data: { rows, skews, rttMs, seconds, warmupMs },
    };
  },
};
