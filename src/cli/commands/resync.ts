import type { Command } from 'commander';
import { type ResyncProgress, type ResyncResult, resyncRegion } from '../../admin/resync.js';
import { ConfigError, ResyncError } from '../../errors.js';
import { classifyFailure } from '../../failures/reply-errors.js';
import { parseNeeds } from '../../replication/resync-state.js';
import { action, examples, positiveInt } from '../command.js';
import type { CliContext } from '../context.js';
import {
  CliError,
  ExitCode,
  type ExitCodeValue,
  messageOf,
  UnreachableError,
  UsageError,
} from '../errors.js';

/**
 * `geosession resync <region> --from <region>`: brings a new or emptied region up from another under
 * live traffic (src/admin/resync.ts), with a progress bar; resumes an interrupted one unless
 * `--restart`. Exit 0 when done with nothing refused, 1 when it stopped (run it again to resume) or
 * sessions were refused (versions too far ahead, malformed metadata), 2 for bad arguments, 3 when a
 * region cannot be reached.
 */

interface ResyncCliOptions {
  from?: string;
  bothWays?: boolean;
  batch?: number;
  restart?: boolean;
  retries?: number;
  maxClockSkew?: number;
  tombstoneTtl?: number;
}

/** What `resync --json` prints (one document). */
export interface ResyncReport extends ResyncResult {
  /** Sessions copied per second. */
  readonly rate: number;
  /** Needs for a resync still recorded after it, per region (target and source). */
  readonly remaining: Record<string, string[]>;
}

/** Registers `resync` on `program`. */
export function register(program: Command): void {
  program
    .command('resync')
    .description(
      'bring a new or emptied region up from another under live traffic (sessions, versions, tombstones), then clear its needsResync',
    )
    .argument('<region>', 'the region to bring up')
    .requiredOption('-f, --from <region>', 'the region to copy from')
    .option('--both-ways', 'also copy the region into --from, so both end equal (clears needs on both sides)')
    .option('--batch <n>', 'keys per SCAN page (default 1000)', positiveInt('--batch'))
    .option('--restart', 'start over instead of resuming an interrupted resync')
    .option(
      '--retries <n>',
      'times to go on after a transient Redis failure (lost connection, OOM, LOADING...; default 5)',
      positiveInt('--retries', true),
    )
    .option(
      '--max-clock-skew <ms>',
      "the stores' maxClockSkewMs (default 60000)",
      positiveInt('--max-clock-skew'),
    )
    .option(
      '--tombstone-ttl <s>',
      "the stores' tombstoneTtl in seconds (default 86400)",
      positiveInt('--tombstone-ttl'),
    )
    .addHelpText(
      'after',
      examples([
        '--region hk=redis://10.0.0.1:6379 --region kr=redis://10.1.0.1:6379 resync kr --from hk',
        'resync kr --from hk --both-ways --json',
        'resync kr --from hk --restart --batch 5000',
      ]),
    )
    .action(
      action<ResyncCliOptions>(resync, {
        regions: (args, options) => [args[0] ?? '', String(options.from ?? '')],
        // Before any region is reached: a usage error is exit 2 even when a region is down.
        check: (args, options) => {
          if (args[0] === options.from) {
            throw new UsageError('resync: --from must name another region than the one resynced');
          }
        },
        minRegions: 2,
      }),
    );
}

async function resync(
  context: CliContext,
  args: string[],
  options: ResyncCliOptions,
): Promise<ExitCodeValue> {
  const targetId = args[0] ?? '';
  const sourceId = options.from ?? '';
  const target = context.region(targetId);
  const source = context.region(sourceId);
  const bar = context.progress(`resync ${targetId} from ${sourceId}`);
  let shown = 0;
  let started = false;
  const onProgress = (p: ResyncProgress) => {
    if (!started) {
      bar.start(Math.max(p.total, p.copied));
      started = true;
    }
    bar.setTotal(Math.max(p.total, p.copied));
    bar.increment(p.copied - shown);
    shown = p.copied;
  };
  context.out.note(`resyncing ${targetId} from ${sourceId}${options.bothWays ? ' (both ways)' : ''}`);
  const began = Date.now();
  let result: ResyncResult;
  try {
    result = await resyncRegion({
      target: { id: targetId, client: target.client },
      source: { id: sourceId, client: source.client },
      prefix: context.config.prefix,
      batchSize: options.batch,
      maxClockSkewMs: options.maxClockSkew,
      tombstoneTtl: options.tombstoneTtl,
      bothWays: options.bothWays === true,
      resume: options.restart !== true,
      retries: options.retries,
      signal: context.signal,
      onProgress,
      onRetry: ({ attempt, delayMs, error }) =>
        context.out.note(
          `resync stopped (${error instanceof Error ? error.message : String(error)}); going on where it stopped in ${(delayMs / 1000).toFixed(1)} s (retry ${attempt})`,
        ),
    });
  } catch (error) {
    throw failure(error, { target: target.client, source: source.client }, { targetId, sourceId });
  } finally {
    bar.stop();
  }
  const remaining = {
    [targetId]: await needsOf(context, targetId),
    [sourceId]: await needsOf(context, sourceId),
  };
  const seconds = Math.max(0.001, (Date.now() - began) / 1000);
  const report: ResyncReport = { ...result, rate: Math.round(result.copied / seconds), remaining };
  const refused = result.counts.skewed + result.counts.malformed;
  if (context.out.json) context.out.data(report);
  else printText(context, report);
  if (!options.bothWays && remaining[sourceId]?.includes(targetId)) {
    context.out.note(
      `${sourceId} still needs a resync with ${targetId}: run \`geosession resync ${sourceId} --from ${targetId}\` or this one with --both-ways`,
    );
  }
  return refused > 0 ? ExitCode.problem : ExitCode.ok;
}

function printText(context: CliContext, r: ResyncReport): void {
  const c = r.counts;
  context.out.line(
    `resync of ${r.target} from ${r.source}${r.resumed ? ' (resumed)' : ''}${r.retries > 0 ? ` after ${r.retries} transient failure${r.retries === 1 ? '' : 's'}` : ''}: done in ${((r.finishedAt - r.startedAt) / 1000).toFixed(1)} s, ${r.copied} sessions (${r.rate}/s), ${r.keys} keys walked`,
  );
  context.out.line(
    `sessions: ${c.changed} changed, ${c.unchanged} already there, ${c.nothing} expired or gone, ${c.absorbed} kept logged out by a tombstone`,
  );
  if (c.skewed + c.malformed > 0) {
    context.out.line(`refused: ${c.skewed} with a version too far ahead, ${c.malformed} malformed`);
  }
  const cleared = [
    ...r.cleared.target.map((need) => `${r.target}→${need}`),
    ...r.cleared.source.map((need) => `${r.source}→${need}`),
  ];
  context.out.line(`needsResync cleared: ${cleared.length > 0 ? cleared.join(', ') : 'none'}`);
  for (const [region, needs] of Object.entries(r.remaining)) {
    if (needs.length > 0) context.out.line(`${region} still needs a resync with: ${needs.join(', ')}`);
  }
}

async function needsOf(context: CliContext, id: string): Promise<string[]> {
  const handle = context.region(id);
  const fields = await context.inRegion(id, () => handle.client.hgetall(handle.keys.internal('state', id)));
  return parseNeeds(fields).map(([region]) => region);
}

/** The CLI error for a failed resync: usage (2), a region unreachable (3), or it stopped (1). */
function failure(
  error: unknown,
  clients: { target: { status: string }; source: { status: string } },
  ids: { targetId: string; sourceId: string },
): CliError {
  if (error instanceof ConfigError) return new UsageError(error.message, { cause: error });
  const cause = error instanceof ResyncError && error.cause !== undefined ? error.cause : error;
  const { code } = classifyFailure(cause);
  if (code === 'CONNECTION' || code === 'TIMEOUT') {
    const down = clients.source.status !== 'ready' ? ids.sourceId : ids.targetId;
    return new UnreachableError(
      down,
      `Redis stopped answering during the resync (run it again to resume): ${messageOf(cause)}`,
      {
        cause: error,
      },
    );
  }
  const hint =
    error instanceof ResyncError && /another resync/.test(error.message) ? '' : ' (run it again to resume)';
  return new CliError(ExitCode.problem, `${messageOf(error)}${hint}`, { cause: error });
}
