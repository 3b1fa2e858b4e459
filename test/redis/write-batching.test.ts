import type { Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createWriteBatcher } from '../../src/redis/write-batching.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('write batching', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('batch');
  const store = new GeoSessionStore({ region: 'hk', client, prefix });
  const socket = () => (client as unknown as { stream: Socket }).stream;

  afterAll(async () => {
    await store.clear();
    await store.close();
    client.disconnect();
  });

  it('corks the socket for the rest of the loop turn, past the tick, then uncorks it', async () => {
    await client.ping();
    const batch = createWriteBatcher(client);
    batch();
    expect(socket().writableCorked).toBe(1);
    batch(); // a second call in the same tick does not cork twice
    expect(socket().writableCorked).toBe(1);
    // Still corked after the tick, so that the commands of the next I/O callbacks (other requests whose
    // data arrived in the same turn) join the same write, as node-redis batches.
    await new Promise((resolve) => process.nextTick(resolve));
    expect(socket().writableCorked).toBe(1);
    batch(); // a later tick of the same turn joins the open batch
    expect(socket().writableCorked).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket().writableCorked).toBe(0);
  });

  it('does nothing while the client is not ready', () => {
    const idle = sharedRedis({ lazyConnect: true });
    const batch = createWriteBatcher(idle);
    expect(() => batch()).not.toThrow();
    idle.disconnect();
  });

  it('commands sent together in one tick all get their own replies, in order', async () => {
    const session = (n: number) => ({
      cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) },
      n,
    });
    await Promise.all(Array.from({ length: 200 }, (_, n) => store.set(`s${n}`, session(n))));
    const read = await Promise.all(Array.from({ length: 200 }, (_, n) => store.get(`s${n}`)));
    for (const [n, got] of read.entries()) expect(got).toMatchObject({ n });
    expect(socket().writableCorked).toBe(0);
  });
});
