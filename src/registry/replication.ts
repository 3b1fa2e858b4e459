import type { Envelope } from '../contracts/envelope.js';
import type { Sealer } from '../contracts/sealer.js';
import type { ReplicationTransport } from '../contracts/transport.js';
import { EventError, type GeoSessionError } from '../errors.js';
import type { OutboxKeys, RemoteRegistryEvent } from '../redis/registry-commands.js';
import { applyRegistryEvents, RegistryApplyResult } from '../redis/registry-commands.js';
import { ReplicationNode } from '../replication/node.js';
import type { RejectedEnvelope } from '../replication/pipeline.js';
import type { RedisClient } from '../types.js';
import { sessionIdProblem } from '../validation/ids.js';
import { registryIdProblem } from './ids.js';
import type { RegistryKeys } from './keys.js';

/** The envelope kind of registry events. */
export const REGISTRY_KIND = 'registry';

/** Events applied per script call. */
const APPLY_CHUNK = 200;

/**
 * How long a region remembers another region's unregistered connection, ms: a broker that delivers a
 * failed batch again after newer ones (docs/replication.md, "Delivery") does so within seconds, and
 * its late register is refused meanwhile. Bounded, so that a long-lived pod's closed connections do
 * not pile up in its users' hashes.
 */
export const UNREGISTERED_MEMORY_MS = 10 * 60_000;

const INC_PATTERN = /^\d{15}\.[0-9a-f]{16}$/;

/** Counters of the registry's replication. */
export interface RegistryReplicationStats {
  /** Remote events applied. */
  applied: number;
  /** Remote events that changed nothing (an older incarnation, already applied). */
  unchanged: number;
  /** Remote lease expiries refused for being too far ahead of this region's clock. */
  skewed: number;
}

/** An envelope id's number, `<origin>:<16-digit epoch>.<n>`. */
const NUMBERED_ID = /:(\d{16})\.(\d{1,15})$/;

/**
 * Where an envelope stands among its origin's, as text that compares in order: its epoch and its
 * number padded (`''` for an id without a number).
 */
export function orderOf(envelopeId: string): string {
  const m = NUMBERED_ID.exec(envelopeId);
  return m ? `${m[1]}.${(m[2] as string).padStart(15, '0')}` : '';
}

function id(value: string | undefined, what: string, envelope: Envelope): string {
  const problem = registryIdProblem(value);
  if (problem !== undefined) throw new EventError(`registry event ${envelope.id}: ${what} ${problem}`);
  return value as string;
}

/**
 * Parses a registry envelope's body (includes/registry.lua lists the forms). Throws an `EventError` for
 * anything malformed: the pipeline refuses that envelope alone, counts it and dead-letters it.
 */
export function decodeRegistryEvent(envelope: Envelope, keys: RegistryKeys): RemoteRegistryEvent {
  const parts = envelope.body.split('|');
  const [op, podRaw, inc] = parts;
  const pod = id(podRaw, 'pod', envelope);
  if (inc === undefined || !INC_PATTERN.test(inc)) {
    throw new EventError(`registry event ${envelope.id}: bad incarnation`);
  }
  const origin = envelope.origin;
  if (op === 'l' && parts.length === 4) {
    const expiresAt = Number(parts[3]);
    if (!Number.isSafeInteger(expiresAt) || expiresAt <= 0) {
      throw new EventError(`registry event ${envelope.id}: bad lease expiry`);
    }
    return { op, origin, pod, inc, expiresAt };
  }
  if (op === 'c' && parts.length === 3) return { op, origin, pod, inc };
  if ((op === 'r' && parts.length === 6) || (op === 'u' && parts.length === 5)) {
    const userId = id(parts[3], 'user id', envelope);
    const connectionId = id(parts[4], 'connection id', envelope);
    const sid = op === 'r' ? (parts[5] ?? '') : '';
    if (sid !== '' && sessionIdProblem(sid) !== undefined) {
      throw new EventError(`registry event ${envelope.id}: bad session id`);
    }
    return { op, origin, pod, inc, user: keys.user(userId), connectionId, sid, order: orderOf(envelope.id) };
  }
  throw new EventError(`registry event ${envelope.id}: malformed body`);
}

/** Options of {@link RegistryReplication}. */
export interface RegistryReplicationOptions {
  readonly client: RedisClient;
  readonly region: string;
  readonly channel: string;
  readonly transport: ReplicationTransport;
  readonly sealer: Sealer | undefined;
  readonly keys: RegistryKeys;
  /** The longest lease expiry accepted ahead of this region's clock, ms. */
  readonly maxAheadMs: number;
  onError(error: GeoSessionError): void;
  onRejected?(rejected: RejectedEnvelope): void;
}

/**
 * The registry's replication: a {@link ReplicationNode} on the registry's own channel carrying the
 * `registry` kind. The registry's scripts append their events to the node's outbox atomically with
 * their writes ({@link RegistryReplication.outbox}); events from other regions are applied by
 * `registry-apply.lua`. Forged, replayed and malformed events are refused and counted by the node's
 * pipeline like session changes.
 */
export class RegistryReplication {
  readonly node: ReplicationNode;
  readonly stats: RegistryReplicationStats = { applied: 0, unchanged: 0, skewed: 0 };
  /** Keys the registry's scripts take to append their events. */
  readonly outbox: OutboxKeys;

  constructor(options: RegistryReplicationOptions) {
    const { client, keys, maxAheadMs } = options;
    this.node = new ReplicationNode({
      region: options.region,
      channel: options.channel,
      client: client as never,
      transport: options.transport,
      sealer: options.sealer,
      onError: options.onError,
      ...(options.onRejected ? { onRejected: options.onRejected } : {}),
    });
    this.node.register<RemoteRegistryEvent>(REGISTRY_KIND, {
      decode: (envelope) => decodeRegistryEvent(envelope, keys),
      apply: async (items) => {
        for (let i = 0; i < items.length; i += APPLY_CHUNK) {
          const results = await applyRegistryEvents(
            client,
            keys,
            items.slice(i, i + APPLY_CHUNK),
            maxAheadMs,
            UNREGISTERED_MEMORY_MS,
          );
          for (const result of results) {
            if (result === RegistryApplyResult.Applied) this.stats.applied++;
            else if (result === RegistryApplyResult.Skewed) this.stats.skewed++;
            else this.stats.unchanged++;
          }
        }
      },
    });
    const append = this.node.appendKeys();
    this.outbox = { outbox: append.outbox, counter: append.counter };
  }

  start(): Promise<void> {
    return this.node.start();
  }

  close(): Promise<void> {
    return this.node.close();
  }
}
