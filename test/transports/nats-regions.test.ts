/**
 * NATS JetStream and a region that never comes back (issue 11): the one removal procedure of
 * docs/replication.md ("Removing a region"), run as written on a private nats-server. The stream keeps
 * envelopes by age and size whatever the consumers do (`maxAgeMs`, `maxBytes`), so a gone region holds
 * nothing back; its durable consumers are what is left to remove, and no transport recreates them.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { channelToken, createNatsTransport } from '../../src/transports/nats.js';
import { type PrivateNats, startNats } from '../helpers/nats-server.js';
import { eventually, serviceAvailable } from '../helpers/servers.js';
import { sampleEvent } from './conformance.js';

const hasNats = await serviceAvailable('nats', 4222);

describe.skipIf(!hasNats)('nats: removing a region', () => {
  let nats: PrivateNats;
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    nats = await startNats();
  });
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close().catch(() => {});
  });
  afterAll(async () => {
    await nats?.stop();
  });

  function transport(regions: string[]): ReplicationTransport {
    const t = createNatsTransport({
      servers: nats.url,
      regions,
      publishTimeoutMs: 3000,
      idleHeartbeatMs: 500,
    });
    t.on('error', () => {});
    opened.push(t);
    return t;
  }

  async function subscribe(t: ReplicationTransport, channel: string, region: string, inbox: Set<string>) {
    const sub = await t.subscribe({
      channel,
      region,
      handler: async (events: Envelope[]) => {
        for (const e of events) inbox.add(e.id);
      },
    });
    opened.push(sub);
  }

  /** Runs `work` with a JetStream manager of its own connection. */
  async function withManager<T>(work: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>) {
    const nc = await connect({ servers: nats.url });
    try {
      return await work(await jetstreamManager(nc));
    } finally {
      await nc.close();
    }
  }

  const consumersOf = (stream: string) =>
    withManager(async (jsm) => (await jsm.consumers.list(stream).next()).map((c) => c.name).sort());

  it('out of `regions` everywhere, then its durable consumers deleted; the others go on', async () => {
    const channel = 'remove:';
    const stream = `GEOSESSION_${channelToken(channel)}`;
    const three = ['hk', 'kr', 'us'];
    const krInbox = new Set<string>();
    let hk = transport(three);
    let kr = transport(three);
    const us = transport(three);
    await subscribe(hk, channel, 'hk', new Set());
    await subscribe(kr, channel, 'kr', krInbox);
    await subscribe(us, channel, 'us', new Set());
    expect(await consumersOf(stream)).toEqual([
      'hk_from_kr',
      'hk_from_us',
      'kr_from_hk',
      'kr_from_us',
      'us_from_hk',
      'us_from_kr',
    ]);
    const before = Array.from({ length: 10 }, () => sampleEvent('hk'));
    await hk.publish(channel, before);
    await eventually(() => before.every((e) => krInbox.has(e.id)));

    // us is gone for good. 1. Every remaining region drops it from `regions` (a redeploy).
    for (const o of opened.splice(0).reverse()) await o.close();
    hk = transport(['hk', 'kr']);
    kr = transport(['hk', 'kr']);
    await subscribe(hk, channel, 'hk', new Set());
    await subscribe(kr, channel, 'kr', krInbox);
    // 2. Its durable consumers go (`us_from_<origin>`), and so do the others' consumers of its subject
    //    (`<region>_from_us`), which nothing publishes to any more.
    await withManager(async (jsm) => {
      for (const name of ['us_from_hk', 'us_from_kr', 'hk_from_us', 'kr_from_us']) {
        expect(await jsm.consumers.delete(stream, name)).toBe(true);
      }
    });

    const after = Array.from({ length: 10 }, () => sampleEvent('hk'));
    await hk.publish(channel, after);
    await eventually(() => after.every((e) => krInbox.has(e.id)));
    expect(await consumersOf(stream)).toEqual(['hk_from_kr', 'kr_from_hk']);
  });
});
