import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidSessionIdError } from '../src/errors.js';
import { createKeySpace } from '../src/keys.js';
import { GeoSessionStore } from '../src/session/store.js';
import { eventually, freePort, hasRedis, portAnswers, sharedRedis, uniquePrefix } from './helpers/servers.js';
import { crc16, slotOf } from './helpers/slots.js';

const SIDS = ['hk.AbCdEfGhIjKlMnOpQrStUvWx', 'ZpBm7HjfQd8cIhTU7sN2Al0pYxKmXrFq', '123', 'outbox', ':m'];

describe('the CRC16 of test/helpers/slots.ts', () => {
  it('matches the values Redis documents', () => {
    // From the Redis Cluster specification / CLUSTER KEYSLOT docs.
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(slotOf('somekey')).toBe(11058);
    expect(slotOf('foo{hash_tag}')).toBe(2515);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
  });
});

describe.skipIf(!hasRedis)('key names against real Redis', () => {
  const prefix = uniquePrefix('keys');
  const redis = sharedRedis();
  const store = new GeoSessionStore({ region: 'hk', client: redis, prefix });
  afterAll(async () => {
    await store.close();
    for (const sid of SIDS)
      await redis.del(createKeySpace(prefix).session(sid), createKeySpace(prefix).meta(sid));
    redis.disconnect();
  });

  it('a set writes exactly prefix+sid and the meta key of keys.ts, for every kind of sid', async () => {
    const keys = createKeySpace(prefix);
    for (const sid of SIDS) {
      await store.set(sid, { cookie: { originalMaxAge: null }, n: sid });
      expect(await redis.get(keys.session(sid))).toBe(
        JSON.stringify({ cookie: { originalMaxAge: null }, n: sid }),
      );
      expect(await redis.type(keys.meta(sid))).toBe('string');
      expect(await store.get(sid)).toEqual({ cookie: { originalMaxAge: null }, n: sid });
    }
  });

  it('set, touch and destroy refuse ids that cannot be stored safely, and write nothing', async () => {
    const before = await redis.dbsize();
    for (const sid of ['', 'x'.repeat(600), 'y'.repeat(10_000), '{outbox}:kr', 'a|b', 'é']) {
      await expect(store.set(sid, { cookie: {} })).rejects.toBeInstanceOf(InvalidSessionIdError);
      await expect(store.touch(sid, { cookie: {} })).rejects.toBeInstanceOf(InvalidSessionIdError);
      await expect(store.destroy(sid)).rejects.toBeInstanceOf(InvalidSessionIdError);
      expect(await store.get(sid)).toBeNull();
    }
    expect(await redis.dbsize()).toBe(before);
  });
});

describe('key slots against a real cluster-mode redis-server (CLUSTER KEYSLOT)', () => {
  let proc: ChildProcess | undefined;
  let dir = '';
  let client: Redis | undefined;
  let available = false;

  beforeAll(async () => {
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'geosession-keys-'));
    try {
      proc = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--dir', dir].concat([
          '--cluster-config-file',
          'nodes.conf',
          '--save',
          '',
          '--appendonly',
          'no',
        ]),
        { stdio: 'ignore' },
      );
      proc.on('error', () => {});
      await eventually(() => portAnswers(port, 200), 10_000, 50);
      client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
      client.on('error', () => {});
      await client.connect();
      available = true;
    } catch (error) {
      console.warn(`!!! skipping CLUSTER KEYSLOT checks: no cluster-mode redis-server (${String(error)})`);
    }
  });

  afterAll(async () => {
    client?.disconnect();
    if (proc && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await once(proc, 'exit');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('Redis agrees with our slot function, and meta/value slots match, for every sid', async (ctx) => {
    if (!available || !client) return ctx.skip();
    for (const prefix of ['sess:', '', 'app{eu}:', '{eu}']) {
      const keys = createKeySpace(prefix);
      for (const sid of SIDS) {
        const valueSlot = Number(await client.call('CLUSTER', 'KEYSLOT', keys.session(sid)));
        const metaSlot = Number(await client.call('CLUSTER', 'KEYSLOT', keys.meta(sid)));
        expect(valueSlot).toBe(slotOf(keys.session(sid)));
        expect(metaSlot, `${keys.session(sid)} / ${keys.meta(sid)}`).toBe(valueSlot);
      }
    }
  });
});
