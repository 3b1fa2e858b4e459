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
 * `--chart=<file>` (docs/img/e2e-lag.svg; `none` to skip), `--replot=<file>`: no measuring, report and
 * chart again from the `--json` output of an earlier run.
 */
import { readFileSync } from 'node:fs';
import {
  type Combo,
  closeCombo,
  KeyspaceMeasurer,
  KINDS,
  LINKS,
  type Link,
  LOOPBACK_P99,
  loopDelay,
  measure,
  openCombo,
  type Pipeline,
  type Row,
  type Servers,
} from './e2e/combo.js';
import { cleanUpBrokers, listFlag, loadAverage, measureClockSkew } from './e2e/support.js';
import { type LagPoint, writeLagChart } from './lib/chart.js';
import { type BenchNats, startBenchNats } from './lib/nats-server.js';
import { startBenchRedis } from './lib/redis-server.js';
import {
  type Check,
  numberFlag,
  type Report,
  type Suite,
  type SuiteOptions,
  type Table,
} from './lib/suite.js';

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

/** What a run measured: everything the report and the chart are made of (kept in `--json` output). */
interface RunData {
  rows: Row[];
  skews: number[];
  rttMs: number;
  seconds: number;
  warmupMs: number;
  loadBefore: string;
  loadAfter: string;
  /** ISO time the run started. */
  started: string;
}

async function measureAll(options: SuiteOptions): Promise<RunData> {
  const kinds = listFlag(options, 'transports', KINDS);
  const links = listFlag(options, 'links', LINKS);
  const rates = listFlag(options, 'rates', ['200', '1000', '2000', '5000']).map(Number);
  const seconds = numberFlag(options, 'seconds', 4);
  const warmupMs = numberFlag(options, 'warmup', 1000);
  const rttMs = numberFlag(options, 'rtt', 40);
  const started = new Date().toISOString();
  const loadBefore = loadAverage();

  const [hk, kr] = await Promise.all([startBenchRedis(), startBenchRedis()]);
  loopDelay.enable();
  let nats: BenchNats | undefined;
  const rows: Row[] = [];
  const skews: number[] = [];
  const brokers: Combo[] = [];
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
  return { rows, skews, rttMs, seconds, warmupMs, loadBefore, loadAfter: loadAverage(), started };
}

/** The chart's points: p50 and p99 of every row, and the targets at 2,000 writes/s as their own points. */
function chartPoints(data: RunData): LagPoint[] {
  const linkName = (link: Link) => (link === 'loopback' ? 'direct loopback' : `${data.rttMs} ms round trip`);
  const points: LagPoint[] = data.rows.flatMap((r) =>
    (['p50', 'p99'] as const).map((stat) => ({
      transport: r.kind,
      link: linkName(r.link),
      rate: r.rate,
      pipeline: r.pipeline,
      stat,
      ms: r.lag[stat],
    })),
  );
  const at2000 = data.rows.filter((r) => r.rate === 2000 && r.pipeline === 'geosession');
  for (const { kind, link } of at2000) {
    const at = { transport: kind, rate: 2000, pipeline: 'target', link: linkName(link) };
    if (link === 'loopback') points.push({ ...at, stat: 'p99', ms: LOOPBACK_P99[kind] });
    else points.push({ ...at, stat: 'p50', ms: 30 }, { ...at, stat: 'p99', ms: 60 });
  }
  return points;
}

function reportOf(data: RunData): Report {
  const links = LINKS.filter((link) => data.rows.some((r) => r.link === link));
  const maxSkew = data.skews.length > 0 ? Math.max(...data.skews.map(Math.abs)) : Number.NaN;
  return {
    tables: links.map((link) => tableOf(data.rows, link, data.rttMs)),
    checks: checksOf(data.rows, data.rttMs),
    notes: [
      `${data.seconds} s measured per rate after ${data.warmupMs} ms of warm-up at that rate; rate/100 writes every 10 ms (open loop).`,
      'geosession lag: set() call in hk (one process) → keyspace notification of the key in kr Redis (kr applies in another process).',
      'raw client lag: publish call in hk → receipt in kr: XADD → XREADGROUP (ioredis), confirm publish → consume (amqplib), js.publish(msgID) → pull consume (JetStream).',
      `The link: a delay proxy process, ${data.rttMs / 2} ms each way, between kr and hk Redis (Redis Streams) or between hk and the broker (AMQP, NATS).`,
      'CPU per write: user + system time of the writing (hk) and the applying (kr) process over the measured phase and its drain.',
      'stall ms: longest event-loop stall of the measuring process during the phase, geosession/raw; more than a few ms means the machine was busy.',
      `lost: writes not seen in kr within 30 s after the phase, geosession/raw. Clocks of the processes agreed within ${maxSkew.toFixed(3)} ms.`,
      `Started ${data.started}; load average before: ${data.loadBefore}; after: ${data.loadAfter}.`,
    ],
    data,
  };
}

export const e2eSuite: Suite = {
  name: 'e2e',
  description:
    'end-to-end lag hk set() → key in kr Redis, per transport, rate and link, beside raw client floors',
  async run(options: SuiteOptions): Promise<Report> {
    const chartFile = options.flags['chart'] ?? 'docs/img/e2e-lag.svg';
    const replot = options.flags['replot'];
    const data = replot
      ? (JSON.parse(readFileSync(replot, 'utf8')) as { reports: { e2e: { data: RunData } } }).reports.e2e.data
      : await measureAll(options);
    if (chartFile !== 'none' && data.rows.length > 0) {
      await writeLagChart(
        chartPoints(data),
        {
          text: 'End-to-end lag: set() in hk → key in kr Redis (solid) vs the raw client floor (dashed)',
          subtitle: `${data.seconds} s per rate, open loop · bars: targets at 2,000 writes/s · ${data.started.slice(0, 16).replace('T', ' ')} UTC, load ${data.loadBefore.split(' ')[0]}`,
        },
        chartFile,
      );
      options.log(`  wrote ${chartFile}`);
    }
    return reportOf(data);
  },
};
