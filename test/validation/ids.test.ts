import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { GeoSessionStore } from '../../src/session/store.js';
import { generateSessionId, isValidRegion, regionOfSessionId } from '../../src/validation/ids.js';

const client = new Redis({ lazyConnect: true, port: 6379, host: '127.0.0.1' });
client.on('error', () => {});
afterAll(() => client.disconnect());

/** Characters allowed in a cookie value without quoting (RFC 6265 cookie-octet), minus '%'. */
const COOKIE_SAFE = /^[A-Za-z0-9._-]+$/;

describe('generated session ids', () => {
  it('look like `<region>.<24 base64url chars>` and use only cookie-safe characters', () => {
    for (const region of ['hk', 'ap-seoul-1', 'a'.repeat(32), '0']) {
      const sid = generateSessionId(region);
      expect(sid).toMatch(/^[a-z0-9-]{1,32}\.[A-Za-z0-9_-]{24}$/);
      expect(sid.startsWith(`${region}.`)).toBe(true);
      expect(sid).toMatch(COOKIE_SAFE);
      expect(encodeURIComponent(sid)).toBe(sid);
    }
  });

  it('carry at least 128 random bits: 24 base64url chars decode to 18 bytes (144 bits)', () => {
    const random = generateSessionId('hk').split('.')[1] as string;
    expect(random).toHaveLength(24);
    expect(Buffer.from(random, 'base64url')).toHaveLength(18);
    expect(18 * 8).toBeGreaterThanOrEqual(128);
  });

  it('are unique and their characters spread over the whole alphabet', () => {
    const ids = new Set<string>();
    const chars = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const sid = generateSessionId('hk');
      ids.add(sid);
      for (const c of sid.slice(3)) chars.add(c);
    }
    expect(ids.size).toBe(20_000);
    // 480k random characters: all 64 base64url symbols show up (a constant or biased part would not).
    expect(chars.size).toBe(64);
  });

  it('store.genid works unbound (express-session calls it as a plain function)', () => {
    const store = new GeoSessionStore({ region: 'eu-west', client });
    const g = store.genid;
    const sid = g();
    expect(sid).toMatch(/^eu-west\.[A-Za-z0-9_-]{24}$/);
    expect(g({ headers: {} })).not.toBe(sid);
    expect([1, 2].map(store.genid)).toHaveLength(2);
  });

  it('regionOf / regionOfSessionId round-trip the region', () => {
    const store = new GeoSessionStore({ region: 'us-east-2', client });
    const sid = store.genid();
    expect(store.regionOf(sid)).toBe('us-east-2');
    expect(regionOfSessionId(sid)).toBe('us-east-2');
    expect(regionOfSessionId(generateSessionId('kr'))).toBe('kr');
  });

  it('regionOf is undefined for uid-safe / fastify style ids and garbage', () => {
    const store = new GeoSessionStore({ region: 'hk', client });
    const notOurs = [
      'ZpBm7HjfQd8cIhTU7sN2Al0pYxKmXrFq', // uid-safe(24): 32 base64url chars, no '.'
      'hGl4vwE2pV0FwD-bCZTtXk0KzQ7a1N9r', // fastify: 24 bytes base64url
      '',
      '.',
      'hk.',
      'hk.short',
      `hk.${'A'.repeat(23)}`,
      `hk.${'A'.repeat(25)}`,
      `HK.${'A'.repeat(24)}`,
      `${'a'.repeat(33)}.${'A'.repeat(24)}`,
      `hk.${'A'.repeat(23)}=`,
      `hk.${'A'.repeat(23)}+`,
      `x.hk.${'A'.repeat(24)}`,
      `hk.${'A'.repeat(24)}\n`,
      '123',
    ];
    for (const sid of notOurs) {
      expect(store.regionOf(sid), JSON.stringify(sid)).toBeUndefined();
      expect(regionOfSessionId(sid), JSON.stringify(sid)).toBeUndefined();
    }
  });

  it('isValidRegion follows /^[a-z0-9-]{1,32}$/', () => {
    expect(isValidRegion('hk')).toBe(true);
    expect(isValidRegion('a'.repeat(32))).toBe(true);
    expect(isValidRegion('a'.repeat(33))).toBe(false);
    expect(isValidRegion('Hk')).toBe(false);
    expect(isValidRegion('h_k')).toBe(false);
    expect(isValidRegion(undefined)).toBe(false);
  });
});
