/** Small helpers of the e2e and http suites: list flags, load average, clock check, broker clean-up. */
import * as os from 'node:os';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import amqplib from 'amqplib';
import { amqpTopology } from '../../src/amqp.js';
import type { Child } from '../lib/child.js';
import { wallNow } from '../lib/lag.js';
import type { SuiteOptions } from '../lib/suite.js';

/**
 * A comma-separated flag, e.g. `--transports=amqp,nats`, or `defaults` when absent. When `defaults` is
 * a list of names, every value must be one of them; otherwise every value must be a positive number.
 */
export function listFlag<T extends string>(options: SuiteOptions, name: string, defaults: readonly T[]): T[] {
  const raw = options.flags[name];
  if (raw === undefined) return [...defaults];
  const values = raw
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  const numeric = defaults.every((d) => Number(d) > 0);
  for (const value of values) {
    const ok = numeric ? Number(value) > 0 : (defaults as readonly string[]).includes(value);
    if (!ok) throw new Error(`--${name}: ${value} is not one of ${defaults.join(', ')}`);
  }
  if (values.length === 0) throw new Error(`--${name} is empty`);
  return values as T[];
}

/** The 1, 5 and 15 minute load averages, as `0.52 0.61 0.70`. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

/**
 * How far each child's wall clock is from this process's, in ms: of 15 round trips over IPC, the one
 * with the shortest round trip, its clock reading compared with the middle of the round trip.
 */
export async function measureClockSkew(children: readonly Child[]): Promise<number[]> {
  const skews: number[] = [];
  for (const child of children) {
    let best = { rtt: Number.POSITIVE_INFINITY, skew: 0 };
    for (let i = 0; i < 15; i++) {
      const t0 = wallNow();
      const theirs = await child.call<number>('clock');
      const t1 = wallNow();
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, skew: theirs - (t0 + t1) / 2 };
    }
    skews.push(best.skew);
  }
  return skews;
}

/** Names of what one transport-and-link run created on the brokers. */
export interface BrokerObjects {
  kind: string;
  /** Key prefix of the stores, which is also their channel. */
  prefix: string;
  /** `namePrefix` (AMQP) and, with characters other than letters, digits, `_`, `-` as `_`, NATS's prefixes. */
  brokerPrefix: string;
  /** Name of the raw floor's exchange and queue (AMQP) or stream (NATS). */
  rawName: string;
}

/**
 * Deletes what the runs created on the machine's RabbitMQ and, when the suite used a NATS server it did
 * not start itself (`natsUrl`), the streams on it. Safe to run for objects already gone.
 */
export async function cleanUpBrokers(
  amqpUrl: string,
  natsUrl: string | undefined,
  objects: readonly BrokerObjects[],
): Promise<void> {
  const amqp = objects.filter((o) => o.kind === 'amqp');
  if (amqp.length > 0) {
    const conn = await amqplib.connect(amqpUrl);
    conn.on('error', () => {});
    const attempt = async (op: (ch: amqplib.Channel) => Promise<unknown>) => {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      try {
        await op(ch);
        await ch.close();
      } catch {
        // already gone (the channel closed with the error)
      }
    };
    for (const o of amqp) {
      const topology = amqpTopology(o.prefix, ['hk', 'kr'], o.brokerPrefix);
      for (const queue of Object.values(topology.queues)) await attempt((ch) => ch.deleteQueue(queue));
      await attempt((ch) => ch.deleteExchange(topology.exchange));
      await attempt((ch) => ch.deleteQueue(`${o.rawName}.kr`));
      await attempt((ch) => ch.deleteExchange(o.rawName));
    }
    await conn.close();
  }
  const nats = objects.filter((o) => o.kind === 'nats');
  if (natsUrl && nats.length > 0) {
    const nc = await natsConnect({ servers: natsUrl });
    const jsm = await jetstreamManager(nc);
    const heads = nats.flatMap((o) => [o.brokerPrefix.replace(/[^A-Za-z0-9_-]/g, '_'), o.rawName]);
    const names: string[] = [];
    for await (const name of jsm.streams.names()) if (heads.some((h) => name.startsWith(h))) names.push(name);
    for (const name of names) await jsm.streams.delete(name);
    await nc.close();
  }
}
