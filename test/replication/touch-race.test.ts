/**
 * A touch is never lost (issue 11). With read-through, kr serves a session born in hk from hk's Redis
 * before hk's set has replicated to kr. A touch made then found no session in kr; before, it returned
 * without recording anything, the set arrived later with its old expiry, and the session expired in
 * every region (seen over AMQP in 10 of 10 trials, over Redis Streams in 1 of 10). Now read-through
 * stores the session in kr with hk's version (issue 15), the touch is a touch of that version, sent as
 * one, and once the set arrives (a duplicate) the session lives to the touched expiry in both regions.
 *
 * Per transport, 10 trials each, with hk's set held back by freezing the link it travels on (a TCP proxy):
 * Redis Streams, kr's reads of hk's outbox; AMQP and NATS, hk's connection to the broker.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { createAmqpTransport } from '../../src/transports/amqp.js';
import { createNatsTransport } from '../../src/transports/nats.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { readMeta } from '../helpers/meta.js';
import { type PrivateNats, startNats } from '../helpers/nats-server.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, serviceAvailable, uniquePrefix } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { AMQP_URL, deleteTopology, recordChannels } from '../transports/amqp-fixtures.js';

const TRIALS = 10;
// Past the default touch step (60 s) from the 10 s left at the set: the touch is replicated.
const MAX_AGE = 120_000;
const WAIT = 20_000;
const hasRabbit = await serviceAvailable('rabbitmq', 5672);
const hasNats = await serviceAvailable('nats', 4222);

const pexpiretime = (client: Redis, key: string) => client.call('PEXPIRETIME', key) as Promise<number>;

interface Regions {
  hk: GeoSessionStore;
  kr: GeoSessionStore;
  /** Holds hk's set back from kr, and lets it go. */
  hold(): void;
  release(): void;
  /** True once the touch has left kr (reached hk, or was confirmed by the broker). */
  touchSent(sid: string, touched: number): Promise<boolean>;
}

describe.skipIf(!hasRedis)('a touch of a session served by read-through before its set arrived', () => {
  const servers = usePrivateRedisPair();
  const { opened } = servers;
  let hkClient: Redis;
  let krClient: Redis;

  beforeAll(() => {
    hkClient = servers.hk.client();
    krClient = servers.kr.client();
  });

  function stores(prefix: string, hkTransport: ReplicationTransport, krTransport: ReplicationTransport) {
    const hk = new GeoSessionStore({
      region: 'hk',
      client: hkClient,
      prefix,
      transport: hkTransport,
      sealer: 'none',
    });
    const kr = new GeoSessionStore({
      region: 'kr',
      client: krClient,
      prefix,
      transport: krTransport,
      sealer: 'none',
      remotes: { hk: servers.hk.client() },
    });
    for (const s of [hk, kr]) s.on('error', () => {}); // the frozen link reports
    for (const t of [hkTransport, krTransport]) t.on('error', () => {});
    opened.push(hkTransport, krTransport, hk, kr);
    return { hk, kr };
  }

  /** One trial; returns nothing, fails on the first broken expectation. */
  async function trial(r: Regions, prefix: string, n: number): Promise<void> {
    const keys = createKeySpace(prefix);
    r.hold();
    let released = false;
    try {
      const sid = r.hk.genid();
      // Logged in in hk with 10 s left of a 120 s cookie (its last save was 110 s ago).
      const expires = new Date(Date.now() + 10_000).toISOString();
      await r.hk.set(sid, { cookie: { originalMaxAge: MAX_AGE, expires }, user: 'alice', n } as SessionData);
      // The next request lands in kr: served from hk, then touched (express-session: now + maxAge).
      const served = await r.kr.get(sid);
      expect(served, `trial ${n}: read-through`).toMatchObject({ user: 'alice', n });
      // Read-through stored it in kr with hk's version, as if its set had arrived.
      const hkVersion = (await readMeta(hkClient, keys.meta(sid))).v;
      expect((await readMeta(krClient, keys.meta(sid))).v, `trial ${n}: hk's version in kr`).toBe(hkVersion);
      const cookie = { ...served?.cookie, expires: new Date(Date.now() + MAX_AGE).toISOString() };
      await r.kr.touch(sid, { ...served, cookie } as SessionData);

      // kr recorded the touch's expiry, and sent it.
      const touched = Number((await readMeta(krClient, keys.meta(sid))).x ?? 0);
      expect(touched, `trial ${n}: the touch's expiry is recorded`).toBeGreaterThan(Date.now() + 30_000);
      await eventually(() => r.touchSent(sid, touched), WAIT);

      r.release();
      released = true;
      // Once the set has arrived, the session lives to the touched expiry in both regions.
      await eventually(async () => (await krClient.exists(keys.session(sid))) === 1, WAIT);
      await eventually(async () => (await pexpiretime(hkClient, keys.session(sid))) === touched, WAIT);
      expect(await pexpiretime(krClient, keys.session(sid)), `trial ${n}: kr`).toBe(touched);
      expect(await r.kr.get(sid)).toMatchObject({ user: 'alice', n });
    } finally {
      if (!released) r.release();
    }
  }

  it(`Redis Streams: ${TRIALS} trials, hk's set held back on kr's link to hk`, async () => {
    const prefix = uniquePrefix('touch-rs');
    const keys = createKeySpace(prefix);
    const link: TcpProxy = await startTcpProxy(servers.hk.port);
    opened.push(link);
    const hkT = createRedisStreamsTransport({
      regions: { hk: servers.hk.client(), kr: servers.kr.client() },
      blockMs: 200,
    });
    const krT = createRedisStreamsTransport({
      regions: { hk: servers.hk.client({ port: link.port }), kr: servers.kr.client() },
      blockMs: 200,
      watchdogMs: 1000,
    });
    const { hk, kr } = stores(prefix, hkT, krT);
    await Promise.all([hk.ready(), kr.ready()]);
    const regions: Regions = {
      hk,
      kr,
      hold: () => link.freeze(),
      release: () => link.thaw(),
      // hk reads kr's outbox directly: the touch reaches hk while the set is still held back.
      touchSent: async (sid, touched) => Number((await readMeta(hkClient, keys.meta(sid))).x) === touched,
    };
    for (let n = 0; n < TRIALS; n++) await trial(regions, prefix, n);
  }, 120_000);

  describe.skipIf(!hasRabbit)('AMQP', () => {
    const namePrefix = `gstouch.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
    const seen = new Set<string>();
    afterAll(async () => {
      await deleteTopology(seen, ['hk', 'kr'], namePrefix);
    });

    it(`${TRIALS} trials, hk's set held back on hk's link to the broker`, async () => {
      const prefix = uniquePrefix('touch-amqp');
      const link: TcpProxy = await startTcpProxy(5672);
      opened.push(link);
      const amqp = (url: string) =>
        recordChannels(
          createAmqpTransport({ url, regions: ['hk', 'kr'], namePrefix, publishTimeoutMs: 3000 }),
          seen,
        );
      const hkT = amqp(`amqp://guest:guest@127.0.0.1:${link.port}`);
      const { hk, kr } = stores(prefix, hkT, amqp(AMQP_URL));
      await Promise.all([hk.ready(), kr.ready()]);
      let published = 0;
      const regions: Regions = {
        hk,
        kr,
        hold: () => {
          published = kr.replicationStats()?.published ?? 0;
          link.freeze();
        },
        release: () => link.thaw(),
        // kr's relay published it and the broker confirmed it (hk's consumer is frozen too).
        touchSent: async () => (kr.replicationStats()?.published ?? 0) > published,
      };
      for (let n = 0; n < TRIALS; n++) await trial(regions, prefix, n);
    }, 180_000);
  });

  describe.skipIf(!hasNats)('NATS JetStream', () => {
    let nats: PrivateNats;
    beforeAll(async () => {
      nats = await startNats();
    });
    afterAll(async () => {
      await nats?.stop();
    });

    it(`${TRIALS} trials, hk's set held back on hk's link to the server`, async () => {
      const prefix = uniquePrefix('touch-nats');
      const link: TcpProxy = await startTcpProxy(nats.port);
      opened.push(link);
      const natsT = (port: number) =>
        createNatsTransport({
          servers: `nats://127.0.0.1:${port}`,
          regions: ['hk', 'kr'],
          publishTimeoutMs: 3000,
          idleHeartbeatMs: 1000,
        });
      const { hk, kr } = stores(prefix, natsT(link.port), natsT(nats.port));
      await Promise.all([hk.ready(), kr.ready()]);
      let published = 0;
      const regions: Regions = {
        hk,
        kr,
        hold: () => {
          published = kr.replicationStats()?.published ?? 0;
          link.freeze();
        },
        release: () => link.thaw(),
        touchSent: async () => (kr.replicationStats()?.published ?? 0) > published,
      };
      for (let n = 0; n < TRIALS; n++) await trial(regions, prefix, n);
    }, 180_000);
  });
});
