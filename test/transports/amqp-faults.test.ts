import amqplib from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { ReplicationTransport, TransportState } from '../../src/contracts/transport.js';
import { TransportError } from '../../src/errors.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { amqpTopology, createAmqpTransport } from '../../src/transports/amqp.js';
import { eventually, type PrivateRedis, serviceAvailable, startRedis } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { AMQP_URL, deleteTopology, recordChannels } from './amqp-fixtures.js';
import { sampleEvent } from './conformance.js';

const hasRabbit = await serviceAvailable('rabbitmq', 5672);
const REGIONS = ['hk', 'kr'];

describe.skipIf(!hasRabbit)('amqp transport faults', () => {
  let proxy: TcpProxy;
  const namePrefix = `gsfault.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  const seen = new Set<string>();
  const opened: ReplicationTransport[] = [];

  beforeAll(async () => {
    proxy = await startTcpProxy(5672);
  });
  afterEach(async () => {
    proxy.heal();
    await Promise.all(opened.splice(0).map((t) => t.close()));
  });
  afterAll(async () => {
    await proxy.close();
    await deleteTopology(seen, REGIONS, namePrefix);
  });

  function transport(
    extra: Partial<Parameters<typeof createAmqpTransport>[0]> = {},
  ): ReplicationTransport & { states: TransportState[]; errors: Error[] } {
    const t = recordChannels(
      createAmqpTransport({
        url: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
        regions: REGIONS,
        namePrefix,
        reconnectDelayMs: [50, 500],
        publishTimeoutMs: 1500,
        connectTimeoutMs: 1000,
        retryDelayMs: 100,
        ...extra,
      }),
      seen,
    ) as ReplicationTransport & { states: TransportState[]; errors: Error[] };
    t.states = [];
    t.errors = [];
    t.on('state', (s) => t.states.push(s));
    t.on('error', (e) => t.errors.push(e));
    opened.push(t);
    return t;
  }

  const channel = () => `fault${Math.random().toString(36).slice(2, 8)}:`;

  async function inboxOf(t: ReplicationTransport, ch: string, region: string) {
    const got = new Map<string, Envelope>();
    await t.subscribe({
      channel: ch,
      region,
      handler: async (events) => {
        for (const e of events) got.set(e.id, e);
      },
    });
    return got;
  }

  /** Runs `change` on a channel of a separate connection, to break the topology under a transport. */
  async function asAdmin(change: (admin: amqplib.Channel) => Promise<unknown>) {
    const admin = await amqplib.connect(AMQP_URL);
    admin.on('error', () => {});
    await change(await admin.createChannel());
    await admin.close();
  }

  /**
   * Publishes a new event every 100 ms until one of them reaches `inbox`. Events published while the
   * topology was gone had nowhere to go (or failed the publish), so the first ones may be lost.
   */
  async function publishUntilOneArrives(t: ReplicationTransport, ch: string, inbox: Map<string, unknown>) {
    const sent: string[] = [];
    await eventually(
      async () => {
        const e = sampleEvent('hk');
        sent.push(e.id);
        await t.publish(ch, [e]).catch(() => {});
        await new Promise((r) => setTimeout(r, 100));
        return sent.some((id) => inbox.has(id));
      },
      20_000,
      0,
    );
  }

  for (const mode of ['reset', 'hold'] as const) {
    it(`reconnects after the link is cut (${mode}) and healed; publish during the cut rejects`, async () => {
      const t = transport();
      const ch = channel();
      const inbox = await inboxOf(t, ch, 'kr');
      const before = sampleEvent('hk');
      await t.publish(ch, [before]);
      await eventually(() => inbox.has(before.id));
      const acceptedBefore = proxy.accepted;

      proxy.cut(mode);
      await eventually(() => t.state === 'degraded');
      const during = sampleEvent('hk');
      // Bounded by publishTimeoutMs: rejects, never hangs.
      await expect(t.publish(ch, [during])).rejects.toBeInstanceOf(TransportError);

      proxy.heal();
      await eventually(() => t.state === 'ready', 20_000);
      expect(proxy.accepted).toBeGreaterThan(acceptedBefore);
      const after = Array.from({ length: 50 }, () => sampleEvent('hk'));
      await t.publish(ch, after);
      await eventually(() => after.every((e) => inbox.has(e.id)), 20_000);
      expect(t.states).toContain('degraded');
      expect(t.errors.some((e) => e instanceof TransportError)).toBe(true);
    });
  }

  it('recovers from a server-side consumer cancel (queue deleted under the consumer)', async () => {
    const t = transport();
    const ch = channel();
    const inbox = await inboxOf(t, ch, 'kr');
    const first = sampleEvent('hk');
    await t.publish(ch, [first]);
    await eventually(() => inbox.has(first.id));

    await asAdmin((admin) => admin.deleteQueue(amqpTopology(ch, REGIONS, namePrefix).queues.kr as string));

    await eventually(() => t.errors.some((e) => /cancelled the consumer/.test(e.message)));
    // The consumer re-declares its queue and consumes again.
    await publishUntilOneArrives(t, ch, inbox);
    expect(t.state).toBe('ready');
  });

  it('recovers when the exchange is deleted (the publish channel dies with 404 and is reopened)', async () => {
    const t = transport();
    const ch = channel();
    const inbox = await inboxOf(t, ch, 'kr');
    const first = sampleEvent('hk');
    await t.publish(ch, [first]);
    await eventually(() => inbox.has(first.id));
    await asAdmin((admin) => admin.deleteExchange(amqpTopology(ch, REGIONS, namePrefix).exchange));
    // The first publish kills the publish channel (404); later ones reopen it and re-declare the topology.
    await publishUntilOneArrives(t, ch, inbox);
    expect(t.errors.some((e) => /publish channel/.test(e.message))).toBe(true);
  });

  describe('two stores, hk and kr, each with its own Redis', () => {
    let redisHK: PrivateRedis;
    let redisKR: PrivateRedis;
    beforeAll(async () => {
      [redisHK, redisKR] = await Promise.all([startRedis(), startRedis()]);
    });
    afterAll(async () => {
      await Promise.all([redisHK?.stop(), redisKR?.stop()]);
    });

    it('loses nothing while the broker is away: writes during a 10 s cut all reach kr after healing', async () => {
      const prefix = channel();
      const hkTransport = transport();
      const krTransport = transport();
      const hk = new GeoSessionStore({
        region: 'hk',
        client: redisHK.client(),
        prefix,
        transport: hkTransport,
        sealer: 'none',
      });
      const kr = new GeoSessionStore({
        region: 'kr',
        client: redisKR.client(),
        prefix,
        transport: krTransport,
        sealer: 'none',
      });
      hk.on('error', () => {});
      kr.on('error', () => {});
      await Promise.all([hk.ready(), kr.ready()]);

      const written = new Map<string, Record<string, unknown>>();
      let n = 0;
      const write = async () => {
        const sid = hk.genid();
        const sess = { cookie: { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000) }, n: n++ };
        await hk.set(sid, sess);
        written.set(sid, JSON.parse(JSON.stringify(sess)));
      };
      // Steady writes at about 20/s: 2 s before the cut, 10 s during it, 2 s after healing.
      let writing = true;
      const writer = (async () => {
        while (writing) {
          await write();
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await new Promise((r) => setTimeout(r, 2000));
      proxy.cut();
      await new Promise((r) => setTimeout(r, 10_000));
      const duringCut = n;
      proxy.heal();
      await new Promise((r) => setTimeout(r, 2000));
      writing = false;
      await writer;
      expect(duringCut).toBeGreaterThan(20);
      // The outage was real: both transports lost the broker and came back.
      expect(hkTransport.states).toContain('degraded');
      expect(krTransport.states).toContain('degraded');

      await eventually(
        async () => {
          for (const [sid] of written) if ((await kr.get(sid)) === null) return false;
          return true;
        },
        60_000,
        200,
      );
      for (const [sid, sess] of written) {
        expect(JSON.parse(JSON.stringify(await kr.get(sid)))).toEqual(sess);
        expect(await kr.get(sid)).toEqual(await hk.get(sid));
      }
      await Promise.all([hk.close(), kr.close()]);
    }, 120_000);
  });
});
