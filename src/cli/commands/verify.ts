import type { Command } from 'commander';
import type { Difference } from '../../admin/difference.js';
import type { AdminRegion } from '../../admin/region-state.js';
import { type VerifyProgress, verifyRegions } from '../../admin/verify.js';
import { action, examples, positiveInt } from '../command.js';
import type { CliContext } from '../context.js';
import { ExitCode } from '../errors.js';
import { formatTime, table } from '../output.js';
import type { Progress } from '../progress.js';

/**
 * `geosession verify`: compares every configured region (by digests, or key by key with `--full`) and
 * lists every difference; exit 1 when there is one. Read-only.
 */

/** Options `verify` and `repair` share. */
export interface CompareOptions {
  full?: boolean;
  tolerance?: number;
  margin?: number;
  settle?: number;
}

/** Registers the comparison options on `command`. */
export function compareOptions(command: Command): Command {
  return command
    .option('--full', 'compare every session key by key (default: digests first)')
    .option(
      '--tolerance <ms>',
      'expiry difference that is not a difference (default 60000)',
      positiveInt('--tolerance'),
    )
    .option(
      '--margin <ms>',
      'sessions ending within this of now are not compared (default 60000)',
      positiveInt('--margin'),
    )
    .option(
      '--settle <ms>',
      'differences are read again after this and kept if they remain (default 1000)',
      positiveInt('--settle'),
    );
}

/** The regions of the run, as the admin calls take them. */
export function adminRegions(context: CliContext): AdminRegion[] {
  return context.regions.map((region) => ({
    id: region.id,
    client: region.client,
    prefix: context.config.prefix,
    ...(context.config.outboxShards > 1 ? { outboxShards: context.config.outboxShards } : {}),
  }));
}

/** A progress callback drawing one bar per phase. */
export function phaseBars(
  context: CliContext,
  name: string,
): { onProgress(p: VerifyProgress): void; stop(): void } {
  let phase = '';
  let bar: Progress | undefined;
  let shown = 0;
  return {
    onProgress(p) {
      if (p.phase !== phase) {
        bar?.stop();
        phase = p.phase;
        bar = context.progress(`${name} ${p.phase}`);
        bar.start(p.total ?? 0);
        shown = 0;
      }
      if (p.total !== undefined) bar?.setTotal(p.total);
      bar?.increment(p.done - shown);
      shown = p.done;
    },
    stop: () => bar?.stop(),
  };
}

/** Differences as text rows (ids masked unless --show-ids). */
export function differenceRows(context: CliContext, differences: readonly Difference[]): string[] {
  const ids = context.regions.map((r) => r.id);
  const rows = differences.map((d) => [
    d.kind,
    context.out.id(d.sid),
    d.behind.join(','),
    ...ids.map((id) => {
      const view = d.regions[id];
      if (!view || view.state === 'absent') return '-';
      return `${view.state} ${view.version ?? '-'} ${formatTime(view.expiresAt)}`;
    }),
  ]);
  return table([['kind', 'session', 'behind', ...ids], ...rows]);
}

/** A difference as `--json` prints it (the id masked unless --show-ids). */
export function differenceJson(context: CliContext, d: Difference): Difference {
  return { ...d, sid: context.out.id(d.sid) };
}

/** Registers `verify` on `program`. */
export function register(program: Command): void {
  compareOptions(
    program.command('verify').description('compare the regions and list every difference (exit 1 when any)'),
  )
    .addHelpText(
      'after',
      examples([
        '--region hk=redis://10.0.0.1:6379 --region kr=redis://10.1.0.1:6379 verify',
        'verify --full --tolerance 120000',
        'verify --json > differences.json',
      ]),
    )
    .action(action<CompareOptions>(verify, { minRegions: 2 }));
}

async function verify(context: CliContext, _args: string[], options: CompareOptions) {
  const bars = phaseBars(context, 'verify');
  const started = Date.now();
  const result = await verifyRegions(adminRegions(context), {
    full: options.full === true,
    toleranceMs: options.tolerance,
    marginMs: options.margin,
    settleMs: options.settle,
    onProgress: bars.onProgress,
  }).finally(() => bars.stop());
  const ms = Date.now() - started;
  if (context.out.json) {
    context.out.data({
      ...result,
      differences: result.differences.map((d) => differenceJson(context, d)),
      ms,
    });
  } else {
    const how =
      result.mode === 'digests'
        ? `digests: ${result.windows} windows, ${result.buckets} buckets differ`
        : 'full: key by key';
    const regions = context.regions.map((r) => r.id).join(', ');
    context.out.line(
      `verify ${regions}: ${result.differences.length} difference(s) (${how}, ${result.compared} sessions compared, ${ms} ms)`,
    );
    if (result.differences.length > 0)
      for (const line of differenceRows(context, result.differences)) context.out.line(line);
  }
  return result.clean ? ExitCode.ok : ExitCode.problem;
}
