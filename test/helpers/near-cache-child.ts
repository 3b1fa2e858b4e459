/**
 * A second store process of a region, for the near cache tests: a GeoSessionStore (no near cache) on
 * the Redis at GEOSESSION_REDIS_PORT, database GEOSESSION_DB, prefix GEOSESSION_PREFIX, region hk, with
 * `userId: s => s.user`. It obeys IPC messages `{ id, op: 'set' | 'destroy' | 'logout', sid?, data?,
 * user? }` and answers `{ id, ok, error? }` once the store call has resolved; `{ op: 'exit' }` closes it.
 */
import { Redis } from 'ioredis';
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

const client = new Redis({
  port: Number(env('GEOSESSION_REDIS_PORT')),
  host: '127.0.0.1',
  db: Number(env('GEOSESSION_DB')),
});
client.on('error', () => {});
const store = new GeoSessionStore({
  region: 'hk',
  client,
  prefix: env('GEOSESSION_PREFIX'),
  userId: (s) => s.user as string | undefined,
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
