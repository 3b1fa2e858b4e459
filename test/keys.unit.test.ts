import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createKeySpace, prefixProblem } from '../src/keys.js';
import { isValidSessionId, MAX_SESSION_ID_LENGTH, sessionIdProblem } from '../src/validation/ids.js';
import { hashTagOf, type InternalFamily } from '../src/wire/internal-keys.js';
import { slotOf } from './helpers/slots.js';

const FAMILIES: InternalFamily[] = ['outbox', 'relay', 'dead', 'state'];
const REGIONS = ['hk', 'kr', 'm', 'us-east-1'];

const SIDS = [
  'hk.AbCdEfGhIjKlMnOpQrStUvWx',
  'ZpBm7HjfQd8cIhTU7sN2Al0pYxKmXrFq',
  '123',
  'outbox',
  'm',
  ':m',
  'a:b:c',
];

/** Every key a store with `prefix` (and client keyPrefix `kp`) may write for `sids`, by what it is. */
function keysOf(prefix: string, sids: readonly string[], kp = ''): Map<string, string> {
  const keys = createKeySpace(prefix, kp);
  const out = new Map<string, string>();
  const add = (key: string, what: string) => {
    const seen = out.get(key);
    if (seen !== undefined && seen !== what)
      throw new Error(`${JSON.stringify(key)} is both ${seen} and ${what}`);
    out.set(key, what);
  };
  for (const sid of sids) {
    add(keys.session(sid), `value of ${sid}`);
    add(keys.meta(sid), `meta of ${sid}`);
  }
  for (const family of FAMILIES)
    for (const region of REGIONS) add(keys.internal(family, region), `${family} ${region}`);
  return out;
}

/** Strings with a good share of the characters that matter: braces, bars, colons, non-ASCII. */
const tricky = fc.string({
  unit: fc.oneof(
    fc.constantFrom('{', '}', '|', ':', 'm', 'o', 'u', 't', 'b', 'x', ' ', 'é', '\n'),
    fc.string({ minLength: 1, maxLength: 1 }),
  ),
  maxLength: 12,
});

describe('key names', () => {
  it('value key is prefix+sid (connect-redis compatible); metadata and internal keys are tagged', () => {
    const keys = createKeySpace('sess:');
    expect(keys.session('abc')).toBe('sess:abc');
    expect(createKeySpace('').session('abc')).toBe('abc');
    expect(keys.meta('abc')).toBe('{sess:abc}:m');
    expect(keys.internal('outbox', 'hk')).toBe('{sess:|outbox}:hk');
    expect(createKeySpace('{app}sess:').internal('outbox', 'hk')).toBe('{app}sess:|outbox:hk');
    expect(createKeySpace('{app}sess:').meta('abc')).toBe('{app}:m:{app}sess:abc');
    expect(keys.status('hk')).toBe('{sess:|status}:hk');
    expect(createKeySpace('{app}sess:').status('hk')).toBe('{app}sess:|status:hk');
  });

  it('hashTagOf follows the cluster rules (first {, first } after it, non-empty)', () => {
    expect(hashTagOf('plain')).toBeUndefined();
    expect(hashTagOf('a{b}c')).toBe('b');
    expect(hashTagOf('a{}c{d}')).toBeUndefined();
    expect(hashTagOf('a{b')).toBeUndefined();
    expect(hashTagOf('{a}{b}')).toBe('a');
  });

  it('refuses ids that cannot be stored or replicated safely, and names why', () => {
    for (const sid of [
      '',
      'a{b}',
      '{outbox}:kr',
      'x}:m:sess:{sess:x',
      '{sess:x}:m',
      'a|b',
      'a b',
      'a\nb',
      'é',
      '\u0000',
    ]) {
      expect(isValidSessionId(sid), JSON.stringify(sid)).toBe(false);
      expect(sessionIdProblem(sid)).toBeTypeOf('string');
    }
    expect(isValidSessionId('x'.repeat(MAX_SESSION_ID_LENGTH))).toBe(true);
    expect(sessionIdProblem('x'.repeat(MAX_SESSION_ID_LENGTH + 1))).toMatch(/at most 256/);
    expect(sessionIdProblem(42)).toMatch(/not a string/);
    for (const sid of SIDS) expect(isValidSessionId(sid)).toBe(true);
  });

  it('refuses prefixes holding "|" or braces other than one hash tag', () => {
    for (const prefix of ['a|b', '{', '}', 'a{b', 'a}b', '{}x', '{a}{b}', '{a}b}']) {
      expect(prefixProblem(prefix), prefix).toBeTypeOf('string');
    }
    for (const prefix of ['', 'sess:', '{app}sess:', 'app{eu}:', 'x'])
      expect(prefixProblem(prefix), prefix).toBeUndefined();
  });

  for (const prefix of ['sess:', '', 'app{eu}:', '{eu}']) {
    it(`every key is distinct, metadata shares its value's slot (prefix ${JSON.stringify(prefix)})`, () => {
      const all = keysOf(prefix, SIDS);
      expect(all.size).toBe(SIDS.length * 2 + FAMILIES.length * REGIONS.length);
      const keys = createKeySpace(prefix);
      for (const sid of SIDS) {
        expect(slotOf(keys.meta(sid))).toBe(slotOf(keys.session(sid)));
        expect(keys.sidOf(keys.session(sid))).toBe(sid);
        expect(keys.sidOf(keys.meta(sid))).toBeUndefined();
      }
      for (const family of FAMILIES) expect(keys.sidOf(keys.internal(family, 'hk'))).toBeUndefined();
    });
  }

  it('property: whatever the prefix and ids, no id reaches another id’s key or an internal key', () => {
    fc.assert(
      fc.property(
        tricky,
        fc.array(tricky, { maxLength: 8 }),
        fc.constantFrom('', 'kp:', '{kp}'),
        (prefix, ids, kp) => {
          fc.pre(prefixProblem(prefix) === undefined);
          const valid = [...new Set(ids.filter(isValidSessionId))];
          const all = keysOf(prefix, valid, kp); // throws on any collision
          const keys = createKeySpace(prefix, kp);
          for (const sid of valid) {
            expect(slotOf(kp + keys.meta(sid))).toBe(slotOf(kp + keys.session(sid)));
            expect(keys.sidOf(keys.session(sid))).toBe(sid);
          }
          // A key a SCAN finds is a session only when it is one.
          for (const [key, what] of all) {
            const sid = keys.sidOf(key);
            if (sid !== undefined) expect(what).toBe(`value of ${sid}`);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('property: an id is valid exactly when it is 1-256 printable ASCII characters without { } |', () => {
    fc.assert(
      fc.property(
        fc.oneof(tricky, fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 20 })),
        (sid) => {
          const expected =
            sid.length >= 1 &&
            sid.length <= 256 &&
            [...sid].every((c) => c >= '!' && c <= '~' && !'{}|'.includes(c));
          expect(isValidSessionId(sid)).toBe(expected);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
