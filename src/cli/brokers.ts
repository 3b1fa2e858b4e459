import { amqpTopology } from '../amqp.js';
import { channelToken } from '../nats.js';
import { messageOf, UnreachableError, UsageError } from './errors.js';

/**
 * The brokers' side of `region remove`: an AMQP region's queue and a NATS region's durable consumers.
 * Names come from the transports' own entry points (amqpTopology, channelToken); the client libraries
 * (optional peers) are loaded only here, when asked for.
 */

/** One thing to delete on a broker. */
export interface BrokerStep {
  /** `amqp` or `nats`. */
  readonly where: 'amqp' | 'nats';
  /** `queue` or `consumer`. */
  readonly kind: 'queue' | 'consumer';
  /** The queue, or `<stream> <consumer>`. */
  readonly name: string;
  /** The command that deletes it, as an operator would type it. */
  readonly command: string;
  /** Whether it exists. */
  readonly exists: boolean;
  /** Messages waiting in the queue, or pending for the consumer, when known. */
  readonly backlog?: number;
  /** After removal: whether this run deleted it. */
  removed?: boolean;
}

/** A broker session: its plan, and what carries it out. */
export interface BrokerRemoval {
  readonly steps: BrokerStep[];
  /** Deletes every existing step. */
  execute(): Promise<void>;
  close(): Promise<void>;
}

async function load<T>(name: string, packages: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    throw new UsageError(
      `this transport needs ${packages}, which cannot be loaded (${messageOf(error)}): run npm install ${packages}`,
    );
  }
}

/** The AMQP queue of `gone` for the channel `prefix`. */
export async function amqpRemoval(
  url: string,
  prefix: string,
  gone: string,
  namePrefix: string,
): Promise<BrokerRemoval> {
  const amqplib = await load<typeof import('amqplib')>('amqplib', 'amqplib');
  const queue = amqpTopology(prefix, [gone], namePrefix).queues[gone] as string;
  let connection: Awaited<ReturnType<typeof amqplib.connect>>;
  try {
    connection = await amqplib.connect(url, { timeout: 5000 });
  } catch (error) {
    throw new UnreachableError('amqp', `cannot reach RabbitMQ: ${messageOf(error)}`, { cause: error });
  }
  connection.on('error', () => {});
  // A failed check closes its channel: one channel per check.
  const check = async () => {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    try {
      return await channel.checkQueue(queue);
    } catch {
      return undefined;
    } finally {
      await channel.close().catch(() => {});
    }
  };
  const found = await check();
  const step: BrokerStep = {
    where: 'amqp',
    kind: 'queue',
    name: queue,
    command: `rabbitmqctl delete_queue ${queue}`,
    exists: found !== undefined,
    ...(found ? { backlog: found.messageCount } : {}),
  };
  return {
    steps: [step],
    async execute() {
      if (!step.exists) {
        step.removed = false;
        return;
      }
      const channel = await connection.createChannel();
      await channel.deleteQueue(queue);
      await channel.close().catch(() => {});
      step.removed = true;
    },
    async close() {
      await connection.close().catch(() => {});
    },
  };
}

/** The NATS durable consumers of `gone` (`<gone>_from_*`) and of its subject (`*_from_<gone>`). */
export async function natsRemoval(
  servers: string,
  prefix: string,
  gone: string,
  streamPrefix: string,
): Promise<BrokerRemoval> {
  const transport = await load<typeof import('@nats-io/transport-node')>(
    '@nats-io/transport-node',
    '@nats-io/transport-node @nats-io/jetstream',
  );
  const jetstream = await load<typeof import('@nats-io/jetstream')>(
    '@nats-io/jetstream',
    '@nats-io/transport-node @nats-io/jetstream',
  );
  const stream = `${streamPrefix}_${channelToken(prefix)}`;
  let connection: Awaited<ReturnType<typeof transport.connect>>;
  try {
    connection = await transport.connect({ servers: servers.split(','), timeout: 5000, reconnect: false });
  } catch (error) {
    throw new UnreachableError('nats', `cannot reach NATS: ${messageOf(error)}`, { cause: error });
  }
  const manager = await jetstream.jetstreamManager(connection);
  const steps: BrokerStep[] = [];
  try {
    const consumers = await manager.consumers.list(stream).next();
    for (const consumer of consumers) {
      const name = consumer.name;
      if (!name.startsWith(`${gone}_from_`) && !name.endsWith(`_from_${gone}`)) continue;
      steps.push({
        where: 'nats',
        kind: 'consumer',
        name: `${stream} ${name}`,
        command: `nats consumer rm ${stream} ${name}`,
        exists: true,
        backlog: consumer.num_pending,
      });
    }
  } catch (error) {
    // No stream for this channel: nothing of the region is there.
    if (!/stream not found/i.test(messageOf(error))) {
      await connection.close().catch(() => {});
      throw new UnreachableError('nats', `cannot list the consumers of ${stream}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }
  return {
    steps,
    async execute() {
      for (const step of steps) {
        const [, consumer = ''] = step.name.split(' ');
        step.removed = await manager.consumers.delete(stream, consumer).catch((error: unknown) => {
          if (/consumer not found/i.test(messageOf(error))) return false;
          throw error;
        });
      }
    },
    async close() {
      await connection.close().catch(() => {});
    },
  };
}
