import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeySpace, hashTagOf, isInternalKey } from '../src/keys.js';
import { GeoSessionStore } from '../src/store.js';
import { eventually, freePort, hasRedis, portAnswers, sharedRedis, uniquePrefix } from './helpers/servers.js';

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster uses for key slots. Written from the spec. */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot of `key`, hash tags included, as the Redis Cluster specification defines it. */
function slotOf(key: string): number {
  const tag = hashTagOf(key);
  return crc16(Buffer.from(tag ?? key, 'utf8')) % 16384;
}

const SIDS = [
  'hk.AbCdEfGhIjKlMnOpQrStUvWx',
  'ZpBm7HjfQd8cIhTU7sN2Al0pYxKmXrFq',
  '123',
  'a{user42}b', // a sid with a hash tag of its own
  '{lead}rest',
  'x{y', // an unclosed brace: no tag, hashed whole
  'ünïcødé-🙂',
];

/**
 * Sids whose value key has no hash tag but contains a '}'. Wrapping such a key in braces for the meta key
 * gives a tag that ends at that '}', i.e. a different slot (a CROSSSLOT error under Redis Cluster). Neither
 * genid, uid-safe nor @fastify/session ids contain braces; only a custom id generator can hit this.
 */
const BRACE_SIDS = ['x{}y', 'x{}y{z}', 'ab}c', 'a}b{c}'];

describe('key names', () => {
  it('the CRC16 implementation matches the values Redis documents', () => {
    // From the Redis Cluster specification / CLUSTER KEYSLOT docs.
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(slotOf('somekey')).toBe(11058);
    expect(slotOf('foo{hash_tag}')).toBe(2515);
    expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
  });

  it('value key is prefix+sid (connect-redis compatible)', () => {
    const keys = createKeySpace('sess:');
    expect(keys.session('abc')).toBe('sess:abc');
    expect(createKeySpace('').session('abc')).toBe('abc');
    expect(keys.meta('abc')).toBe('{sess:abc}:m');
    expect(keys.outbox('hk')).toBe('{sess:outbox}:hk');
  });

  it('hashTagOf follows the cluster rules (first {, first } after it, non-empty)', () => {
    expect(hashTagOf('plain')).toBeUndefined();
    expect(hashTagOf('a{b}c')).toBe('b');
    expect(hashTagOf('a{}c{d}')).toBeUndefined();
    expect(hashTagOf('a{b')).toBeUndefined();
    expect(hashTagOf('{a}{b}')).toBe('a');
  });

  for (const prefix of ['sess:', '', 'app{eu}:', 'p:']) {
    it(`meta key shares the value key's slot and is internal (prefix ${JSON.stringify(prefix)})`, () => {
      const keys = createKeySpace(prefix);
      for (const sid of SIDS) {
        const value = keys.session(sid);
        const meta = keys.meta(sid);
        expect(slotOf(meta), `${value} vs ${meta}`).toBe(slotOf(value));
        expect(meta).not.toBe(value);
        expect(isInternalKey(meta)).toBe(true);
        expect(keys.sidOf(meta)).toBeUndefined();
        expect(keys.sidOf(keys.outbox('hk'))).toBeUndefined();
        // sidOf inverts session() unless the value key itself starts with '{' (then it is internal).
        if (!value.startsWith('{')) expect(keys.sidOf(value)).toBe(sid);
      }
    });
  }

  it.fails('KNOWN BUG (src/keys.ts): a tagless value key containing "}" gets a meta key in another slot', () => {
    // Remove `.fails` once keys.ts handles these sids.
    const keys = createKeySpace('sess:');
    for (const sid of BRACE_SIDS) expect(slotOf(keys.meta(sid)), sid).toBe(slotOf(keys.session(sid)));
  });

  it('with an ioredis keyPrefix the meta key still shares the slot of the value key', () => {
    // ioredis prepends keyPrefix to every key: the value key `kp:sess:abc` hashes whole, so the meta
    // key's tag must be the whole prefixed key (`kp:{kp:sess:abc}:m`), or Redis Cluster would answer
    // CROSSSLOT.
    const keys = createKeySpace('sess:', 'kp:');
    for (const sid of ['abc', 'hk.AbCdEfGhIjKlMnOpQrStUvWx']) {
      expect(slotOf(`kp:${keys.meta(sid)}`), sid).toBe(slotOf(`kp:${keys.session(sid)}`));
    }
  });

  it('meta keys of different sessions are different', () => {
    const keys = createKeySpace('sess:');
    const all = [...SIDS, ...BRACE_SIDS];
    const metas = new Set(all.map((sid) => keys.meta(sid)));
    expect(metas.size).toBe(all.length);
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
    for (const prefix of ['sess:', '', 'app{eu}:']) {
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
