import { Command, Option } from 'commander';
import { positiveInt } from './command.js';
import { register as registerInspect } from './commands/inspect.js';
import { register as registerMigrate } from './commands/migrate.js';
import { register as registerRegionRemove } from './commands/region-remove.js';
import { register as registerRepair } from './commands/repair.js';
import { register as registerResync } from './commands/resync.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerTail } from './commands/tail.js';
import { register as registerVerify } from './commands/verify.js';
import { DEFAULT_TIMEOUT_MS, REGIONS_ENV } from './config.js';

/** Help text after the program's own: configuration and exit codes. */
const FOOTER = `
Regions (first match wins):
  --region hk=redis://10.0.0.1:6379 --region kr=redis://10.1.0.1:6379
  ${REGIONS_ENV}="hk=redis://10.0.0.1:6379,kr=redis://10.1.0.1:6379"
  --config geosession.json   { "prefix": "sess:", "regions": { "hk": "redis://…" } }

Exit codes:
  0  ok
  1  the command found a problem (differences, unhealthy, not found)
  2  usage or configuration error
  3  a region could not be reached

Set GEOSESSION_DEBUG=1 to print stack traces.

Examples:
  $ geosession --region hk=redis://127.0.0.1:6379 --region kr=redis://127.0.0.1:6380 tail
  $ GEOSESSION_REGIONS=hk=redis://127.0.0.1:6379 geosession inspect hk.AbCdEf... --json
`;

/** The `geosession` program with its global options and every command. */
export function createProgram(): Command {
  const program = new Command('geosession')
    .description('Operate a geosession deployment: every region read from its Redis, no app needed.')
    .addOption(
      new Option('-r, --region <id=url>', 'a region and its Redis URL (repeatable)').argParser(
        (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
      ),
    )
    .option('-c, --config <file>', 'a JSON file: { "prefix": "sess:", "regions": { "hk": "redis://…" } }')
    .option('-p, --prefix <prefix>', 'the store\'s key prefix (default "sess:", the store\'s default)')
    .option(
      '--outbox-shards <n>',
      "the stores' outboxShards when above 1 (the sharded key layout; default 1)",
      positiveInt('--outbox-shards'),
    )
    .option('--json', 'machine output on stdout (JSON; one object per line for streams)')
    .option('--show-ids', 'print session ids whole (masked by default)')
    .option('--timeout <ms>', `connect and command timeout in ms (default ${DEFAULT_TIMEOUT_MS})`)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .addHelpText('after', FOOTER);
  registerInspect(program);
  registerMigrate(program);
  registerRegionRemove(program);
  registerRepair(program);
  registerResync(program);
  registerStatus(program);
  registerTail(program);
  registerVerify(program);
  return program;
}
