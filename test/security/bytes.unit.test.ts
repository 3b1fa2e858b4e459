/** Strict base64url: canonical text decodes, anything else is refused, exactly as a round trip decides. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64url, toBase64url } from '../../src/security/bytes.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('fromBase64url', () => {
  it('decodes what toBase64url encodes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(Buffer.from(fromBase64url(toBase64url(bytes)) ?? [])).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('accepts a text exactly when it is the canonical encoding of what it decodes to', () => {
    const alphabetText = fc
      .array(fc.constantFrom(...ALPHABET.split('')), { maxLength: 12 })
      .map((chars) => chars.join(''));
    const anyText = fc.oneof(alphabetText, fc.string({ maxLength: 12 }));
    fc.assert(
      fc.property(anyText, (text) => {
        const canonical =
          /^[A-Za-z0-9_-]*$/.test(text) &&
          text.length % 4 !== 1 &&
          Buffer.from(text, 'base64url').toString('base64url') === text;
        expect(fromBase64url(text) !== undefined).toBe(canonical);
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses non-zero trailing bits, padding and other alphabets', () => {
    expect(fromBase64url('AA')).toBeDefined();
    expect(fromBase64url('AB')).toBeUndefined();
    expect(fromBase64url('AAA')).toBeDefined();
    expect(fromBase64url('AAB')).toBeUndefined();
    expect(fromBase64url('AA==')).toBeUndefined();
    expect(fromBase64url('A+/A')).toBeUndefined();
    expect(fromBase64url('A')).toBeUndefined();
  });
});
