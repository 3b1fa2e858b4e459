import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import {
  planRegionRemoval,
  type RedisRemovalStep,
  removeRegionFromRedis,
} from '../../admin/remove-region.js';
import { isValidRegion } from '../../validation/ids.js';
import { amqpRemoval, type BrokerRemoval, natsRemoval } from '../brokers.js';
import { action, examples } from '../command.js';
import type { CliContext } from '../context.js';
import { CliError, ExitCode, UsageError } from '../errors.js';

/**
 * `geosession region remove <id>`: the removal procedure of docs/replication.md ("Removing a region")
 * in one step, for the transport in use. Lists what it deletes, asks for confirmation on a terminal
 * (unless `--yes`), then deletes it. The regions configured (`--region`…) are the remaining ones.
 */

type Transport = 'redis-streams' | 'amqp' | 'nats';

interface RemoveOptions {
  transport?: string;
  amqpUrl?: string;
  amqpNamePrefix?: string;
  natsUrl?: string;
  natsStreamPrefix?: string;
  yes?: boolean;
  dryRun?: boolean;
}

/** Registers `region remove` on `program`. */
export function register(program: Command): void {
  const region = program
    .command('region')
    .description('manage the regions of a deployment')
    .addHelpText('after', examples(['region remove us --transport redis-streams --dry-run']));
  region
    .command('remove')
    .description(
      'delete what the remaining regions keep for a region that is gone for good (after it left every configuration)',
    )
    .argument('<id>', 'the region that is gone')
    .option('--transport <name>', 'redis-streams (default), amqp or nats')
    .option('--amqp-url <url>', 'RabbitMQ URL (with --transport amqp)')
    .option('--amqp-name-prefix <prefix>', 'the AMQP transport\'s namePrefix (default "geosession")')
    .option('--nats-url <servers>', 'NATS server(s), comma-separated (with --transport nats)')
    .option('--nats-stream-prefix <prefix>', 'the NATS transport\'s streamPrefix (default "GEOSESSION")')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--dry-run', 'list what would be deleted, delete nothing')
    .addHelpText(
      'after',
      `${examples([
        '--region hk=redis://10.0.0.1:6379 --region kr=redis://10.1.0.1:6379 region remove us --dry-run',
        '--region hk=redis://10.0.0.1:6379 --region kr=redis://10.1.0.1:6379 region remove us --yes',
        'region remove us --transport amqp --amqp-url amqp://user:pass@rabbit:5672 --yes',
        'region remove us --transport nats --nats-url nats://10.0.0.5:4222 --yes',
      ])}
Give every REMAINING region with --region (or GEOSESSION_REGIONS / --config); the gone one may be
left out. First take the region out of every remaining region's configuration and deploy: a process
still configured with it declares again what this deletes. What it deletes, per transport:
  redis-streams  on each remaining Redis: the gone region's consumer groups on its outbox and relay
  amqp           the gone region's queue
  nats           the consumers <gone>_from_* and *_from_<gone> on the channel's stream
and on each remaining Redis, the resync needs flagged with the gone region (resync:<gone>).
`,
    )
    .action(
      action<RemoveOptions>(remove, {
        check: (args, options) => {
          checkGone(args[0] ?? '');
          transportOf(options as RemoveOptions);
        },
        regions: (args, _options, config) => [...config.regions.keys()].filter((id) => id !== args[0]),
      }),
    );
}

function checkGone(gone: string): void {
  if (!isValidRegion(gone)) throw new UsageError(`"${gone}" is not a region id (1 to 32 of a-z, 0-9, "-")`);
}

function transportOf(options: RemoveOptions): Transport {
  const transport = options.transport ?? 'redis-streams';
  if (transport !== 'redis-streams' && transport !== 'amqp' && transport !== 'nats') {
    throw new UsageError(`--transport must be redis-streams, amqp or nats, got "${transport}"`);
  }
  if (transport === 'amqp' && !options.amqpUrl) throw new UsageError('--transport amqp needs --amqp-url');
  if (transport === 'nats' && !options.natsUrl) throw new UsageError('--transport nats needs --nats-url');
  return transport;
}

async function remove(context: CliContext, args: string[], options: RemoveOptions): Promise<0 | 1> {
  const gone = args[0] ?? '';
  checkGone(gone);
  const transport = transportOf(options);
  const remaining = context.regions;
  if (remaining.length === 0)
    throw new UsageError(`give the remaining regions with --region; only ${gone} was given`);
  const clients: Record<string, Redis> = Object.fromEntries(remaining.map((r) => [r.id, r.client]));
  const removal = {
    gone,
    regions: clients,
    prefix: context.config.prefix,
    redisStreams: transport === 'redis-streams',
  };
  const redisPlan = await inRegions(context, () => planRegionRemoval(removal));
  let broker: BrokerRemoval | undefined;
  try {
    if (transport === 'amqp') {
      broker = await amqpRemoval(
        options.amqpUrl ?? '',
        context.config.prefix,
        gone,
        options.amqpNamePrefix ?? 'geosession',
      );
    } else if (transport === 'nats') {
      broker = await natsRemoval(
        options.natsUrl ?? '',
        context.config.prefix,
        gone,
        options.natsStreamPrefix ?? 'GEOSESSION',
      );
    }
    const brokerPlan = broker?.steps ?? [];
    const found = redisPlan.filter((s) => s.exists).length + brokerPlan.filter((s) => s.exists).length;
    if (options.dryRun) {
      if (context.out.json)
        context.out.data({ gone, transport, dryRun: true, redis: redisPlan, broker: brokerPlan });
      else printPlan(context, gone, redisPlan, broker);
      return ExitCode.ok;
    }
    if (!context.out.json) printPlan(context, gone, redisPlan, broker);
    if (found > 0 && !options.yes && !(await confirm(context, gone))) {
      context.out.note('geosession: nothing removed');
      return ExitCode.problem;
    }
    const done = await inRegions(context, () => removeRegionFromRedis(removal));
    await broker?.execute();
    const removed = done.filter((s) => s.removed).length + brokerPlan.filter((s) => s.removed).length;
    if (context.out.json)
      context.out.data({ gone, transport, dryRun: false, redis: done, broker: brokerPlan });
    else context.out.line(`removed ${removed} item${removed === 1 ? '' : 's'} kept for ${gone}`);
    return ExitCode.ok;
  } finally {
    await broker?.close();
  }
}

/** Runs `fn`, which touches every region's Redis, naming the first region when one fails. */
async function inRegions<T>(context: CliContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    // Find which region fails now, to name it.
    for (const region of context.regions) await context.inRegion(region.id, () => region.client.ping());
    throw error;
  }
}

function printPlan(
  context: CliContext,
  gone: string,
  redis: readonly RedisRemovalStep[],
  broker: BrokerRemoval | undefined,
): void {
  context.out.line(`kept for region ${gone}:`);
  for (const step of redis) {
    context.out.line(`  ${step.exists ? 'delete ' : 'absent '} ${step.region}: ${step.command}`);
  }
  for (const step of broker?.steps ?? []) {
    const backlog = step.backlog === undefined ? '' : ` (${step.backlog} waiting)`;
    context.out.line(`  ${step.exists ? 'delete ' : 'absent '} ${step.where}: ${step.command}${backlog}`);
  }
}

async function confirm(context: CliContext, gone: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CliError(
      ExitCode.usage,
      'not on a terminal: pass --yes to confirm (or --dry-run to look first)',
    );
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`remove what is kept for region ${gone}? [y/N] `, {
      signal: context.signal,
    });
    return /^y(es)?$/i.test(answer.trim());
  } catch {
    return false;
  } finally {
    prompt.close();
  }
}
