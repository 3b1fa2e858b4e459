/**
 * Benchmark runner. `npm run bench` runs every suite; `npm run bench -- store` runs the named ones, and
 * `npm run bench -- users` the users suite and every `users-…` one (registry, invalidation); and
 * `npm run bench -- ops` the group of suites named `ops-…` (verify, resync, migrate, metrics overhead).
 *
 * Options: `--list` prints the suites; `--json=<file>` also writes the raw reports; `--strict` exits
 * with status 1 when a target is missed; other `--key=value` options go to the suites (see each suite).
 *
 * To add a suite, write a module exporting a {@link Suite} and add it to {@link SUITES}.
 */
import { writeFileSync } from 'node:fs';
import { amqpSuite } from './amqp.js';
import { clusterSuite } from './cluster.js';
import { e2eSuite } from './e2e.js';
import { httpSuite } from './http.js';
import { invalidationSuite } from './invalidation.js';
import { describeEnvironment } from './lib/env.js';
import { renderReport } from './lib/print.js';
import { passes, type Report, type Suite, type SuiteOptions } from './lib/suite.js';
import { natsSuite } from './nats.js';
import { nodeSuite } from './node.js';
import { opsMetricsSuite } from './ops-metrics.js';
import { opsMigrateSuite } from './ops-migrate.js';
import { opsResyncSuite } from './ops-resync.js';
import { opsVerifySuite } from './ops-verify.js';
import { pasetoSuite } from './paseto.js';
import { registrySuite } from './registry.js';
import { replicationSuite } from './replication.js';
import { storeSuite } from './store.js';
import { usersSuite } from './users.js';

export type { Report, Suite } from './lib/suite.js';

/** Every suite, in the order `npm run bench` runs them. */
export const SUITES: readonly Suite[] = [
  storeSuite,
  natsSuite,
  amqpSuite,
  replicationSuite,
  e2eSuite,
  httpSuite,
  pasetoSuite,
  opsMigrateSuite,
  opsMetricsSuite,
  opsResyncSuite,
  opsVerifySuite,
  nodeSuite,
  registrySuite,
  invalidationSuite,
  usersSuite,
  clusterSuite,
];

function parseArgs(argv: readonly string[]): { names: string[]; flags: Record<string, string> } {
  const names: string[] = [];
  const flags: Record<string, string> = {};
  for (const arg of argv) {
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq === -1) flags[arg.slice(2)] = 'true';
      else flags[arg.slice(2, eq)] = arg.slice(eq + 1);
    } else names.push(arg);
  }
  return { names, flags };
}

async function main(): Promise<void> {
  const { names, flags } = parseArgs(process.argv.slice(2));
  if (flags['list']) {
    for (const suite of SUITES) console.log(`${suite.name.padEnd(16)} ${suite.description}`);
    return;
  }
  // A group name selects every suite named `<group>-…`: `npm run bench -- ops` runs ops-verify,
  // ops-resync, ops-migrate and ops-metrics.
  const inGroup = (suite: Suite, name: string) => suite.name === name || suite.name.startsWith(`${name}-`);
  const unknown = names.filter((name) => !SUITES.some((suite) => inGroup(suite, name)));
  if (unknown.length > 0) {
    throw new Error(
      `unknown suite(s): ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}, and ops (every ops-…)`,
    );
  }
  const selected =
    names.length === 0 ? SUITES : SUITES.filter((suite) => names.some((name) => inGroup(suite, name)));

  const env = await describeEnvironment();
  console.log(
    [
      `node ${env.node} | ${env.platform}`,
      `CPUs: ${env.cpus} x ${env.cpuModel} | memory ${env.memoryGb} GB | load average ${env.loadAverage}`,
      `Redis ${env.redisVersion} at ${env.redisUrl}`,
      `started ${new Date().toISOString()}`,
    ].join('\n'),
  );

  const options: SuiteOptions = { flags, log: (line) => process.stderr.write(`${line}\n`) };
  const reports: Record<string, Report> = {};
  let failed = false;
  for (const suite of selected) {
    options.log(`running ${suite.name}...`);
    const report = await suite.run(options);
    reports[suite.name] = report;
    failed ||= report.checks.some((check) => !passes(check));
    console.log(`\n${renderReport(suite.name, report)}`);
  }
  if (flags['json']) {
    writeFileSync(flags['json'], `${JSON.stringify({ env, reports }, null, 2)}\n`);
    options.log(`wrote ${flags['json']}`);
  }
  if (failed && flags['strict']) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 2;
});
