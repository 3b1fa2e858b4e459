/**
 * The pipeline's side of "transient is retried, only the deterministic is dead-lettered": an apply that
 * fails with a transient Redis error reply fails the batch (delivered again by the transport), is
 * counted by reason and reported once per interval; one that fails deterministically is narrowed down
 * to its envelope and refused as poison while the others are applied. Over the memory transport, with
 * ioredis's own ReplyError as Redis raises it (the integration tests meet the real replies).
 */
import { ReplyError } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { type GeoSessionError, TransientError } from '../../src/errors.js';
import { createMemoryTransport } from '../../src/index.js';
import { Pipeline, type RejectedEnvelope } from '../../src/replication/pipeline.js';
import { eventually } from '../helpers/eventually.js';

const OOM = "OOM command not allowed when used memory > 'maxmemory'. script: 1f, on @user_script:40.";

let transport: ReplicationTransport | undefined;

afterEach(async () => {
  await transport?.close();
  transport = undefined;
});

function envelope(n: number): Envelope {
  return { id: `hk:${n}-0`, origin: 'hk', kind: 'k', time: Date.now(), body: String(n) };
}

/** kr's pipeline over a memory transport, with `apply` as the kind's handler. */
async function receiver(apply: (items: string[]) => Promise<void>) {
  const t = createMemoryTransport({ regions: ['hk', 'kr'], retryDelayMs: 0 });
  transport = t;
  const errors: GeoSessionError[] = [];
  const rejected: RejectedEnvelope[] = [];
  const pipeline = new Pipeline({
    region: 'kr',
    channel: 'c:',
    transport: t,
    sealer: undefined,
    acceptUnsealed: false,
    deadLetters: undefined,
    now: () => Date.now(),
    onError: (e) => errors.push(e),
    onRejected: (r) => rejected.push(r),
  });
  pipeline.register<string>('k', { decode: (e) => e.body, apply });
  await pipeline.subscribe({ source: 'published', relayed: true });
  return { t, pipeline, errors, rejected };
}

describe('transient failures in the pipeline', () => {
  it('an OOM fails the batch, which comes again; counted, reported once, nothing refused', async () => {
    const applied = new Set<string>();
    let failures = 0;
    const { t, pipeline, errors, rejected } = await receiver(async (items) => {
      if (failures < 5) {
        failures++;
        throw new ReplyError(OOM);
      }
      for (const item of items) applied.add(item);
    });
    await t.publish('c:', [envelope(1), envelope(2), envelope(3)]);
    await eventually(() => applied.size === 3);
    expect(rejected).toEqual([]);
    expect(pipeline.stats.rejected).toEqual({});
    expect(pipeline.stats.transient.count).toBe(5);
    expect(pipeline.stats.transient.byReason).toEqual({ OOM: 5 });
    expect(pipeline.stats.transient.last?.reason).toBe('OOM');
    const reported = errors.filter((e) => e instanceof TransientError);
    expect(reported).toHaveLength(1); // once per interval, not once per retry
    expect(reported[0]).toMatchObject({ code: 'ERR_GEOSESSION_TRANSIENT', reason: 'OOM' });
    expect(errors).toEqual(reported);
  });

  it('a lost connection is transient too', async () => {
    let failures = 0;
    const applied = new Set<string>();
    const { t, pipeline, rejected } = await receiver(async (items) => {
      if (failures++ < 2) throw new Error('Connection is closed.');
      for (const item of items) applied.add(item);
    });
    await t.publish('c:', [envelope(1)]);
    await eventually(() => applied.size === 1);
    expect(rejected).toEqual([]);
    expect(pipeline.stats.transient.byReason).toEqual({ CONNECTION: 2 });
  });

  it('a deterministic reply (WRONGTYPE) is narrowed down to its envelope and refused; the others apply', async () => {
    const applied = new Set<string>();
    const { t, pipeline, rejected } = await receiver(async (items) => {
      if (items.includes('2'))
        throw new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value');
      for (const item of items) applied.add(item);
    });
    await t.publish('c:', [envelope(1), envelope(2), envelope(3), envelope(4)]);
    await eventually(() => applied.size === 3);
    expect([...applied].sort()).toEqual(['1', '3', '4']);
    expect(rejected.map((r) => [r.reason, r.id])).toEqual([['poison', 'hk:2-0']]);
    expect(pipeline.stats.transient.count).toBe(0);
  });
});
