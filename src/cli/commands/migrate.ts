import type { Command } from 'commander';
import { type MigrateReport, migrateKeyspace } from '../../admin/migrate.js';
import { action, examples, positiveInt } from '../command.js';
import type { CliContext } from '../context.js';
import { ExitCode, UsageError } from '../errors.js';

/**
 * `geosession migrate`: upgrades the connect-redis keyspace of every configured region (or of those
 * named) in place, so every session carries geosession's metadata. Never logs anyone out; resumable.
 */

interface MigrateCommandOptions {
  ttl?: number;
  batch?: number;
  dryRun?: boolean;
  restart?: boolean;
}

/** Registers `migrate` on `program`. */
export function register(program: Command): void {
  program
    .command('migrate')
    .description(
      'give every connect-redis session geosession metadata, in place (values and expiries untouched; resumable)',
    )
    .argument('[regions...]', 'regions to migrate (default: every configured region)')
    .option(
      '--ttl <seconds>',
      "lifetime rule of sessions whose cookie has no originalMaxAge: the store's ttl (default 86400)",
      positiveInt('--ttl'),
    )
    .option('--batch <n>', 'keys per SCAN batch (default 1000)', positiveInt('--batch'))
    .option('--dry-run', 'count what would be migrated, write nothing')
    .option('--restart', 'start over instead of resuming an interrupted run')
    .addHelpText(
      'after',
      `${examples([
        '--region hk=redis://10.0.0.1:6379 migrate --dry-run',
        '--region hk=redis://10.0.0.1:6379 --prefix myapp: migrate --ttl 3600',
        'migrate hk --restart --json',
        '--outbox-shards 4 migrate',
      ])}
Each region's sessions get versions of that region. The values are not rewritten and no expiry
changes, so every user stays logged in; sessions with metadata already are skipped. Interrupted (Ctrl-C,
lost connection), it resumes where it stopped on the next run (the SCAN cursor is kept in Redis).
Nothing is replicated: bring the other regions up with \`geosession resync\`.
With --outbox-shards (stores with outboxShards above 1: the sharded key layout) each session is moved
into its shard's keys instead, same value and expiry, and its old key deleted.
`,
    )
    .action(
      action<MigrateCommandOptions>(migrate, {
        regions: (args, _options, config) => pick(args, config.regions),
      }),
    );
}

function pick(args: readonly string[], configured: ReadonlyMap<string, string>): string[] {
  for (const id of args) {
    if (!configured.has(id))
      throw new UsageError(`unknown region ${id}: configured are ${[...configured.keys()].join(', ')}`);
  }
  return args.length > 0 ? [...args] : [...configured.keys()];
}

async function migrate(context: CliContext, _args: string[], options: MigrateCommandOptions): Promise<0 | 1> {
  const reports: MigrateReport[] = [];
  for (const region of context.regions) {
    const bar = context.progress(`migrate ${region.id}`);
    let seen = 0;
    const report = await context.inRegion(region.id, () =>
      migrateKeyspace({
        client: region.client,
        region: region.id,
        prefix: context.config.prefix,
        ...(context.config.outboxShards > 1 ? { outboxShards: context.config.outboxShards } : {}),
        ttl: options.ttl,
        scanCount: options.batch,
        dryRun: options.dryRun,
        restart: options.restart,
        signal: context.signal,
        onProgress(progress) {
          if (seen === 0) bar.start(Math.max(progress.totalKeys, progress.visited));
          bar.setTotal(Math.max(progress.totalKeys, progress.visited));
          bar.increment(progress.visited - seen);
          seen = progress.visited;
        },
      }).finally(() => bar.stop()),
    );
    reports.push(report);
    if (!context.out.json) context.out.line(summary(report));
    if (!report.complete) break;
  }
  if (context.out.json) context.out.data({ regions: reports });
  const interrupted = reports.some((report) => !report.complete);
  if (interrupted)
    context.out.note('geosession: migrate interrupted; run it again to resume where it stopped');
  return interrupted ? ExitCode.problem : ExitCode.ok;
}

function summary(report: MigrateReport): string {
  const verb = report.dryRun ? 'would migrate' : 'migrated';
  const parts = [
    `${report.region}: ${verb} ${report.migrated} of ${report.scanned} sessions`,
    `${report.alreadyMigrated} had metadata already`,
  ];
  if (report.gone > 0) parts.push(`${report.gone} expired meanwhile`);
  if (report.unreadable > 0) parts.push(`${report.unreadable} not JSON sessions (skipped)`);
  return `${parts.join(', ')}${report.resumed ? ' (resumed an interrupted run)' : ''}${report.complete ? '' : ' (interrupted)'}`;
}
