import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { generatePasetoKey } from '../../src/security/paseto-keys.js';
import { createPasetoSealer } from '../../src/security/paseto-sealer.js';
import { DEFAULT_OPTIONS, type GeoSessionStoreOptions, resolveOptions } from '../../src/session/options.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { createMemoryTransport } from '../../src/transports/memory.js';

// Validation and defaults need no server: a lazy client never connects.
const client = new Redis({ lazyConnect: true, port: 6379, host: '127.0.0.1' });
client.on('error', () => {});
afterAll(() => client.disconnect());

function make(extra: Record<string, unknown> = {}): GeoSessionStore {
  return new GeoSessionStore({ region: 'hk', client, ...extra } as GeoSessionStoreOptions);
}

/** Runs `fn`, expects a ConfigError about `option`, and returns it. */
function configErrorOf(fn: () => unknown, option: string): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a ConfigError').toBeInstanceOf(ConfigError);
  const error = caught as ConfigError;
  expect(error.code).toBe('ERR_GEOSESSION_CONFIG');
  expect(error.option).toBe(option);
  expect(error.message).toContain(`\`${option}\``);
  return error;
}

describe('defaults (connect-redis parity)', () => {
  it('has the connect-redis defaults and exposes the client', () => {
    const store = make();
    expect(store.prefix).toBe('sess:');
    expect(store.ttl).toBe(86400);
    expect(store.scanCount).toBe(100);
    expect(store.serializer).toBe(JSON);
    expect(store.disableTouch).toBe(false);
    expect(store.disableTTL).toBe(false);
    expect(store.client).toBe(client);
    expect(store.region).toBe('hk');
    expect(DEFAULT_OPTIONS.prefix).toBe('sess:');
  });

  it("keeps an empty prefix '' (only null/undefined get the default)", () => {
    expect(make({ prefix: '' }).prefix).toBe('');
    expect(make({ prefix: undefined }).prefix).toBe('sess:');
    expect(make({ prefix: null }).prefix).toBe('sess:');
    expect(make({ prefix: 'app:' }).prefix).toBe('app:');
  });

  it('turns ttl 0 into the default 86400 (connect-redis `ttl || 86400`)', () => {
    expect(make({ ttl: 0 }).ttl).toBe(86400);
    expect(make({ ttl: 60 }).ttl).toBe(60);
    const fn = () => 5;
    expect(make({ ttl: fn }).ttl).toBe(fn);
  });

  it('keeps a custom serializer, scanCount and the disable flags', () => {
    const serializer = { parse: JSON.parse, stringify: JSON.stringify };
    const store = make({ serializer, scanCount: 7, disableTouch: true, disableTTL: true });
    expect(store.serializer).toBe(serializer);
    expect(store.scanCount).toBe(7);
    expect(store.disableTouch).toBe(true);
    expect(store.disableTTL).toBe(true);
  });

  it('warns when ttl looks like milliseconds (connect-redis#376) but accepts it', async () => {
    const codes: string[] = [];
    const onWarning = (w: Error & { code?: string }) => codes.push(String(w.code));
    process.on('warning', onWarning);
    try {
      expect(make({ ttl: 86_400_000_000 }).ttl).toBe(86_400_000_000);
      // process.emitWarning emits on a later tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(codes).toContain('GEOSESSION_TTL_UNITS');
  });
});

describe('option validation: every bad option throws a ConfigError naming it', () => {
  it('options that are not an object', () => {
    configErrorOf(() => new GeoSessionStore(undefined as unknown as GeoSessionStoreOptions), 'options');
    configErrorOf(() => new GeoSessionStore(null as unknown as GeoSessionStoreOptions), 'options');
  });

  it('region: missing, invalid, too long, uppercase, not a string', () => {
    configErrorOf(() => new GeoSessionStore({ client } as unknown as GeoSessionStoreOptions), 'region');
    configErrorOf(() => make({ region: '' }), 'region');
    configErrorOf(() => make({ region: 'hk.1' }), 'region');
    configErrorOf(() => make({ region: 'h k' }), 'region');
    configErrorOf(() => make({ region: 'a'.repeat(33) }), 'region');
    configErrorOf(() => make({ region: 'HK' }), 'region');
    configErrorOf(() => make({ region: 42 }), 'region');
    // The boundaries that are valid.
    expect(make({ region: 'a'.repeat(32) }).region).toBe('a'.repeat(32));
    expect(make({ region: 'ap-seoul-1' }).region).toBe('ap-seoul-1');
  });

  it('client: missing, or not an ioredis client', () => {
    configErrorOf(() => new GeoSessionStore({ region: 'hk' } as GeoSessionStoreOptions), 'client');
    configErrorOf(() => make({ client: {} }), 'client');
    configErrorOf(() => make({ client: null }), 'client');
    configErrorOf(() => make({ client: { get() {}, set() {} } }), 'client');
  });

  it('transport: accepted with a Redis Cluster client (sharded outboxes), before the store touches the client', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 6379 }], { lazyConnect: true });
    const listeners = cluster.listenerCount('ready');
    // With sharded outboxes (8 by default).
    const resolved = resolveOptions({
      region: 'hk',
      client: cluster,
      transport: createMemoryTransport(),
      sealer: 'none',
    });
    expect(resolved.outboxShards).toBe(8);
    configErrorOf(
      () =>
        resolveOptions({
          region: 'hk',
          client: cluster,
          transport: createMemoryTransport(),
          sealer: 'none',
          outboxShards: 0,
        }),
      'outboxShards',
    );
    configErrorOf(
      () =>
        new GeoSessionStore({
          region: 'hk',
          client: cluster,
          prefix: '{a}s:',
          outboxShards: 2,
          transport: createMemoryTransport(),
          sealer: 'none',
        }),
      'outboxShards',
    );
    configErrorOf(() => new GeoSessionStore({ region: 'hk', client: cluster, userId: () => 'u' }), 'userId');
    expect(cluster.listenerCount('ready')).toBe(listeners);
    cluster.disconnect();
  });

  it('prefix: not a string', () => {
    configErrorOf(() => make({ prefix: 5 }), 'prefix');
    configErrorOf(() => make({ prefix: {} }), 'prefix');
  });

  it('ttl: negative, NaN, Infinity, a string', () => {
    configErrorOf(() => make({ ttl: -1 }), 'ttl');
    configErrorOf(() => make({ ttl: Number.NaN }), 'ttl');
    configErrorOf(() => make({ ttl: Number.POSITIVE_INFINITY }), 'ttl');
    configErrorOf(() => make({ ttl: '60' }), 'ttl');
  });

  it('serializer: without parse, without stringify, not an object', () => {
    configErrorOf(() => make({ serializer: { stringify: JSON.stringify } }), 'serializer');
    configErrorOf(() => make({ serializer: { parse: JSON.parse } }), 'serializer');
    configErrorOf(() => make({ serializer: 'json' }), 'serializer');
  });

  it('scanCount: 0, 1.5, negative', () => {
    configErrorOf(() => make({ scanCount: 0 }), 'scanCount');
    configErrorOf(() => make({ scanCount: 1.5 }), 'scanCount');
    configErrorOf(() => make({ scanCount: -10 }), 'scanCount');
  });

  it('operationTimeoutMs, tombstoneTtl, readThroughTimeoutMs: not positive', () => {
    configErrorOf(() => make({ operationTimeoutMs: -1 }), 'operationTimeoutMs');
    configErrorOf(() => make({ operationTimeoutMs: 0 }), 'operationTimeoutMs');
    configErrorOf(() => make({ tombstoneTtl: -5 }), 'tombstoneTtl');
    configErrorOf(() => make({ readThroughTimeoutMs: Number.NaN }), 'readThroughTimeoutMs');
  });

  it("disableTTL / disableTouch: not booleans ('yes', 1)", () => {
    configErrorOf(() => make({ disableTTL: 'yes' }), 'disableTTL');
    configErrorOf(() => make({ disableTouch: 1 }), 'disableTouch');
  });

  it('an unknown option key (a typo) is named', () => {
    configErrorOf(() => make({ disableTtl: true }), 'disableTtl');
    configErrorOf(() => make({ keyPrefix: 'x:' }), 'keyPrefix');
  });

  it('transport without subscribe', () => {
    configErrorOf(() => make({ transport: {} }), 'transport');
  });

  it('remotes: not an object, naming the own region, a bad region id, a non-client', () => {
    configErrorOf(() => make({ remotes: 'kr' }), 'remotes');
    const own = configErrorOf(() => make({ remotes: { hk: client } }), 'remotes.hk');
    expect(own.message).toMatch(/own region/);
    configErrorOf(() => make({ remotes: { KR: client } }), 'remotes.KR');
    configErrorOf(() => make({ remotes: { kr: {} } }), 'remotes.kr');
    // A valid remote is accepted.
    expect(() => make({ remotes: { kr: client } })).not.toThrow();
  });

  it('sealer, acceptUnsealed, sendUnsealed: the window needs a sealer; sending unsealed needs accepting it', async () => {
    const sealer = {
      scheme: 'test',
      seal: async (p: string) => p,
      open: async (p: string) => ({ payload: p, keyId: 'k', region: undefined }),
    };
    const transport = createMemoryTransport();
    configErrorOf(() => make({ sealer: {}, transport }), 'sealer');
    configErrorOf(() => make({ sealer }), 'sealer');
    configErrorOf(() => make({ acceptUnsealed: true, transport }), 'acceptUnsealed');
    configErrorOf(() => make({ sendUnsealed: true, transport }), 'sendUnsealed');
    configErrorOf(() => make({ sealer, sendUnsealed: true, transport }), 'sendUnsealed');
    configErrorOf(
      () => make({ sealer, acceptUnsealed: true, sendUnsealed: 'yes', transport }),
      'sendUnsealed',
    );
    const resolved = resolveOptions({
      region: 'hk',
      client,
      sealer,
      acceptUnsealed: true,
      sendUnsealed: true,
      transport,
    });
    expect(resolved).toMatchObject({ acceptUnsealed: true, sendUnsealed: true });
    expect(resolveOptions({ region: 'hk', client }).sendUnsealed).toBe(false);
    await transport.close();
  });
});

describe('secure by default: a transport needs a sealer, or `sealer: "none"` said on purpose', () => {
  it('refuses a transport without a sealer, naming `sealer` and both ways out', async () => {
    const transport = createMemoryTransport();
    const error = configErrorOf(() => make({ transport }), 'sealer');
    expect(error.message).toContain('geosession/paseto');
    expect(error.message).toContain('generatePasetoKey()');
    expect(error.message).toContain("sealer: 'none'");
    await transport.close();
  });

  it("accepts `sealer: 'none'` with a transport (unsealed) and without one (nothing to seal)", async () => {
    const transport = createMemoryTransport();
    const resolved = resolveOptions({ region: 'hk', client, transport, sealer: 'none' });
    expect(resolved.sealer).toBeUndefined();
    expect(resolveOptions({ region: 'hk', client, sealer: 'none' }).sealer).toBeUndefined();
    const store = make({ transport, sealer: 'none' });
    store.on('error', () => {}); // the lazy client never connects
    await store.close();
    await transport.close();
  });

  it("accepts a real PASETO sealer, and refuses a misspelt 'none' or acceptUnsealed with 'none'", async () => {
    const transport = createMemoryTransport();
    const sealer = createPasetoSealer({
      purpose: 'local',
      deployment: 'shop',
      keys: [generatePasetoKey().key],
    });
    expect(resolveOptions({ region: 'hk', client, transport, sealer }).sealer).toBe(sealer);
    configErrorOf(() => make({ transport, sealer: 'None' }), 'sealer');
    configErrorOf(() => make({ transport, sealer: null }), 'sealer');
    configErrorOf(() => make({ transport, sealer: 'none', acceptUnsealed: true }), 'acceptUnsealed');
    await transport.close();
  });
});

describe('allowClearWithoutPrefix', () => {
  it("is a boolean, only with prefix ''", () => {
    expect(resolveOptions({ region: 'hk', client }).allowClearWithoutPrefix).toBe(false);
    expect(resolveOptions({ region: 'hk', client, prefix: '', allowClearWithoutPrefix: true })).toMatchObject(
      {
        allowClearWithoutPrefix: true,
      },
    );
    configErrorOf(() => make({ prefix: '', allowClearWithoutPrefix: 'yes' }), 'allowClearWithoutPrefix');
    configErrorOf(() => make({ allowClearWithoutPrefix: true }), 'allowClearWithoutPrefix');
  });
});
