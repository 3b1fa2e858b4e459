/**
 * A pod that registers connections and then hangs until killed (test/registry/registry.test.ts kills it
 * with SIGKILL: no close, no cleanup). Prints `ready` once its connections are registered.
 *
 * Env: REGISTRY_PORT (the Redis), REGISTRY_PREFIX, REGISTRY_POD, REGISTRY_USER, REGISTRY_LEASE_MS.
 */
import { Redis } from 'ioredis';
import { createConnectionRegistry } from '../../src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const client = new Redis({ port: Number(env('REGISTRY_PORT')), host: '127.0.0.1' });
const registry = createConnectionRegistry({
  client,
  region: 'hk',
  pod: env('REGISTRY_POD'),
  prefix: env('REGISTRY_PREFIX'),
  leaseMs: Number(env('REGISTRY_LEASE_MS')),
});
registry.on('error', (error) => process.stderr.write(`${error.message}\n`));
await registry.register(env('REGISTRY_USER'), 'child-1');
await registry.register(env('REGISTRY_USER'), 'child-2');
process.stdout.write('ready\n');
// Keeps the process (and its lease renewals) alive until the test kills it.
setInterval(() => {}, 1_000);
