/**
 * Tracing hooks (issue 16 part 4): store operations and replication batches publish on
 * node:diagnostics_channel, with the store's region and keyspace and never a session id.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ReplicationBatchMessage,
  type ReplicationLagMessage,
  type SessionData,
  type StoreOperationMessage,
  TRACING_CHANNELS,
} from '../../src/index.js';
import { eventually } from '../helpers/eventually.js';
import { type MemoryRegions, openMemoryRegions } from '../helpers/memory-regions.js';
import { hasRedis, uniquePrefix } from '../helpers/servers.js';

function session(data: Record<string, unknown>): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    ...data,
  };
}

type Event = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error';

/** Subscribes to every event of a tracing channel; returns what it saw and the unsubscribe. */
function record<M extends object>(name: string) {
  const seen: { event: Event; message: M }[] = [];
  const channel = diagnostics.tracingChannel<object, M>(name);
  const on = (event: Event) => (message: M) => {
    seen.push({ event, message: { ...message } });
  };
  const handlers = {
    start: on('start'),
    end: on('end'),
    asyncStart: on('asyncStart'),
    asyncEnd: on('asyncEnd'),
    error: on('error'),
  };
  channel.subscribe(handlers);
  return { seen, stop: () => channel.unsubscribe(handlers) };
}

describe.skipIf(!hasRedis)('tracing on node:diagnostics_channel', () => {
  let regions: MemoryRegions | undefined;
  const stops: (() => void)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop();
    await regions?.close();
    regions = undefined;
  });

  it('store operations publish start, end, asyncStart and asyncEnd with op, region, keyspace and result', async () => {
    const prefix = uniquePrefix('trace-ops');
    regions = await openMemoryRegions(prefix);
    const { hk } = regions;
    const store = record<StoreOperationMessage>(TRACING_CHANNELS.store);
    stops.push(store.stop);
    const sid = hk.genid();
    await hk.set(sid, session({ user: 'ana' }));
    expect(await hk.get(sid)).toMatchObject({ user: 'ana' });
    expect(await hk.get(hk.genid())).toBeNull();
    await hk.touch(sid, session({ user: 'ana' }));
    await hk.destroy(sid);
    expect(await hk.length()).toBe(0);

    const mine = store.seen.filter((s) => s.message.keyspace === prefix && s.message.region === 'hk');
    const ends = mine.filter((s) => s.event === 'asyncEnd').map((s) => `${s.message.op}:${s.message.result}`);
    expect(ends).toEqual(['set:ok', 'get:hit', 'get:miss', 'touch:ok', 'destroy:ok', 'length:ok']);
    // Every operation has its whole life: start, end (sync part), asyncStart, asyncEnd.
    expect(mine.filter((s) => s.event === 'start')).toHaveLength(6);
    expect(mine.filter((s) => s.event === 'end')).toHaveLength(6);
    expect(mine.filter((s) => s.event === 'asyncStart')).toHaveLength(6);
    // Never a session id, nor the session's content.
    expect(JSON.stringify(store.seen)).not.toContain(sid);
    expect(JSON.stringify(store.seen)).not.toContain('ana');
  });

  it('a failed operation publishes error with the error, in callback and promise styles', async () => {
    const prefix = uniquePrefix('trace-err');
    regions = await openMemoryRegions(prefix);
    const { hk } = regions;
    const store = record<StoreOperationMessage>(TRACING_CHANNELS.store);
    stops.push(store.stop);
    await hk.close();
    await expect(hk.get(hk.genid())).rejects.toThrow(/closed/);
    await new Promise<void>((resolve) => hk.set(hk.genid(), session({}), () => resolve()));
    await expect(hk.ids()).rejects.toThrow(/closed/);
    const errors = store.seen.filter((s) => s.event === 'error' && s.message.keyspace === prefix);
    expect(errors.map((s) => s.message.op)).toEqual(['get', 'set', 'ids']);
    for (const e of errors) expect(e.message.error).toBeInstanceOf(Error);
  });

  it("a subscriber's async context reaches the operation's callback (what OpenTelemetry binds spans with)", async () => {
    const prefix = uniquePrefix('trace-als');
    regions = await openMemoryRegions(prefix);
    const { hk } = regions;
    const als = new AsyncLocalStorage<string>();
    const channel = diagnostics.tracingChannel<string, StoreOperationMessage>(TRACING_CHANNELS.store);
    channel.start.bindStore(als, (message) => `span:${message.op}`);
    channel.asyncStart.bindStore(als, (message) => `span:${message.op}`);
    stops.push(() => {
      channel.start.unbindStore(als);
      channel.asyncStart.unbindStore(als);
    });
    const seen = await new Promise<string | undefined>((resolve) =>
      hk.get(hk.genid(), () => resolve(als.getStore())),
    );
    expect(seen).toBe('span:get');
  });

  it('replication publishes apply and publish batches and the lag of every change, per store', async () => {
    const prefix = uniquePrefix('trace-repl');
    regions = await openMemoryRegions(prefix);
    const { hk, kr } = regions;
    const apply = record<ReplicationBatchMessage>(TRACING_CHANNELS.apply);
    const publish = record<ReplicationBatchMessage>(TRACING_CHANNELS.publish);
    const lags: ReplicationLagMessage[] = [];
    const onLag = (message: unknown) => lags.push(message as ReplicationLagMessage);
    diagnostics.subscribe(TRACING_CHANNELS.lag, onLag);
    stops.push(apply.stop, publish.stop, () => diagnostics.unsubscribe(TRACING_CHANNELS.lag, onLag));

    const sid = hk.genid();
    await hk.set(sid, session({ n: 1 }));
    await eventually(async () => (await kr.get(sid)) !== null);
    await eventually(() => lags.some((l) => l.keyspace === prefix && l.region === 'kr' && l.origin === 'hk'));

    // A batch's asyncEnd comes once its promise settled, after what it did was visible.
    const ended = (seen: typeof publish.seen, region: string) =>
      seen.filter(
        (s) => s.message.keyspace === prefix && s.message.region === region && s.event === 'asyncEnd',
      );
    await eventually(() => ended(publish.seen, 'hk').length > 0 && ended(apply.seen, 'kr').length > 0);
    const published = ended(publish.seen, 'hk');
    expect(published[0]?.message.transport).toBe('memory');
    expect(published[0]?.message.envelopes).toBeGreaterThan(0);
    expect(ended(apply.seen, 'kr').some((s) => s.message.error === undefined)).toBe(true);
    const lag = lags.find((l) => l.keyspace === prefix && l.region === 'kr');
    expect(lag?.lagMs).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify([apply.seen, publish.seen, lags])).not.toContain(sid);
  });

  it('publishes nothing while nobody subscribes', () => {
    for (const name of [TRACING_CHANNELS.store, TRACING_CHANNELS.apply, TRACING_CHANNELS.publish]) {
      expect(diagnostics.tracingChannel(name).hasSubscribers).toBe(false);
    }
    expect(diagnostics.hasSubscribers(TRACING_CHANNELS.lag)).toBe(false);
    expect(diagnostics.hasSubscribers(TRACING_CHANNELS.readThrough)).toBe(false);
  });
});
