/**
 * A broker's refusal of a message for its size is recognised in one place (src/transports/size-refusal.ts)
 * and surfaces from every transport's `publish` as a `MessageTooLargeError` (issue 14 item 3), which
 * the pipeline splits and dead-letters; any other failure stays a `TransportError` and is retried.
 * The NATS `max_payload` case runs end to end in test/replication/oversized-sessions.test.ts.
 */
import { EventEmitter } from 'node:events';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import { MessageTooLargeError, TransportError } from '../../src/errors.js';
import { ConfirmWindow } from '../../src/transports/amqp-publisher.js';
import { channelToken, createNatsTransport } from '../../src/transports/nats.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { sizeRefusal } from '../../src/transports/size-refusal.js';
import { encodeFrames } from '../../src/wire/broker-frame.js';
import { hasRedis, type PrivateRedis, serviceAvailable, startRedis } from '../helpers/servers.js';
import { sampleEvent } from './conformance.js';

const hasNats = await serviceAvailable('nats', 4222);

function envelope(origin: string, body: string): Envelope {
  return { ...sampleEvent(origin), body };
}

describe('sizeRefusal', () => {
  const rabbit = new Error(
    'Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - message size 2000 is larger than configured max size 1000"',
  );
  const natsClient = Object.assign(new Error("'payload' max_payload size exceeded"), {
    name: 'InvalidArgumentError',
  });
  const jetstream = Object.assign(new Error('message size exceeds maximum allowed'), {
    code: 10054,
    apiError: () => ({}),
  });
  const redis = Object.assign(new Error('ERR Protocol error: invalid bulk length'), { name: 'ReplyError' });

  it('recognises each broker’s size refusal, in a cause too', () => {
    expect(sizeRefusal(rabbit)).toEqual({ bytes: 2000 });
    expect(sizeRefusal(natsClient)).toEqual({ bytes: undefined });
    expect(sizeRefusal(jetstream)).toEqual({ bytes: undefined });
    expect(sizeRefusal(redis)).toEqual({ bytes: undefined });
    expect(sizeRefusal(new TransportError('publishing failed', { cause: natsClient }))).toBeDefined();
  });

  it('takes nothing else for one', () => {
    for (const error of [
      new Error('channel closed'),
      new Error('TIMEOUT'),
      Object.assign(new Error('OOM command not allowed'), { name: 'ReplyError' }),
      Object.assign(new Error('stream not found'), { code: 10059, apiError: () => ({}) }),
      'max_payload',
      undefined,
    ]) {
      expect(sizeRefusal(error)).toBeUndefined();
    }
  });
});

/** A confirm channel that the broker closes for `size` as soon as a message of that size is written. */
function closingChannel(size: number): ConfirmChannel {
  const ch = new EventEmitter() as EventEmitter & { publish: ConfirmChannel['publish'] };
  const pending: ((error: unknown) => void)[] = [];
  ch.publish = (_exchange, _key, content, _options, callback) => {
    pending.push(callback as (error: unknown) => void);
    if (content.length === size) {
      setImmediate(() => {
        // amqplib: `error` with the server's reason, then `close` fails every unconfirmed publish.
        ch.emit(
          'error',
          new Error(
            `Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - message size ${size} is larger than configured max size 1000"`,
          ),
        );
        for (const cb of pending.splice(0)) cb(new Error('channel closed'));
      });
    }
    return true;
  };
  return ch as unknown as ConfirmChannel;
}

describe('AMQP: RabbitMQ max_message_size', () => {
  it('the call that wrote the refused message gets MessageTooLargeError; a call sharing the channel retries', async () => {
    const window = new ConfirmWindow(10);
    const big = [envelope('hk', 'x'.repeat(5000))];
    const small = [envelope('hk', 'small')];
    const bytes = encodeFrames(big)[0]?.bytes as number;
    const ch = closingChannel(bytes);
    ch.on('error', (error) => window.channelFailed(ch, error));
    const innocent = window.publish(ch, 'ex', small, () => false);
    const guilty = window.publish(ch, 'ex', big, () => false);
    const [a, b] = await Promise.allSettled([innocent, guilty]);
    expect(b.status === 'rejected' && b.reason).toBeInstanceOf(MessageTooLargeError);
    expect((b as PromiseRejectedResult).reason.bytes).toBe(bytes);
    expect(a.status === 'rejected' && a.reason).toBeInstanceOf(TransportError);
    expect((a as PromiseRejectedResult).reason).not.toBeInstanceOf(MessageTooLargeError);
  });
});

describe.skipIf(!hasRedis)('Redis Streams: proto-max-bulk-len', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('an entry over the limit is MessageTooLargeError; the next publish goes through', async () => {
    const admin = redis.client();
    await admin.config('SET', 'proto-max-bulk-len', String(1024 * 1024));
    const transport = createRedisStreamsTransport({ regions: { hk: redis.client(), kr: redis.client() } });
    transport.on('error', () => {});
    try {
      const error = await transport.publish('big:', [envelope('hk', '가'.repeat(400_000))]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MessageTooLargeError);
      await transport.publish('big:', [envelope('hk', 'small')]);
    } finally {
      await transport.close();
    }
  });
});

describe.skipIf(!hasNats)('NATS: a stream’s max_msg_size', () => {
  it('a message over it is MessageTooLargeError; a smaller one goes through', async () => {
    const id = `${process.pid}x${Date.now().toString(36)}`;
    const streamPrefix = `GSSIZE_${id}`;
    const subjectPrefix = `gssize.${id}`;
    const channel = 'size:';
    const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
    const jsm = await jetstreamManager(nc);
    const stream = `${streamPrefix}_${channelToken(channel)}`;
    // An operator's stream, tuned: the transport keeps it as it is.
    await jsm.streams.add({
      name: stream,
      subjects: [`${subjectPrefix}.${channelToken(channel)}.>`],
      max_msg_size: 4096,
    });
    const transport = createNatsTransport({
      servers: 'nats://127.0.0.1:4222',
      regions: ['hk', 'kr'],
      streamPrefix,
      subjectPrefix,
    });
    transport.on('error', () => {});
    try {
      const error = await transport.publish(channel, [envelope('hk', '가'.repeat(2000))]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MessageTooLargeError);
      await transport.publish(channel, [envelope('hk', 'small')]);
    } finally {
      await transport.close();
      await jsm.streams.delete(stream).catch(() => {});
      await nc.close();
    }
  });
});
