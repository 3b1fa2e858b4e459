import type { Command } from 'commander';
import { repairRegions } from '../../admin/repair.js';
import { action, examples, positiveInt } from '../command.js';
import type { CliContext } from '../context.js';
import { ExitCode } from '../errors.js';
import { formatTime, table } from '../output.js';
import {
  adminRegions,
  type CompareOptions,
  compareOptions,
  differenceJson,
  differenceRows,
  phaseBars,
} from './verify.js';

/**
 * `geosession repair`: verifies the regions, then fixes every difference by the applier's rules (a
 * tombstone wins, the newer version wins, expiry travels with the version), or with `--dry-run` lists
 * what it would do. Exit 1 when a difference could not be fixed.
 */

interface RepairCliOptions extends CompareOptions {
  dryRun?: boolean;
  tombstoneTtl?: number;
}

/** Registers `repair` on `program`. */
export function register(program: Command): void {
  compareOptions(
    program
      .command('repair')
      .description("fix every difference verify finds, by the applier's rules (a tombstone always wins)"),
  )
    .option('--dry-run', 'list what would be done, change nothing')
    .option(
      '--tombstone-ttl <s>',
      "the stores' tombstoneTtl in seconds (default 86400)",
      positiveInt('--tombstone-ttl'),
    )
    .addHelpText('after', examples(['repair --dry-run', 'repair --full', 'repair --json']))
    .action(action<RepairCliOptions>(repair, { minRegions: 2 }));
}

async function repair(context: CliContext, _args: string[], options: RepairCliOptions) {
  const bars = phaseBars(context, 'repair');
  const result = await repairRegions(adminRegions(context), {
    full: options.full === true,
    toleranceMs: options.tolerance,
    marginMs: options.margin,
    settleMs: options.settle,
    dryRun: options.dryRun === true,
    tombstoneTtl: options.tombstoneTtl,
    onProgress: bars.onProgress,
  }).finally(() => bars.stop());
  // An action the apply script did not carry out (or one no rule decides) leaves a difference.
  const failed = result.actions.filter(
    (a) =>
      a.op === 'skip' || (a.result !== undefined && a.result !== 0 && !(a.op === 'expire' && a.result === 2)),
  );
  if (context.out.json) {
    context.out.data({
      dryRun: result.dryRun,
      differences: result.differences.map((d) => differenceJson(context, d)),
      actions: result.actions.map((a) => ({ ...a, sid: context.out.id(a.sid) })),
      failed: failed.length,
    });
  } else {
    const verb = result.dryRun ? 'would make' : 'made';
    context.out.line(
      `repair: ${result.differences.length} difference(s); ${verb} ${result.actions.length} fix(es)`,
    );
    if (result.differences.length > 0)
      for (const line of differenceRows(context, result.differences)) context.out.line(line);
    if (result.actions.length > 0) {
      const rows = result.actions.map((a) => [
        a.op,
        context.out.id(a.sid),
        a.region,
        a.version ?? '-',
        formatTime(a.expiresAt),
        a.result === undefined ? '-' : String(a.result),
      ]);
      for (const line of table([['fix', 'session', 'region', 'version', 'expires', 'result'], ...rows])) {
        context.out.line(line);
      }
    }
  }
  return failed.length > 0 ? ExitCode.problem : ExitCode.ok;
}
