/**
 * A second store process of a region, for the near cache tests: a GeoSessionStore (no near cache) on
 * the Redis at GEOSESSION_REDIS_PORT, database GEOSESSION_DB, prefix GEOSESSION_PREFIX, region hk, with
 * `userId: s => s.user`; with GEOSESSION_SHARDS, `outboxShards` that many (the sharded key layout); with
 * GEOSESSION_CLUSTER (a JSON list of `{ host, port }`), on that Redis Cluster instead (no `userId`, which
 * a Cluster refuses). It obeys IPC messages `{ id, op: 'set' | 'destroy' | 'logout', sid?, data?,
 * user? }` and answers `{ id, ok, error? }` once the store call has resolved; `{ op: 'exit' }` closes it.
 */
import { Cluster, Redis } from 'ioredis';
import { GeoSessionStore, type SessionData } from '../../src/index.js';

interface Command {
  id: number;
  op: 'set' | 'destroy' | 'logout' | 'exit';
  sid?: string;
  data?: SessionData;
  user?: string;
}

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const cluster = process.env.GEOSESSION_CLUSTER;
const shards = process.env.GEOSESSION_SHARDS;
const client =
  cluster === undefined
    ? new Redis({
        port: Number(env('GEOSESSION_REDIS_PORT')),
        host: '127.0.0.1',
        db: Number(env('GEOSESSION_DB')),
      })
    : // test/helpers/redis-cluster.ts's TEST_CLUSTER_OPTIONS (that module needs vitest, this is no test).
      new Cluster(JSON.parse(cluster) as { host: string; port: number }[], {
        slotsRefreshTimeout: 2000,
        retryDelayOnClusterDown: 200,
        retryDelayOnFailover: 200,
        retryDelayOnTryAgain: 100,
        maxRedirections: 32,
        redisOptions: { connectTimeout: 2000, maxRetriesPerRequest: 20 },
      });
client.on('error', () => {});
const store = new GeoSessionStore({
  region: 'hk',
  client,
  prefix: env('GEOSESSION_PREFIX'),
  ...(shards === undefined ? {} : { outboxShards: Number(shards) }),
  ...(cluster === undefined ? { userId: (s: SessionData) => s.user as string | undefined } : {}),
});
store.on('error', (error) => process.stderr.write(`store error: ${String(error)}\n`));

async function run(command: Command): Promise<void> {
  switch (command.op) {
    case 'set':
      return store.set(command.sid as string, command.data as SessionData);
    case 'destroy':
      return store.destroy(command.sid as string);
    case 'logout':
      await store.logoutEverywhere(command.user as string);
      return;
    case 'exit':
      await store.close();
      client.disconnect();
      return;
  }
}

process.on('message', (message: Command) => {
  run(message).then(
    () => {
      process.send?.({ id: message.id, ok: true });
      if (message.op === 'exit') process.disconnect?.();
    },
    (error: unknown) => process.send?.({ id: message.id, ok: false, error: String(error) }),
  );
});
process.send?.({ id: 0, ok: true });
