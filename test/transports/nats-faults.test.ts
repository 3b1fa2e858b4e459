import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { SessionData } from 'express-session';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { ReplicationTransport, Subscription } from '../../src/contracts/transport.js';
import { TransportError } from '../../src/errors.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { createNatsTransport } from '../../src/transports/nats.js';
import { type PrivateNats, startNats } from '../helpers/nats-server.js';
import { eventually, hasRedis, type PrivateRedis, serviceAvailable, startRedis } from '../helpers/servers.js';
import { sampleEvent } from './conformance.js';

// Fault tests run on a private nats-server (killed, paused and restarted here), never the shared one.
const hasNats = await serviceAvailable('nats', 4222);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Publishes until the broker confirms (the relay does the same from the outbox). */
async function publishUntilConfirmed(t: ReplicationTransport, channel: string, events: Envelope[]) {
  for (let attempt = 0; ; attempt++) {
    try {
      await t.publish(channel, events);
      return;
    } catch (error) {
      if (attempt > 60) throw error;
      await sleep(250);
    }
  }
}

describe.skipIf(!hasNats)('nats transport faults', () => {
  let nats: PrivateNats;
  const open: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    nats = await startNats();
  });
  afterEach(async () => {
    await nats.restart().catch(() => {}); // every test starts with the server up
    for (const o of open.splice(0).reverse()) await o.close().catch(() => {});
  });
  afterAll(async () => {
    await nats?.stop();
  });

  function transport(extra: Partial<Parameters<typeof createNatsTransport>[0]> = {}) {
    const t = createNatsTransport({
      servers: nats.url,
      regions: ['hk', 'kr', 'us'],
      publishTimeoutMs: 1500,
      idleHeartbeatMs: 500,
      reconnectTimeWaitMs: 100,
      retryDelayMs: 100,
      ackWaitMs: 5000,
      ...extra,
    });
    t.on('error', () => {}); // expected while the server is away
    open.push(t);
    return t;
  }

  async function collect(t: ReplicationTransport, channel: string, region: string) {
    const got = new Set<string>();
    const sub: Subscription = await t.subscribe({
      channel,
      region,
      handler: async (events) => {
        for (const e of events) got.add(e.id);
      },
    });
    open.push(sub);
    return got;
  }

  it('reconnects after the server restarts; the consumer resumes and later events arrive', async () => {
    const hk = transport();
    const kr = transport();
    const states: string[] = [];
    kr.on('state', (s) => states.push(s));
    const got = await collect(kr, 'restart:', 'kr');
    const before = Array.from({ length: 20 }, () => sampleEvent('hk'));
    await hk.publish('restart:', before);
    await eventually(() => before.every((e) => got.has(e.id)));

    await nats.kill();
    await eventually(() => kr.state === 'degraded', 10_000);
    await sleep(1500); // several heartbeats and reconnect attempts go by
    await nats.restart();

    const after = Array.from({ length: 20 }, () => sampleEvent('hk'));
    await publishUntilConfirmed(hk, 'restart:', after);
    await eventually(() => after.every((e) => got.has(e.id)), 30_000);
    await eventually(() => kr.state === 'ready', 10_000);
    expect(states).toContain('degraded');
  });

  it('recreates a consumer that stalled (server paused, heartbeats missed) and resumes', async () => {
    const hk = transport();
    const kr = transport();
    const errors: Error[] = [];
    kr.on('error', (e) => errors.push(e));
    const got = await collect(kr, 'stall:', 'kr');
    const first = sampleEvent('hk');
    await hk.publish('stall:', [first]);
    await eventually(() => got.has(first.id));

    nats.pause();
    await eventually(() => errors.some((e) => /stalled/.test(e.message)), 20_000);
    nats.resume();

    const later = Array.from({ length: 10 }, () => sampleEvent('hk'));
    await publishUntilConfirmed(hk, 'stall:', later);
    await eventually(() => later.every((e) => got.has(e.id)), 30_000);
  });

  it('recreates a consumer deleted under it (nats.js alone keeps pulling from nothing)', async () => {
    const hk = transport();
    const kr = transport();
    const errors: Error[] = [];
    kr.on('error', (e) => errors.push(e));
    const got = await collect(kr, 'deleted:', 'kr');
    const first = sampleEvent('hk');
    await hk.publish('deleted:', [first]);
    await eventually(() => got.has(first.id));

    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      expect(await jsm.consumers.delete('GEOSESSION_deleted_3a', 'kr_from_hk')).toBe(true);
    } finally {
      await nc.close();
    }
    await eventually(() => errors.some((e) => /stalled/.test(e.message)), 20_000);
    const later = Array.from({ length: 10 }, () => sampleEvent('hk'));
    await publishUntilConfirmed(hk, 'deleted:', later);
    await eventually(() => later.every((e) => got.has(e.id)), 30_000);
  });

  it('a publish while the server is down rejects with a TransportError instead of hanging', async () => {
    const hk = transport({ publishTimeoutMs: 1000 });
    await hk.publish('down:', [sampleEvent('hk')]);
    await nats.kill();
    const outcome = await Promise.race([
      hk.publish('down:', [sampleEvent('hk'), sampleEvent('hk')]).then(
        () => 'resolved',
        (error: unknown) => error,
      ),
      sleep(20_000).then(() => 'still pending'),
    ]);
    expect(outcome).toBeInstanceOf(TransportError);
    // A transport that never connected rejects the same way.
    const never = transport({ publishTimeoutMs: 1000 });
    await expect(never.publish('down:', [sampleEvent('hk')])).rejects.toBeInstanceOf(TransportError);
  });

  describe.skipIf(!hasRedis)('two stores', () => {
    let redisHK: PrivateRedis;
    let redisKR: PrivateRedis;
    beforeAll(async () => {
      [redisHK, redisKR] = await Promise.all([startRedis(), startRedis()]);
    });
    afterAll(async () => {
      await Promise.all([redisHK?.stop(), redisKR?.stop()]);
    });

    it('loses nothing while the broker is away', { timeout: 120_000 }, async () => {
      const prefix = 'away:';
      const storeHK = new GeoSessionStore({
        region: 'hk',
        client: redisHK.client(),
        prefix,
        transport: transport(),
        sealer: 'none',
      });
      const storeKR = new GeoSessionStore({
        region: 'kr',
        client: redisKR.client(),
        prefix,
        transport: transport(),
        sealer: 'none',
      });
      for (const store of [storeHK, storeKR]) {
        store.on('error', () => {});
        open.push(store);
      }
      await Promise.all([storeHK.ready(), storeKR.ready()]);

      const written = new Map<string, SessionData>();
      let n = 0;
      let writing = true;
      const writer = (async () => {
        while (writing) {
          const sid = storeHK.genid();
          const sess = {
            cookie: { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000) },
            n: n++,
          };
          await storeHK.set(sid, sess as unknown as SessionData);
          written.set(sid, JSON.parse(JSON.stringify(sess)) as SessionData);
          await sleep(50); // about 20 writes a second
        }
      })();

      await sleep(1000);
      await nats.kill();
      await sleep(10_000);
      await nats.restart();
      await sleep(1000);
      writing = false;
      await writer;
      expect(written.size).toBeGreaterThan(100);

      await eventually(async () => {
        const missing = await Promise.all(
          [...written.keys()].map(async (sid) => (await storeKR.get(sid)) === null),
        );
        return missing.every((m) => !m);
      }, 60_000);
      for (const [sid, sess] of written) expect(await storeKR.get(sid)).toEqual(sess);
    });
  });
});
