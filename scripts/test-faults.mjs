#!/usr/bin/env node
// Runs the fault-injection suite: `npm run test:faults [-- --runs N] [--seed S] [--path P] [--transport amqp]`.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const env = { ...process.env };
const flags = {
  '--runs': 'FAULTS_RUNS',
  '--seed': 'FAULTS_SEED',
  '--path': 'FAULTS_PATH',
  '--transport': 'FAULTS_TRANSPORT',
};
for (let i = 0; i < args.length; i++) {
  const name = flags[args[i]];
  const value = args[i + 1];
  if (!name || value === undefined) {
    console.error(
      `test:faults: unknown argument ${args[i]} (use --runs N, --seed S, --path P, --transport redis-streams|amqp|nats)`,
    );
    process.exit(2);
  }
  env[name] = value;
  i++;
}
const run = spawnSync('npx', ['vitest', 'run', '--config', 'vitest.faults.config.ts'], {
  stdio: 'inherit',
  env,
});
process.exit(run.status ?? 1);
