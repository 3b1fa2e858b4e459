import amqplib from 'amqplib';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { amqpTopology, createAmqpTransport } from '../../src/transports/amqp.js';
import { serviceAvailable } from '../helpers/servers.js';
import { AMQP_URL, deleteTopology, recordChannels } from './amqp-fixtures.js';
import { transportConformance } from './conformance.js';

const hasRabbit = await serviceAvailable('rabbitmq', 5672);

describe.skipIf(!hasRabbit)('amqp', () => {
  transportConformance('amqp', async () => {
    const regions = ['hk', 'kr', 'us'];
    const namePrefix = `gstest.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
    const seen = new Set<string>();
    const transport = recordChannels(
      createAmqpTransport({ url: AMQP_URL, regions, namePrefix, retryDelayMs: 200 }),
      seen,
    );
    return {
      regions: ['hk', 'kr', 'us'],
      transport: () => transport,
      injectRaw: async (channel, origin, raw) => {
        const conn = await amqplib.connect(AMQP_URL);
        try {
          const ch = await conn.createConfirmChannel();
          await ch.assertExchange(amqpTopology(channel, regions, namePrefix).exchange, 'topic', {
            durable: true,
          });
          ch.publish(
            amqpTopology(channel, regions, namePrefix).exchange,
            `${origin}.session`,
            Buffer.from(raw),
          );
          await ch.waitForConfirms();
        } finally {
          await conn.close();
        }
      },
      cleanup: () => deleteTopology(seen, regions, namePrefix),
    };
  });

  it('names the topology after the channel, never mixing prefixes', () => {
    const t = amqpTopology('sess:', ['hk', 'kr', 'us'], 'geosession');
    expect(t.exchange).toBe('geosession.sess_3a.events');
    expect(t.queues).toEqual({
      hk: 'geosession.sess_3a.hk',
      kr: 'geosession.sess_3a.kr',
      us: 'geosession.sess_3a.us',
    });
    expect(t.bindings.hk).toEqual(['kr.#', 'us.#']);
    expect(amqpTopology('', ['hk', 'kr']).exchange).toBe('geosession.-.events');
    // Distinct channels give distinct names, even when they differ only in punctuation.
    const names = ['a:b', 'a_b', 'a.b', 'a-b', 'a_3ab', 'ab', '', 'é'].map(
      (c) => amqpTopology(c, ['x', 'y']).exchange,
    );
    expect(new Set(names).size).toBe(names.length);
    const long = amqpTopology('x'.repeat(1000), ['hk', 'kr']);
    expect(Buffer.byteLength(long.queues.hk as string)).toBeLessThanOrEqual(255);
    expect(long.exchange).not.toBe(amqpTopology('x'.repeat(999), ['hk', 'kr']).exchange);
  });

  it('amqpTopology refuses wrong arguments with a ConfigError naming them', () => {
    for (const [args, option] of [
      [[42, ['hk', 'kr']], 'channel'],
      [['sess:', 'hk'], 'regions'],
      [['sess:', ['HK']], 'regions'],
      [['sess:', ['hk'], 'a b'], 'namePrefix'],
    ] as const) {
      let error: unknown;
      try {
        (amqpTopology as (...a: unknown[]) => unknown)(...args);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(args)).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe(option);
    }
  });

  it('validates its options, naming the option', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ regions: ['hk', 'kr'] }, 'url'],
      [{ url: 'http://x', regions: ['hk', 'kr'] }, 'url'],
      [{ url: AMQP_URL }, 'regions'],
      [{ url: AMQP_URL, regions: ['hk'] }, 'regions'],
      [{ url: AMQP_URL, regions: ['hk', 'Bad!'] }, 'regions'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], queueType: 'stream' }, 'queueType'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], namePrefix: 'a b' }, 'namePrefix'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], maxInFlight: 0 }, 'maxInFlight'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], publishTimeoutMs: -1 }, 'publishTimeoutMs'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], prefetch: 1.5 }, 'prefetch'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], reconnectDelayMs: [500, 100] }, 'reconnectDelayMs'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], maxQueueLength: -1 }, 'maxQueueLength'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], messageTtl: 5 }, 'messageTtl'],
      [{ url: AMQP_URL, regions: ['hk', 'kr'], socketOptions: 'x' }, 'socketOptions'],
    ];
    for (const [options, option] of bad) {
      let error: unknown;
      try {
        createAmqpTransport(options as never);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe(option);
    }
  });
});
