/**
 * readCookie picks the same cookie as the parsers the frameworks use: the `cookie` package that
 * express-session depends on and the one @fastify/cookie depends on (loaded from their own install
 * locations, so the comparison follows whatever versions the apps resolve).
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCookieValue, readCookie } from '../../src/middleware/cookie-header.js';

type Parse = (header: string, options?: { decode?: (value: string) => string }) => Record<string, string>;

const require = createRequire(import.meta.url);
const requireFromExpressSession = createRequire(require.resolve('express-session'));
const expressParse = (requireFromExpressSession('cookie') as { parse: Parse }).parse;
const fastifyCookieModule = createRequire(require.resolve('@fastify/cookie')).resolve('cookie');
const fastifyParse = ((await import(pathToFileURL(fastifyCookieModule).href)) as { parseCookie: Parse })
  .parseCookie;

const raw = (value: string) => value;
const NAMES = ['connect.sid', 'sessionId', 'a'];

/** Headers built from pieces that stress the parser: names, `=`, `;`, blanks, quotes, `%`. */
const headers = fc
  .array(
    fc.oneof(
      fc.constantFrom(...NAMES, ' ', '\t', ';', '; ', '=', '"', '%', '%3A', 's:', '.', ',', 'x'),
      fc.string({ maxLength: 6 }),
    ),
    { maxLength: 24 },
  )
  .map((pieces) => pieces.join(''));

describe('readCookie', () => {
  it('picks the value that express-session’s cookie parser picks (quotes stripped, first wins)', () => {
    fc.assert(
      fc.property(headers, (header) => {
        const parsed = expressParse(header, { decode: raw });
        for (const name of NAMES) {
          const mine = readCookie(header, name);
          // The one spelling the parsers disagree on: a value that is a lone `"`.
          if (mine === '"') continue;
          expect(mine).toBe(Object.hasOwn(parsed, name) ? parsed[name] : undefined);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('picks the value that @fastify/cookie’s parser picks, except that it keeps quotes', () => {
    fc.assert(
      fc.property(headers, (header) => {
        const parsed = fastifyParse(header, { decode: raw });
        for (const name of NAMES) {
          const theirs = parsed[name];
          const unquoted =
            theirs !== undefined && theirs.length >= 2 && theirs.startsWith('"') && theirs.endsWith('"')
              ? theirs.slice(1, -1)
              : theirs;
          expect(readCookie(header, name)).toBe(unquoted);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('handles the usual shapes', () => {
    expect(readCookie('a=1; b=2', 'b')).toBe('2');
    expect(readCookie(' \tb = 2 ;a=1', 'b')).toBe('2');
    expect(readCookie('b=1; b=2', 'b')).toBe('1');
    expect(readCookie('b=; b=2', 'b')).toBe('');
    expect(readCookie('b="x=y"', 'b')).toBe('x=y');
    expect(readCookie('b=""', 'b')).toBe('');
    expect(readCookie('junk; b=2', 'b')).toBe('2');
    expect(readCookie('B=2', 'b')).toBeUndefined();
    expect(readCookie('ab=2', 'b')).toBeUndefined();
    expect(readCookie(['a=1', 'b=2'], 'b')).toBe('2');
    expect(readCookie([], 'b')).toBeUndefined();
    expect(readCookie(undefined, 'b')).toBeUndefined();
  });
});

describe('decodeCookieValue', () => {
  it('decodes percent-escapes and refuses malformed ones', () => {
    expect(decodeCookieValue('s%3Aabc.x%2By%2F')).toBe('s:abc.x+y/');
    expect(decodeCookieValue('plain+/')).toBe('plain+/');
    expect(decodeCookieValue('%')).toBeUndefined();
    expect(decodeCookieValue('%E0%A4%A')).toBeUndefined();
  });

  it('never throws', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        decodeCookieValue(value);
      }),
    );
  });
});
