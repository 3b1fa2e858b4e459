/**
 * The replicator's housekeeping round (every 5 s: resync state, Redis clock, epoch, backlog) never
 * overlaps itself, and each of its Redis calls has a deadline (issue 14 item 6). With the local Redis
 * stalled (SIGSTOP) for 30 s and `operationTimeoutMs` at 8 s, one round takes 16 s (clock, then epoch,
 * each timing out): rounds that overlapped would have queued an epoch read (HGET) every 5 s, five or
 * more by the time Redis answers again; rounds that wait for each other queue at most two. Counted
 * with Redis's own command statistics, not timed. A private redis-server.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryTransport, GeoSessionStore } from '../../src/index.js';
import { generatePasetoKey, localSealer } from '../helpers/forgery.js';
import { eventually, hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

const STALL_MS = 30_000;

describe.skipIf(!hasRedis)('Replicator housekeeping', () => {
  let server: PrivateRedis | undefined;

  afterAll(async () => {
    server?.resume();
    await server?.stop();
  });

  it('rounds never overlap while the local Redis does not answer', async () => {
    server = await startRedis();
    const client = server.client();
    const admin = server.client();
    const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
    const store = new GeoSessionStore({
      region: 'hk',
      client,
      prefix: 'tend:',
      transport,
      sealer: localSealer([generatePasetoKey().key]),
      operationTimeoutMs: 8000,
      // The heartbeat reads the sequence counter (HGET) too: this test counts the epoch reads alone.
      heartbeatMs: 0,
    });
    store.on('error', () => {});
    await store.ready();
    await admin.config('RESETSTAT');

    server.pause();
    await new Promise((r) => setTimeout(r, STALL_MS));
    server.resume();
    // Everything queued while it was stalled runs now; then count the epoch reads.
    await eventually(async () => (await admin.ping()) === 'PONG', 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const stats = await admin.info('commandstats');
    const hget = Number(/cmdstat_hget:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    expect(hget).toBeGreaterThan(0); // a round did run
    expect(hget).toBeLessThanOrEqual(2);
    await store.close();
    await transport.close();
  }, 60_000);
});
