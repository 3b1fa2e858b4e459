// The JetStream objects of the NATS transport: a channel's stream and each region's durable pull
// consumer of another region's subject, created with the transport's settings unless they exist.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Names } from './nats-consumer.js';
import { consumerName, type NatsSettings } from './nats-options.js';

const nanos = (ms: number): number => Math.round(ms * 1_000_000);

/** The JetStream API error code of `error` (a `JetStreamApiError`), if it is one. */
function apiCode(error: unknown): number | undefined {
  if (
    !(error instanceof Error) ||
    !error.name.endsWith('Error') ||
    typeof (error as { apiError?: unknown }).apiError !== 'function'
  ) {
    return undefined;
  }
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** JetStream's "consumer not found". */
const CONSUMER_NOT_FOUND = 10014;

/**
 * Creates the channel's stream (file storage, limits retention) with the transport's settings; an
 * existing stream with another configuration (tuned by an operator) is kept as it is.
 */
export async function createNatsStream(jsm: JetStreamManager, names: Names, s: NatsSettings): Promise<void> {
  try {
    await jsm.streams.add({
      name: names.stream,
      subjects: [`${names.base}.>`],
      storage: 'file',
      retention: 'limits',
      discard: 'old',
      max_age: nanos(s.maxAgeMs),
      max_bytes: s.maxBytes > 0 ? s.maxBytes : -1,
      num_replicas: s.replicas,
      duplicate_window: nanos(Math.min(s.duplicateWindowMs, s.maxAgeMs)),
    });
  } catch (error) {
    // Exists with another configuration (tuned by an operator): keep it, as long as it exists.
    if (apiCode(error) === undefined) throw error;
    await jsm.streams.info(names.stream);
  }
}

/** Creates `region`'s durable consumer of `origin`'s subject unless it exists; returns its name. */
export async function ensureNatsConsumer(
  jsm: JetStreamManager,
  names: Names,
  s: NatsSettings,
  region: string,
  origin: string,
): Promise<string> {
  const durable = consumerName(region, origin);
  try {
    await jsm.consumers.info(names.stream, durable);
    return durable;
  } catch (error) {
    if (apiCode(error) !== CONSUMER_NOT_FOUND) throw error;
  }
  await jsm.consumers.add(names.stream, {
    durable_name: durable,
    ack_policy: 'explicit',
    deliver_policy: 'all',
    filter_subject: `${names.base}.${origin}`,
    ack_wait: nanos(s.ackWaitMs),
    max_ack_pending: s.maxAckPending,
    max_deliver: -1,
  });
  return durable;
}
