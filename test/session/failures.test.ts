/**
 * How the store behaves when Redis misbehaves: stalled, killed, unreachable, holding garbage, missing our
 * scripts; and how it treats callbacks that throw and calls made around close(). Every test here uses a
 * private redis-server (never the machine's shared 6379) except the corrupt-value ones, which only write
 * under a unique prefix.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ClosedError,
  CorruptSessionError,
  GeoSessionError,
  GeoSessionStore,
  RedisCommandError,
  type Serializer,
  type SessionData,
  TimeoutError,
} from '../../src/index.js';
import { LUA } from '../../src/redis/lua.generated.js';
import {
  eventually,
  hasRedis,
  type PrivateRedis,
  sharedRedis,
  startRedis,
  uniquePrefix,
} from '../helpers/servers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function session(extra: Record<string, unknown> = {}, lifeMs = 60_000): SessionData {
  return {
    cookie: { originalMaxAge: lifeMs, expires: new Date(Date.now() + lifeMs).toISOString() },
    ...extra,
  };
}

/** Records every unhandled rejection while installed. */
function watchUnhandled() {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  return { seen, stop: () => process.off('unhandledRejection', listener) };
}

/** A callback that records each call. */
function recorder<T>() {
  const calls: { err: Error | null | undefined; value: T | undefined }[] = [];
  const cb = (err: Error | null | undefined, value?: T) => {
    calls.push({ err, value });
  };
  return { calls, cb };
}

/** Settles and returns the rejection reason, failing when `promise` resolves. */
async function rejection(promise: Promise<unknown> | undefined): Promise<unknown> {
  if (!promise) throw new Error('expected a promise');
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to reject');
}

/** Runs every store method that talks to Redis once, promise style. */
function everyCall(store: GeoSessionStore, sid: string): Record<string, Promise<unknown>> {
  return {
    get: store.get(sid),
    set: store.set(sid, session({ n: 2 })),
    touch: store.touch(sid, session({ n: 1 }, 120_000)),
    destroy: store.destroy(sid),
    ids: store.ids(),
    length: store.length(),
    all: store.all(),
    clear: store.clear(),
  };
}

describe.skipIf(!hasRedis)('a stalled Redis (SIGSTOP)', () => {
  let server: PrivateRedis;
  let client: Redis;
  let store: GeoSessionStore;
  let unhandled: ReturnType<typeof watchUnhandled>;
  const sid = 'stalled-1';

  beforeAll(async () => {
    server = await startRedis();
    client = server.client();
    store = new GeoSessionStore({ region: 'hk', client, operationTimeoutMs: 200 });
    await store.set(sid, session({ n: 1 }));
  });
  afterAll(async () => {
    server.resume();
    await store.close();
    await server.stop();
  });
  beforeEach(() => {
    unhandled = watchUnhandled();
  });
  afterEach(async () => {
    server.resume();
    // The stalled commands are answered once the server runs again; let their replies arrive.
    await client.ping();
    await sleep(20);
    unhandled.stop();
    expect(unhandled.seen).toEqual([]);
  });

  it('fails every promise-style call with a TimeoutError', async () => {
    server.pause();
    const calls = everyCall(store, sid);
    for (const [name, call] of Object.entries(calls)) {
      const error = await rejection(call);
      expect(error, name).toBeInstanceOf(TimeoutError);
      expect((error as TimeoutError).code, name).toBe('ERR_GEOSESSION_TIMEOUT');
    }
  });

  it('calls each callback exactly once, with the TimeoutError', async () => {
    server.pause();
    const got = {
      get: recorder<SessionData | null>(),
      set: recorder<void>(),
      touch: recorder<void>(),
      destroy: recorder<void>(),
      ids: recorder<string[]>(),
    };
    store.get(sid, got.get.cb);
    store.set(sid, session({ n: 3 }), got.set.cb);
    store.touch(sid, session({ n: 3 }, 120_000), got.touch.cb);
    store.destroy(sid, got.destroy.cb);
    store.ids(got.ids.cb);
    await eventually(() => Object.values(got).every((r) => r.calls.length > 0), 10_000);
    server.resume();
    // Let the late replies come back: they must not reach any callback a second time.
    await client.ping();
    await sleep(50);
    for (const [name, r] of Object.entries(got)) {
      expect(r.calls, name).toHaveLength(1);
      expect(r.calls[0]?.err, name).toBeInstanceOf(TimeoutError);
    }
  });
});

describe.skipIf(!hasRedis)('a killed Redis', () => {
  let server: PrivateRedis;
  let unhandled: ReturnType<typeof watchUnhandled>;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server.stop();
  });
  beforeEach(() => {
    unhandled = watchUnhandled();
  });
  afterEach(async () => {
    await sleep(20);
    unhandled.stop();
    expect(unhandled.seen).toEqual([]);
  });

  it('fails calls with a GeoSessionError, then works again after a restart with the same store', async () => {
    const client = server.client({ retryStrategy: () => 50 });
    const store = new GeoSessionStore({ region: 'hk', client, operationTimeoutMs: 300 });
    await store.set('k1', session({ n: 1 }));
    await server.kill();
    const calls = everyCall(store, 'k1');
    for (const [name, call] of Object.entries(calls)) {
      const error = await rejection(call);
      expect(error, name).toBeInstanceOf(GeoSessionError);
      expect(
        [TimeoutError, RedisCommandError].some((c) => error instanceof c),
        name,
      ).toBe(true);
    }
    await server.restart();
    await eventually(async () => {
      try {
        await store.set('k2', session({ n: 2 }));
        return true;
      } catch {
        return false;
      }
    }, 15_000);
    expect(await store.get('k2')).toMatchObject({ n: 2 });
    expect(store.connected).toBe(true);
    await store.close();
  });

  it('with enableOfflineQueue: false, fails with a RedisCommandError that has a cause', async () => {
    const client = server.client({ enableOfflineQueue: false, retryStrategy: () => 50 });
    await eventually(() => client.status === 'ready');
    const store = new GeoSessionStore({ region: 'hk', client, operationTimeoutMs: 5000 });
    await store.set('k1', session());
    await server.kill();
    await eventually(() => client.status !== 'ready');
    for (const [name, call] of Object.entries(everyCall(store, 'k1'))) {
      const error = await rejection(call);
      expect(error, name).toBeInstanceOf(RedisCommandError);
      expect((error as RedisCommandError).code, name).toBe('ERR_GEOSESSION_REDIS');
      expect((error as RedisCommandError).cause, name).toBeInstanceOf(Error);
    }
    await server.restart();
    await eventually(() => client.status === 'ready', 15_000);
    await store.set('k3', session({ n: 3 }));
    expect(await store.get('k3')).toMatchObject({ n: 3 });
    await store.close();
  });

  it('with maxRetriesPerRequest: 0, fails with a RedisCommandError that has a cause', async () => {
    const client = server.client({ maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    await eventually(() => client.status === 'ready');
    const store = new GeoSessionStore({ region: 'hk', client, operationTimeoutMs: 10_000 });
    await store.set('k1', session());
    await server.kill();
    await eventually(() => client.status !== 'ready');
    for (const [name, call] of Object.entries(everyCall(store, 'k1'))) {
      const error = await rejection(call);
      expect(error, name).toBeInstanceOf(RedisCommandError);
      expect((error as RedisCommandError).cause, name).toBeInstanceOf(Error);
    }
    await server.restart();
    await eventually(() => client.status === 'ready', 15_000);
    await store.set('k4', session({ n: 4 }));
    expect(await store.get('k4')).toMatchObject({ n: 4 });
    await store.close();
  });

  it('destroy() without a callback on a dead server causes no unhandled rejection', async () => {
    const client = server.client({ retryStrategy: () => 50 });
    await eventually(() => client.status === 'ready');
    const store = new GeoSessionStore({ region: 'hk', client, operationTimeoutMs: 200 });
    await server.kill();
    const held = store.destroy('gone'); // kept, but only looked at after it has long settled
    store.destroy('gone', undefined); // express-session's req.session.destroy() with no callback
    // Both settle within operationTimeoutMs (200 ms) plus one sweep; give them ample time.
    await sleep(1000);
    unhandled.stop();
    expect(unhandled.seen).toEqual([]);
    expect(await rejection(held)).toBeInstanceOf(GeoSessionError);
    await server.restart();
    await store.close();
  });
});

describe.skipIf(!hasRedis)('connect / disconnect events', () => {
  let server: PrivateRedis;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('follow the client: one disconnect per outage, one connect per recovery, never latched', async () => {
    const client = server.client({ retryStrategy: () => 30 });
    await eventually(() => client.status === 'ready');
    const store = new GeoSessionStore({ region: 'hk', client, operationTimeoutMs: 500 });
    let reconnects = 0;
    client.on('reconnecting', () => reconnects++);
    const events: string[] = [];
    store.on('connect', () => events.push('connect'));
    store.on('disconnect', () => events.push('disconnect'));
    expect(store.connected).toBe(true);

    for (let cycle = 1; cycle <= 2; cycle++) {
      await server.kill();
      await eventually(() => events.length === 2 * cycle - 1);
      const before = reconnects;
      // Several failed reconnect attempts (each closes a socket) must not repeat the event.
      await eventually(() => reconnects >= before + 3);
      expect(store.connected).toBe(false);
      expect(events.filter((e) => e === 'disconnect')).toHaveLength(cycle);
      expect(events.filter((e) => e === 'connect')).toHaveLength(cycle - 1);

      await server.restart();
      await eventually(() => events.length === 2 * cycle, 15_000);
      await client.ping();
      await sleep(50);
      expect(store.connected).toBe(true);
      expect(events).toEqual(Array.from({ length: cycle }, () => ['disconnect', 'connect']).flat());
    }
    await store.close();
  });

  it('are not flipped by a command error or an error event without a close', async () => {
    const client = server.client();
    await eventually(() => client.status === 'ready');
    const prefix = uniquePrefix('failures-events');
    const store = new GeoSessionStore({ region: 'hk', client, prefix });
    const events: string[] = [];
    store.on('connect', () => events.push('connect'));
    store.on('disconnect', () => events.push('disconnect'));
    // Metadata of another type: set.lua's GET fails with WRONGTYPE.
    const meta = `{${prefix}wrongtype}:m`;
    await client.hset(meta, 'a', '1');
    expect(await rejection(store.set('wrongtype', { cookie: {} }))).toBeInstanceOf(RedisCommandError);
    client.emit('error', new Error('a transient error'));
    await sleep(20);
    expect(events).toEqual([]);
    expect(store.connected).toBe(true);
    await client.del(meta);
    await store.close();
  });
});

describe.skipIf(!hasRedis)('corrupt stored values', () => {
  const client = sharedRedis({ lazyConnect: true });
  const prefixes: string[] = [];

  function storeWith(serializer?: Serializer) {
    const prefix = uniquePrefix('failures-corrupt');
    prefixes.push(prefix);
    return { prefix, store: new GeoSessionStore({ region: 'hk', client, prefix, serializer }) };
  }

  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = [...(await client.keys(`${prefix}*`)), ...(await client.keys(`{${prefix}*`))];
      if (keys.length > 0) await client.del(...keys);
    }
    client.disconnect();
  });

  async function expectCorrupt(store: GeoSessionStore, sid: string, cause: unknown) {
    const error = await rejection(store.get(sid));
    expect(error).toBeInstanceOf(CorruptSessionError);
    expect((error as CorruptSessionError).code).toBe('ERR_GEOSESSION_CORRUPT');
    expect((error as CorruptSessionError).sid).toBe(sid);
    expect((error as CorruptSessionError).message).toContain(sid);
    expect((error as CorruptSessionError).cause).toBeInstanceOf(cause);
    const viaCallback = recorder<SessionData | null>();
    store.get(sid, viaCallback.cb);
    await eventually(() => viaCallback.calls.length > 0);
    expect(viaCallback.calls[0]?.err).toBeInstanceOf(CorruptSessionError);
    // Only that call failed: a good session reads fine, and the bulk read reports the corruption.
    expect(await store.get('good')).toMatchObject({ user: 'good' });
    expect(await rejection(store.all())).toBeInstanceOf(CorruptSessionError);
    expect(await store.ids()).toEqual(expect.arrayContaining(['good', sid]));
  }

  it('garbage written to the value key', async () => {
    const { prefix, store } = storeWith();
    await store.set('good', session({ user: 'good' }));
    await client.set(`${prefix}bad`, '{"cookie": not json', 'PX', 60_000);
    await expectCorrupt(store, 'bad', SyntaxError);
    await store.close();
  });

  it('a serializer whose parse throws', async () => {
    const failure = new RangeError('cannot parse this one');
    const { store } = storeWith({
      stringify: (s) => JSON.stringify(s),
      parse: (text) => {
        if (text.includes('"poison"')) throw failure;
        return JSON.parse(text);
      },
    });
    await store.set('good', session({ user: 'good' }));
    await store.set('bad', session({ user: 'poison' }));
    await expectCorrupt(store, 'bad', RangeError);
    await store.close();
  });

  it('a serializer whose parse returns null', async () => {
    const { store } = storeWith({
      stringify: (s) => JSON.stringify(s),
      parse: (text) => (text.includes('"poison"') ? (null as unknown as SessionData) : JSON.parse(text)),
    });
    await store.set('good', session({ user: 'good' }));
    await store.set('bad', session({ user: 'poison' }));
    await expectCorrupt(store, 'bad', TypeError);
    await store.close();
  });

  it('never calls a throwing callback twice, on success or on failure, and never rethrows', async () => {
    const { prefix, store } = storeWith();
    await store.set('good', session({ user: 'good' }));
    await client.set(`${prefix}bad`, 'garbage', 'PX', 60_000);
    const reported: Error[] = [];
    store.on('error', (error) => reported.push(error));
    for (const sid of ['good', 'bad']) {
      const thrown = new Error(`thrown by the callback for ${sid}`);
      let calls = 0;
      const caught: unknown[] = [];
      // Take any rethrow away from the test runner, which would report it as an unhandled error.
      const others = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.on('uncaughtException', (error) => caught.push(error));
      reported.length = 0;
      try {
        store.get(sid, () => {
          calls++;
          throw thrown;
        });
        await eventually(() => reported.length > 0 || caught.length > 0);
        await client.ping();
        await sleep(30);
      } finally {
        process.removeAllListeners('uncaughtException');
        for (const l of others) process.on('uncaughtException', l);
      }
      expect(calls, sid).toBe(1);
      expect(caught, sid).toEqual([]);
      expect(
        reported.map((e) => (e as GeoSessionError).code),
        sid,
      ).toEqual(['ERR_GEOSESSION_CALLBACK']);
      expect(reported[0]?.cause, sid).toBe(thrown);
    }
    await store.close();
  });
});

describe.skipIf(!hasRedis)('close()', () => {
  let server: PrivateRedis;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    server.resume();
    await server.stop();
  });

  it('rejects pending calls on a stalled server and every later call with a ClosedError', async () => {
    const client = server.client();
    await eventually(() => client.status === 'ready');
    const store = new GeoSessionStore({ region: 'hk', client, operationTimeoutMs: 30_000 });
    await store.set('c1', session());
    const unhandled = watchUnhandled();
    server.pause();
    try {
      const pending = everyCall(store, 'c1');
      const viaCallback = recorder<SessionData | null>();
      store.get('c1', viaCallback.cb);
      await sleep(50);
      await store.close();
      for (const [name, call] of Object.entries(pending)) {
        const error = await rejection(call);
        expect(error, name).toBeInstanceOf(ClosedError);
        expect((error as ClosedError).code, name).toBe('ERR_GEOSESSION_CLOSED');
      }
      await eventually(() => viaCallback.calls.length > 0);
      expect(viaCallback.calls[0]?.err).toBeInstanceOf(ClosedError);
    } finally {
      server.resume();
    }
    await client.ping();
    await sleep(20);
    for (const [name, call] of Object.entries(everyCall(store, 'c1'))) {
      expect(await rejection(call), name).toBeInstanceOf(ClosedError);
    }
    const later = recorder<void>();
    store.set('c1', session(), later.cb);
    await eventually(() => later.calls.length > 0);
    expect(later.calls[0]?.err).toBeInstanceOf(ClosedError);
    unhandled.stop();
    expect(unhandled.seen).toEqual([]);
    expect(client.status).toBe('ready');
  });

  it('never quits the client', async () => {
    const client = server.client();
    await eventually(() => client.status === 'ready');
    const store = new GeoSessionStore({ region: 'hk', client });
    await store.set('c2', session());
    await store.close();
    await sleep(20);
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
  });
});

describe.skipIf(!hasRedis)('scripts missing from the server cache', () => {
  let server: PrivateRedis;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('falls back from EVALSHA to EVAL after SCRIPT FLUSH', async () => {
    const client = server.client();
    const store = new GeoSessionStore({ region: 'hk', client });
    const refused: unknown[] = [];
    store.on('refused', (r) => refused.push(r));
    const flush = async () => {
      await client.script('FLUSH');
      const known = (await client.script('EXISTS', LUA.set.sha, LUA.touch.sha, LUA.destroy.sha)) as number[];
      expect(known).toEqual([0, 0, 0]);
    };

    await flush();
    await store.set('f1', session({ n: 1 }));
    expect(await store.get('f1')).toMatchObject({ n: 1 });
    expect(await client.script('EXISTS', LUA.set.sha)).toEqual([1]);

    await flush();
    const later = new Date(Date.now() + 600_000).toISOString();
    await store.touch('f1', { ...session({ n: 1 }), cookie: { originalMaxAge: 600_000, expires: later } });
    // Redis made the expiry from the remaining lifetime: a call's duration after `later`.
    const at = Number(await client.pexpiretime('sess:f1'));
    expect(at).toBeGreaterThanOrEqual(Date.parse(later));
    expect(at).toBeLessThan(Date.parse(later) + 1000);

    await flush();
    await store.destroy('f1');
    expect(await client.exists('sess:f1')).toBe(0);

    await flush();
    await store.set('f1', session({ n: 2 }));
    expect(refused).toEqual([{ op: 'set', sid: 'f1', reason: 'destroyed' }]);
    expect(await store.get('f1')).toBeNull();
    await store.close();
  });
});
