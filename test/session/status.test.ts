/**
 * `store.status()` on a real replicating pair (two private redis-servers, Redis Streams), and the same
 * report read back from Redis alone with `readStatus()` (src/admin/status.ts), which must agree with
 * the app's view in what both have.
 */
import { describe, expect, it } from 'vitest';
import { readStatus } from '../../src/admin/status.js';
import { GeoSessionStore } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('store.status()', () => {
  // Regions run without heartbeats (heartbeatMs: 0): the tests count the changes whose lag was measured.
  const pair = usePrivateRedisPair();

  it('reports this region, the transport and each peer (lag, last applied, backlog, consumers, counts)', async () => {
    const prefix = uniquePrefix('status');
    const hk = pair.streamsRegion('hk', prefix, {}, { statusIntervalMs: 200, heartbeatMs: 0 });
    const kr = pair.streamsRegion('kr', prefix, {}, { statusIntervalMs: 200, heartbeatMs: 0 });
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    for (let i = 0; i < 20; i++)
      await hk.store.set(hk.store.genid(), { cookie: { originalMaxAge: 60_000 }, n: i });
    await eventually(
      async () => (await kr.store.status()).peers.find((p) => p.region === 'hk')?.lag?.count === 20,
    );

    const report = await kr.store.status();
    expect(report.region).toBe('kr');
    expect(report.transport).toEqual({ name: 'redis-streams', state: 'ready' });
    expect(report.resyncing).toBeUndefined();
    expect(report.alerts).toEqual([]);
    expect(report.deadLetters).toEqual({ entries: 0, added: 0 });
    const fromHk = report.peers.find((p) => p.region === 'hk');
    expect(fromHk).toBeDefined();
    if (!fromHk) return;
    expect(fromHk.lag?.count).toBe(20);
    expect(fromHk.lag?.p50Ms).toBeGreaterThanOrEqual(0);
    expect(fromHk.lag?.p99Ms).toBeGreaterThanOrEqual(fromHk.lag?.p50Ms ?? 0);
    expect(fromHk.lag?.maxMs).toBeGreaterThanOrEqual(fromHk.lag?.p99Ms ?? 0);
    expect(fromHk.lastApplied?.at).toBeGreaterThan(Date.now() - 60_000);
    expect(fromHk.received.applied).toBe(20);
    expect(fromHk.rejected).toEqual({});
    expect(fromHk.needsResync).toBeUndefined();
    expect(fromHk.alerts).toEqual([]);

    // hk's side: kr reads hk's outbox through its consumer group, and has consumed everything.
    await eventually(async () => {
      const kr = (await hk.store.status()).peers.find((p) => p.region === 'kr');
      return (kr?.consumers ?? 0) > 0;
    });
    const hkReport = await hk.store.status();
    const toKr = hkReport.peers.find((p) => p.region === 'kr');
    expect(toKr?.lag).toBeUndefined(); // kr wrote nothing
    expect(toKr?.consumers).toBeGreaterThan(0);
  }, 30_000);

  it('reads the same from Redis alone, with the processes that wrote it', async () => {
    const prefix = uniquePrefix('status-redis');
    const hk = pair.streamsRegion('hk', prefix, {}, { statusIntervalMs: 200, heartbeatMs: 0 });
    const kr = pair.streamsRegion('kr', prefix, {}, { statusIntervalMs: 200, heartbeatMs: 0 });
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    for (let i = 0; i < 10; i++)
      await hk.store.set(hk.store.genid(), { cookie: { originalMaxAge: 60_000 }, n: i });
    await eventually(
      async () => (await kr.store.status()).peers.find((p) => p.region === 'hk')?.lag?.count === 10,
    );

    const admin = { hk: pair.hk.client(), kr: pair.kr.client() };
    let regions = await readStatus(admin, { prefix });
    await eventually(async () => {
      regions = await readStatus(admin, { prefix });
      const kr = regions.find((r) => r.region === 'kr');
      return kr?.peers.find((p) => p.region === 'hk')?.lag?.count === 10;
    });
    const app = await kr.store.status();
    const alone = regions.find((r) => r.region === 'kr');
    expect(alone?.reachable).toBe(true);
    expect(alone?.processes).toHaveLength(1);
    expect(alone?.transport).toEqual(app.transport);
    expect(alone?.deadLetters).toEqual(app.deadLetters);
    expect(alone?.alerts).toEqual(app.alerts);
    const appPeer = app.peers.find((p) => p.region === 'hk');
    const alonePeer = alone?.peers.find((p) => p.region === 'hk');
    expect(alonePeer?.lag).toEqual(appPeer?.lag);
    expect(alonePeer?.lastApplied).toEqual(appPeer?.lastApplied);
    expect(alonePeer?.received).toEqual(appPeer?.received);
    expect(alonePeer?.needsResync).toEqual(appPeer?.needsResync);

    // hk's outbox as Redis tells it: kr's group has consumed everything.
    const hkAlone = regions.find((r) => r.region === 'hk');
    const krOnHk = hkAlone?.peers.find((p) => p.region === 'kr');
    expect(krOnHk?.consumers).toBeGreaterThan(0);
    expect(krOnHk?.backlog?.entries).toBe(0);
    expect(hkAlone?.outbox).toBeGreaterThanOrEqual(0);

    // A region whose processes all stopped has no fresh record left.
    await kr.store.close();
    await eventually(async () => {
      const again = await readStatus(admin, { prefix });
      return again.find((r) => r.region === 'kr')?.processes.length === 0;
    }, 5000);
  }, 30_000);

  it('reports a resync in progress from the resync state hash, read defensively', async () => {
    const prefix = uniquePrefix('status-resync');
    const kr = pair.streamsRegion('kr', prefix, {}, { statusIntervalMs: 200, heartbeatMs: 0 });
    await kr.store.ready();
    const key = createKeySpace(prefix).internal('resync', 'kr');
    await kr.clients.kr.hset(key, {
      state: 'resyncing',
      from: 'hk',
      startedAt: '1700000000000',
      copied: '120',
      total: 'lots',
    });
    expect((await kr.store.status()).resyncing).toEqual({
      state: 'resyncing',
      from: 'hk',
      startedAt: 1_700_000_000_000,
      copied: 120,
      total: undefined,
    });
    const [alone] = await readStatus({ kr: pair.kr.client() }, { prefix });
    expect(alone?.resyncing).toEqual((await kr.store.status()).resyncing);
    await kr.clients.kr.hset(key, 'state', 'half-done');
    expect((await kr.store.status()).resyncing).toBeUndefined();
  });

  it('a store without a transport reports its region alone', async () => {
    const client = pair.hk.client();
    const store = new GeoSessionStore({ region: 'hk', client, prefix: uniquePrefix('status-single') });
    pair.opened.push(store);
    const report = await store.status();
    expect(report).toMatchObject({
      region: 'hk',
      transport: { name: 'none', state: 'none' },
      peers: [],
      alerts: [],
    });
  });
});
