import asciichart from 'asciichart';
import type { Command } from 'commander';
import { type RegionStatus, readStatus } from '../../admin/status.js';
import type { RedisClient } from '../../types.js';
import { action, examples, positiveInt } from '../command.js';
import type { CliContext } from '../context.js';
import { ExitCode, type ExitCodeValue, UsageError } from '../errors.js';
import { table } from '../output.js';

/**
 * `geosession status`: every region's replication health read from Redis alone (the store processes'
 * status records and what Redis knows directly, see src/admin/status.ts). Exit 1 when an alert fires
 * or a region needs a resync. `--watch` refreshes in place and draws each region's lag over the last
 * minutes.
 */

interface StatusOptions {
  watch?: string | boolean;
  count?: number;
}

/** Registers `status` on `program`. */
export function register(program: Command): void {
  program
    .command('status')
    .description(
      'replication health of every region, read from Redis alone (exit 1 on an alert or a needed resync)',
    )
    .option('-w, --watch [seconds]', 'refresh every few seconds (default 2) and chart the lag per region')
    .option('-n, --count <n>', 'with --watch: stop after n refreshes', positiveInt('--count'))
    .addHelpText(
      'after',
      examples(['status', 'status --json', 'status --watch', 'status --watch 5 --count 10']),
    )
    .action(action<StatusOptions>(status));
}

function watchSeconds(watch: StatusOptions['watch']): number | undefined {
  if (watch === undefined || watch === false) return undefined;
  if (watch === true) return 2;
  const seconds = Number(watch);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(`--watch takes a number of seconds > 0, got "${watch}"`);
  }
  return seconds;
}

async function status(context: CliContext, _args: string[], options: StatusOptions): Promise<ExitCodeValue> {
  const every = watchSeconds(options.watch);
  const clients: Record<string, RedisClient> = {};
  for (const region of context.regions) clients[region.id] = region.client;
  const read = () =>
    readStatus(clients, { prefix: context.config.prefix, timeoutMs: context.config.timeoutMs });
  if (every === undefined) {
    const regions = await read();
    if (context.out.json) context.out.data({ regions });
    else for (const line of render(regions, false)) context.out.line(line);
    return exitCodeOf(regions);
  }
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  const tty = process.stdout.isTTY === true && !context.out.json;
  let code: ExitCodeValue = ExitCode.ok;
  for (let n = 0; n < limit && !context.signal.aborted; n++) {
    const regions = await read();
    code = exitCodeOf(regions);
    if (context.out.json) context.out.data({ at: new Date().toISOString(), regions });
    else {
      if (tty) process.stdout.write('\x1b[2J\x1b[H');
      else if (n > 0) context.out.line('');
      for (const line of render(regions, true)) context.out.line(line);
      context.out.line(`refreshing every ${every} s${Number.isFinite(limit) ? '' : ' (Ctrl-C to stop)'}`);
    }
    if (n + 1 >= limit) break;
    await sleep(every * 1000, context.signal);
  }
  return code;
}

/** 1 when any region has an alert firing, needs a resync, or could not be read; else 0. */
function exitCodeOf(regions: readonly RegionStatus[]): ExitCodeValue {
  const problem = regions.some(
    (r) => !r.reachable || r.alerts.length > 0 || r.peers.some((p) => p.needsResync !== undefined),
  );
  return problem ? ExitCode.problem : ExitCode.ok;
}

function ms(value: number | undefined): string {
  if (value === undefined) return '-';
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

function ago(at: number | undefined, now: number): string {
  if (at === undefined) return '-';
  return `${ms(Math.max(0, now - at))} ago`;
}

/** The report as text: per region a header line, a peer table, its alerts; with `chart`, the lag chart. */
function render(regions: readonly RegionStatus[], chart: boolean): string[] {
  const out: string[] = [];
  const now = Date.now();
  for (const r of regions) {
    if (!r.reachable) {
      out.push(`${r.region}: UNREACHABLE (${r.error ?? 'no answer'})`);
      out.push('');
      continue;
    }
    const resync = r.resyncing
      ? `  resync ${r.resyncing.state} from ${r.resyncing.from ?? '?'} ${r.resyncing.copied ?? 0}/${r.resyncing.total ?? '?'}`
      : '';
    const processes =
      r.processes.length === 0
        ? 'no process reports (is the app running?)'
        : `transport ${r.transport.name} ${r.transport.state}  ${r.processes.length} process(es)`;
    out.push(
      `${r.region}: ${processes}  outbox ${r.outbox ?? '-'}  dead letters ${r.deadLetters?.entries ?? '-'}${resync}`,
    );
    // lag, applied, last applied, rejected: the peer's changes here; backlog, consumers: the peer reading ours.
    const rows: string[][] = [
      [
        '  peer',
        'lag p50',
        'lag p99',
        'applied',
        'last applied',
        'backlog',
        'consumers',
        'rejected',
        'needs resync',
      ],
    ];
    for (const p of r.peers) {
      const rejected = Object.values(p.rejected).reduce((a, b) => a + b, 0);
      rows.push([
        `  ${p.region}`,
        ms(p.lag?.p50Ms),
        ms(p.lag?.p99Ms),
        String(p.received.applied ?? 0),
        ago(p.lastApplied?.at, now),
        p.backlog
          ? `${p.backlog.entries}${p.backlog.oldestAgeMs === undefined ? '' : ` (${ms(p.backlog.oldestAgeMs)})`}`
          : '-',
        p.consumers === undefined ? '-' : String(p.consumers),
        String(rejected),
        p.needsResync ? `YES (${p.needsResync.cause ?? 'unknown'})` : 'no',
      ]);
    }
    out.push(...table(rows));
    for (const a of r.alerts) out.push(`  ALERT ${a.rule}${a.peer ? ` ${a.peer}` : ''}: ${a.message}`);
    if (chart) out.push(...lagChart(r));
    out.push('');
  }
  return out;
}

/** The p99 lag per peer over the last minutes (history, then the current minute), as an ASCII chart. */
function lagChart(region: RegionStatus): string[] {
  const series: number[][] = [];
  const names: string[] = [];
  for (const p of region.peers) {
    const points = (p.history ?? []).map((h) => h.p99Ms);
    if (p.lag) points.push(p.lag.p99Ms);
    if (points.length === 0) continue;
    series.push(points.length === 1 ? [points[0] as number, points[0] as number] : points);
    names.push(p.region);
  }
  if (series.length === 0) return ['  (no lag measured in the last minutes)'];
  const colors = [asciichart.green, asciichart.cyan, asciichart.magenta, asciichart.yellow, asciichart.blue];
  const plot = asciichart.plot(series, {
    height: 6,
    colors: process.stdout.isTTY
      ? series.map((_, i) => colors[i % colors.length] as asciichart.Color)
      : undefined,
    format: (x: number) => `${Math.round(x)} ms`.padStart(9),
  });
  return [`  lag p99 per minute into ${region.region}, from: ${names.join(', ')}`, ...plot.split('\n')];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
