import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { channelToken, createNatsTransport } from '../../src/transports/nats.js';
import { serviceAvailable } from '../helpers/servers.js';
import { transportConformance } from './conformance.js';

const hasNats = await serviceAvailable('nats', 4222);
const URL = 'nats://127.0.0.1:4222';

/** Deletes every stream whose name starts with `prefix`. */
async function deleteStreams(prefix: string): Promise<void> {
  const nc = await connect({ servers: URL });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(prefix)) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}

describe('nats options and names', () => {
  it('requires servers and names the bad option', () => {
    expect(() => createNatsTransport(undefined as never)).toThrow(ConfigError);
    expect(() => createNatsTransport({} as never)).toThrow(/servers/);
    expect(() => createNatsTransport({ servers: [], regions: ['hk', 'kr'] })).toThrow(/servers/);
    expect(() => createNatsTransport({ servers: URL } as never)).toThrow(/regions/);
    expect(() => createNatsTransport({ servers: URL, regions: ['hk'] })).toThrow(/regions/);
    for (const [option, value] of [
      ['publishTimeoutMs', 0],
      ['publishWindow', 1.5],
      ['maxAckPending', -1],
      ['streamPrefix', 'a.b'],
      ['subjectPrefix', 'a..b'],
      ['idleHeartbeatMs', Number.NaN],
      ['serverz', 'nats://x'],
    ] as const) {
      let error: unknown;
      try {
        createNatsTransport({ servers: URL, regions: ['hk', 'kr'], [option]: value } as never);
      } catch (e) {
        error = e;
      }
      expect(error, option).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe(option);
    }
  });

  it('maps channels to distinct, valid stream-name and subject tokens', () => {
    const channels = [
      '',
      '_',
      'sess:',
      'sess_3a',
      'sess.',
      'a b',
      'é',
      'x'.repeat(300),
      `${'x'.repeat(300)}y`,
    ];
    const tokens = channels.map(channelToken);
    expect(new Set(tokens).size).toBe(channels.length);
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(channelToken('sess:')).toBe('sess_3a');
  });
});

describe.skipIf(!hasNats)('nats', () => {
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const prefix of prefixes) await deleteStreams(prefix);
  });

  transportConformance('nats', async () => {
    const id = `T${process.pid}${Math.random().toString(36).slice(2, 8)}`;
    const streamPrefix = `GSTEST_${id}`;
    prefixes.push(streamPrefix);
    const transport = createNatsTransport({
      servers: URL,
      regions: ['hk', 'kr', 'us'],
      streamPrefix,
      subjectPrefix: `gstest.${id}`,
      retryDelayMs: 200,
      ackWaitMs: 5000,
    });
    return {
      regions: ['hk', 'kr', 'us'],
      transport: () => transport,
      injectRaw: async (channel, origin, raw) => {
        const nc = await connect({ servers: URL });
        try {
          await jetstream(nc).publish(`gstest.${id}.${channelToken(channel)}.${origin}`, raw);
        } finally {
          await nc.close();
        }
      },
      cleanup: () => deleteStreams(streamPrefix),
    };
  });
});
