import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import { GeoSessionStore } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { amqpTopology, createAmqpTransport } from '../../src/transports/amqp.js';
import { channelToken, createNatsTransport } from '../../src/transports/nats.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { startNats } from '../helpers/nats-server.js';
import { type PrivateRedis, serviceAvailable, startRedis } from '../helpers/servers.js';
import { AMQP_URL, deleteTopology } from '../transports/amqp-fixtures.js';
import { sampleEvent } from '../transports/conformance.js';
import { lines, regionArgs, runCli } from './run-cli.js';

const hasRabbit = await serviceAvailable('rabbitmq', 5672);
const hasNats = await serviceAvailable('nats', 4222);

// `geosession region remove`: the removal procedure of docs/replication.md in one step, per transport.
describe('geosession region remove', { timeout: 120_000 }, () => {
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  let us: PrivateRedis;
  beforeAll(async () => {
    [hk, kr, us] = await Promise.all([startRedis(), startRedis(), startRedis()]);
  });
  afterAll(async () => {
    await Promise.all([hk?.stop(), kr?.stop(), us?.stop()]);
  });

  const groupsOf = async (server: PrivateRedis, key: string) => {
    const groups = (await server.client().xinfo('GROUPS', key)) as unknown[][];
    return groups.map((fields) => String(fields[fields.indexOf('name') + 1])).sort();
  };

  it('redis-streams: lists, refuses without --yes off a terminal, then deletes the groups and resync needs', async () => {
    const prefix = 'rm1:';
    const keys = createKeySpace(prefix);
    // Three regions ran; us is gone for good.
    const opened: { close(): Promise<void> }[] = [];
    for (const name of ['hk', 'kr', 'us'] as const) {
      const clients = { hk: hk.client(), kr: kr.client(), us: us.client() };
      const transport = createRedisStreamsTransport({ regions: clients });
      const store = new GeoSessionStore({
        region: name,
        client: clients[name],
        prefix,
        transport,
        sealer: 'none',
      });
      store.on('error', () => {});
      await store.ready();
      opened.push(store, transport);
    }
    for (const o of opened.reverse()) await o.close();
    const hkOutbox = keys.internal('outbox', 'hk');
    expect(await groupsOf(hk, hkOutbox)).toEqual(['kr', 'us']);
    expect(await groupsOf(kr, keys.internal('outbox', 'kr'))).toEqual(['hk', 'us']);
    await hk
      .client()
      .hset(keys.internal('state', 'hk'), 'resync:us', JSON.stringify({ reason: 'backlog', since: 1 }));

    const cli = (args: string[]) =>
      runCli([...regionArgs({ hk, kr }), '--prefix', prefix, 'region', 'remove', 'us', ...args]);
    const dry = await cli(['--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`delete  hk: XGROUP DESTROY ${hkOutbox} us`);
    expect(dry.stdout).toContain(`delete  hk: HDEL ${keys.internal('state', 'hk')} resync:us`);
    expect(dry.stdout).toContain(`absent  kr: HDEL ${keys.internal('state', 'kr')} resync:us`);
    expect(await groupsOf(hk, hkOutbox)).toEqual(['kr', 'us']);

    const unconfirmed = await cli([]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/pass --yes/);
    expect(await groupsOf(hk, hkOutbox)).toEqual(['kr', 'us']);

    const done = await cli(['--yes', '--json']);
    expect(done.code).toBe(0);
    const report = JSON.parse(done.stdout);
    expect(report.redis.filter((s: { removed: boolean }) => s.removed)).toHaveLength(3);
    expect(await groupsOf(hk, hkOutbox)).toEqual(['kr']);
    expect(await groupsOf(kr, keys.internal('outbox', 'kr'))).toEqual(['hk']);
    expect(await hk.client().hexists(keys.internal('state', 'hk'), 'resync:us')).toBe(0);

    const again = await cli(['--yes']);
    expect(again.code).toBe(0);
    expect(lines(again.stdout).at(-1)).toBe('removed 0 items kept for us');
  });

  it('refuses a bad transport, a missing broker URL and removing the only region given', async () => {
    const base = regionArgs({ hk });
    expect((await runCli([...base, 'region', 'remove', 'us', '--transport', 'kafka'])).code).toBe(2);
    expect((await runCli([...base, 'region', 'remove', 'us', '--transport', 'amqp'])).stderr).toMatch(
      /--amqp-url/,
    );
    expect((await runCli([...base, 'region', 'remove', 'hk', '--yes'])).code).toBe(2);
  });

  it.skipIf(!hasRabbit)('amqp: deletes the gone region’s queue and only it', async () => {
    const namePrefix = `gscli.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
    const channel = 'rm2:';
    const three = ['hk', 'kr', 'us'];
    const transport = createAmqpTransport({
      url: AMQP_URL,
      regions: three,
      namePrefix,
      publishTimeoutMs: 5000,
    });
    transport.on('error', () => {});
    await transport.publish(channel, [sampleEvent('hk') as Envelope]);
    await transport.close();
    const topology = amqpTopology(channel, three, namePrefix);
    const exists = async (queue: string) => {
      const conn = await amqplib.connect(AMQP_URL);
      conn.on('error', () => {});
      try {
        const ch = await conn.createChannel();
        ch.on('error', () => {});
        return await ch.checkQueue(queue).then(
          () => true,
          () => false,
        );
      } finally {
        await conn.close().catch(() => {});
      }
    };
    try {
      expect(await exists(topology.queues.us as string)).toBe(true);
      const args = [...regionArgs({ hk, kr }), '--prefix', channel, 'region', 'remove', 'us'];
      const broker = ['--transport', 'amqp', '--amqp-url', AMQP_URL, '--amqp-name-prefix', namePrefix];
      const dry = await runCli([...args, ...broker, '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain(
        `delete  amqp: rabbitmqctl delete_queue ${topology.queues.us} (1 waiting)`,
      );
      const done = await runCli([...args, ...broker, '--yes']);
      expect(done.stderr).toBe('');
      expect(done.code).toBe(0);
      expect(await exists(topology.queues.us as string)).toBe(false);
      expect(await exists(topology.queues.kr as string)).toBe(true);
      const unreachable = await runCli([
        ...args,
        '--transport',
        'amqp',
        '--amqp-url',
        'amqp://127.0.0.1:1',
        '--yes',
      ]);
      expect(unreachable.code).toBe(3);
      expect(unreachable.stderr).toMatch(/^geosession: region amqp: cannot reach RabbitMQ/);
    } finally {
      await deleteTopology([channel], three, namePrefix);
    }
  });

  it.skipIf(!hasNats)('nats: deletes the gone region’s consumers and those of its subject', async () => {
    const nats = await startNats();
    const channel = 'rm3:';
    const stream = `GEOSESSION_${channelToken(channel)}`;
    const three = ['hk', 'kr', 'us'];
    const consumers = async () => {
      const nc = await connect({ servers: nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        return (await jsm.consumers.list(stream).next()).map((c) => c.name).sort();
      } finally {
        await nc.close();
      }
    };
    try {
      const transports = three.map((region) => {
        const t = createNatsTransport({ servers: nats.url, regions: three, publishTimeoutMs: 3000 });
        t.on('error', () => {});
        return { region, t };
      });
      const subs = [];
      for (const { region, t } of transports) {
        subs.push(await t.subscribe({ channel, region, handler: async () => {} }));
      }
      for (const sub of subs) await sub.close();
      for (const { t } of transports) await t.close();
      expect(await consumers()).toHaveLength(6);
      const done = await runCli([
        ...regionArgs({ hk, kr }),
        '--prefix',
        channel,
        'region',
        'remove',
        'us',
        '--transport',
        'nats',
        '--nats-url',
        nats.url,
        '--yes',
      ]);
      expect(done.stderr).toBe('');
      expect(done.code).toBe(0);
      expect(done.stdout).toContain(`nats consumer rm ${stream} us_from_hk`);
      expect(await consumers()).toEqual(['hk_from_kr', 'kr_from_hk']);
    } finally {
      await nats.stop();
    }
  });
});
