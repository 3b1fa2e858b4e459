/**
 * A region's process that builds a store with one transport and closes it (store, then transport, then
 * its Redis clients) `GEOSESSION_DELAY_MS` after construction, then returns from `main` and must exit by
 * itself: any reader, timer, socket or pending promise geosession left behind keeps it alive. It never
 * calls `process.exit`. Prints `closed <ms> ready=<settled|pending>` once everything is closed, and
 * `AFTER CLOSE: <error>` on stderr for every error reported (or rejection unhandled) after that.
 *
 * Env: GEOSESSION_TRANSPORT (`redis-streams`, `amqp`, `nats`, `memory`), GEOSESSION_DELAY_MS,
 * GEOSESSION_REDIS_PORT (the local Redis), GEOSESSION_REMOTE_PORT (Redis Streams: the other region's
 * Redis), GEOSESSION_AMQP_URL, GEOSESSION_NATS_URL, GEOSESSION_PREFIX, GEOSESSION_NAME_PREFIX (AMQP).
 */
import { Redis } from 'ioredis';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { createMemoryTransport, GeoSessionStore } from '../../src/index.js';
import { createAmqpTransport } from '../../src/transports/amqp.js';
import { createNatsTransport } from '../../src/transports/nats.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

/** What was closed so far: an error from it afterwards is a failure. */
const closed = { store: false, transport: false };
const afterClose = (what: keyof typeof closed) => (error: unknown) => {
  if (closed[what]) process.stderr.write(`AFTER CLOSE: ${what} error: ${String(error)}\n`);
};
process.on('unhandledRejection', (error) => {
  process.stderr.write(`${closed.store ? 'AFTER CLOSE: ' : ''}unhandled rejection: ${String(error)}\n`);
});

function transportOf(kind: string, clients: Redis[]): ReplicationTransport {
  const regions = ['hk', 'kr'];
  switch (kind) {
    case 'redis-streams': {
      const remote = new Redis({ port: Number(env('GEOSESSION_REMOTE_PORT')), host: '127.0.0.1' });
      remote.on('error', () => {});
      clients.push(remote);
      return createRedisStreamsTransport({ regions: { hk: clients[0] as Redis, kr: remote } });
    }
    case 'amqp':
      // A connect timeout far past the parent's bound: a close that waits it out never exits in time.
      return createAmqpTransport({
        url: env('GEOSESSION_AMQP_URL'),
        regions,
        namePrefix: env('GEOSESSION_NAME_PREFIX'),
        connectTimeoutMs: 60_000,
      });
    case 'nats':
      return createNatsTransport({ servers: env('GEOSESSION_NATS_URL'), regions });
    case 'memory':
      return createMemoryTransport({ regions });
    default:
      throw new Error(`unknown transport ${kind}`);
  }
}

async function main(): Promise<void> {
  const client = new Redis({ port: Number(env('GEOSESSION_REDIS_PORT')), host: '127.0.0.1' });
  const clients = [client];
  const transport = transportOf(env('GEOSESSION_TRANSPORT'), clients);
  const store = new GeoSessionStore({
    region: 'hk',
    client,
    prefix: env('GEOSESSION_PREFIX'),
    transport,
    sealer: 'none',
    operationTimeoutMs: 1000,
  });
  store.on('error', afterClose('store'));
  transport.on('error', afterClose('transport'));
  let ready = 'pending';
  store.ready().then(
    () => {
      ready = 'settled';
    },
    () => {
      ready = 'settled';
    },
  );
  await new Promise((resolve) => setTimeout(resolve, Number(env('GEOSESSION_DELAY_MS'))));
  const started = Date.now();
  await store.close();
  closed.store = true;
  await transport.close();
  closed.transport = true;
  await new Promise((resolve) => setImmediate(resolve));
  process.stdout.write(`closed ${Date.now() - started} ready=${ready}\n`);
  for (const c of clients) c.disconnect();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
