import amqplib from 'amqplib';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { amqpTopology } from '../../src/transports/amqp.js';

/** The machine's RabbitMQ. */
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** Deletes a channel's exchange and queues over plain AMQP (no management plugin needed). */
export async function deleteTopology(channels: Iterable<string>, regions: string[], namePrefix: string) {
  const conn = await amqplib.connect(AMQP_URL);
  conn.on('error', () => {});
  try {
    for (const channel of channels) {
      const names = amqpTopology(channel, regions, namePrefix);
      // A failed delete closes the channel, so each delete gets its own.
      for (const queue of Object.values(names.queues)) {
        const ch = await conn.createChannel();
        ch.on('error', () => {});
        await ch.deleteQueue(queue).catch(() => {});
        await ch.close().catch(() => {});
      }
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      await ch.deleteExchange(names.exchange).catch(() => {});
      await ch.close().catch(() => {});
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Records every channel a transport was used with, for cleanup. */
export function recordChannels(transport: ReplicationTransport, seen: Set<string>): ReplicationTransport {
  const publish = transport.publish.bind(transport);
  const subscribe = transport.subscribe.bind(transport);
  transport.publish = (channel, events) => {
    seen.add(channel);
    return publish(channel, events);
  };
  transport.subscribe = (options) => {
    seen.add(options.channel);
    return subscribe(options);
  };
  return transport;
}
