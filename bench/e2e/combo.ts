/**
 * The machinery of the e2e suite (bench/e2e.ts): one transport on one link is a "combo" of four processes
 * (geosession hk and kr, raw publisher in hk, raw consumer in kr) plus a delay proxy process for the long
 * link; `measure` runs one phase (warm-up, then measured writes at a rate) on one pipeline of a combo.
 * Arrival of geosession's writes in kr is seen by {@link KeyspaceMeasurer} in the suite's own process.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { type Child, forkChild } from '../lib/child.js';
import { type LagFigures, lagFigures, wallNow } from '../lib/lag.js';
import type { BenchRedis } from '../lib/redis-server.js';
import type { TransportKind } from './raw-pipes.js';
import { type GeoInit, parseSid } from './region.js';

const REGION_CHILD = fileURLToPath(new URL('./region.ts', import.meta.url));
export const KINDS: readonly TransportKind[] = ['redis-streams', 'amqp', 'nats'];
export const LINKS = ['loopback', 'wan'] as const;
export type Link = (typeof LINKS)[number];
export type Pipeline = 'geosession' | 'raw client';

/** Loopback p99 targets at 2,000 writes/s (issue 9). */
export const LOOPBACK_P99: Record<TransportKind, number> = { 'redis-streams': 5, amqp: 10, nats: 10 };

/** One measured phase. */
export interface Row {
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

export const loopDelay = monitorEventLoopDelay({ resolution: 1 });

/** Timestamps each `set` of a key under `e2e:` in kr's Redis as it is notified, by phase. */
export class KeyspaceMeasurer {
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
export interface Combo {
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

export interface Servers {
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

export async function openCombo(
  kind: TransportKind,
  link: Link,
  servers: Servers,
  rttMs: number,
): Promise<Combo> {
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

export async function closeCombo(combo: Combo): Promise<void> {
  await Promise.all([combo.geoHk.stop(), combo.geoKr.stop(), combo.rawHk.stop(), combo.rawKr.stop()]);
  await combo.proxy?.stop();
}

let phases = 0;

export async function measure(
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
