/**
 * The sealer's v4.local path (native ChaCha20 stream, BLAKE2b in WebAssembly or JavaScript): every
 * official v4.local vector, byte for byte, with both BLAKE2b implementations; tokens interchangeable with
 * the reference primitives; XChaCha20 equal to noble's on arbitrary inputs; every flipped bit refused.
 */
import { readFileSync } from 'node:fs';
import { xchacha20 as nobleXChaCha20 } from '@noble/ciphers/chacha.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toBase64url, utf8 } from '../../src/security/bytes.js';
import { decryptV4Local, encryptV4Local } from '../../src/security/paseto-v4-local.js';
import {
  decryptV4LocalFast,
  encryptV4LocalFast,
  type KeyedBlake2b,
  nobleBlake2b,
  wasmBlake2b,
  xchacha20,
} from '../../src/security/paseto-v4-local-fast.js';

interface TokenVector {
  name: string;
  'expect-fail': boolean;
  key?: string;
  nonce?: string;
  token: string;
  payload: string | null;
  footer: string;
  'implicit-assertion': string;
}

const vectors = (
  JSON.parse(readFileSync(new URL('../fixtures/paseto/v4.json', import.meta.url), 'utf8')) as {
    tests: TokenVector[];
  }
).tests.filter((v) => !v['expect-fail'] && v.token.startsWith('v4.local.'));
const hex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

const wasm = await wasmBlake2b();

describe('the sealer’s v4.local path', () => {
  it('finds hash-wasm (a dev dependency) and computes the same keyed BLAKE2b as noble', async () => {
    expect(wasm).toBeDefined();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 600 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.integer({ min: 1, max: 64 }),
        async (data, key, bytes) => {
          const a = await (wasm as KeyedBlake2b)(data, key, bytes);
          expect(Buffer.from(a)).toEqual(Buffer.from(await nobleBlake2b(data, key, bytes)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('XChaCha20 on node:crypto equals noble’s, for any key, nonce and length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        fc.uint8Array({ maxLength: 2000 }),
        (key, nonce, data) => {
          expect(Buffer.from(xchacha20(key, nonce, data))).toEqual(
            Buffer.from(nobleXChaCha20(key, nonce, data)),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  for (const [name, mac] of [
    ['hash-wasm', wasm as KeyedBlake2b],
    ['noble', nobleBlake2b],
  ] as const) {
    describe(`with BLAKE2b from ${name}`, () => {
      it.each(vectors.map((v) => [v.name, v] as const))('official vector %s, byte for byte', async (_, v) => {
        const key = hex(v.key as string);
        const footer = utf8(v.footer);
        const ia = utf8(v['implicit-assertion']);
        const body = await encryptV4LocalFast(
          mac,
          key,
          utf8(v.payload as string),
          footer,
          ia,
          hex(v.nonce as string),
        );
        const suffix = footer.length > 0 ? `.${toBase64url(footer)}` : '';
        expect(`v4.local.${toBase64url(body)}${suffix}`).toBe(v.token);
        expect(Buffer.from(await decryptV4LocalFast(mac, key, body, footer, ia)).toString()).toBe(v.payload);
      });

      it('tokens are interchangeable with the reference primitives', async () => {
        const key = new Uint8Array(32).fill(3);
        const message = utf8(JSON.stringify({ p: 'x'.repeat(5000) }));
        const f = utf8('{"kid":"k"}');
        const ia = utf8('assertion');
        const fast = await encryptV4LocalFast(mac, key, message, f, ia);
        expect(Buffer.from(decryptV4Local(key, fast, f, ia))).toEqual(Buffer.from(message));
        const reference = encryptV4Local(key, message, f, ia);
        expect(Buffer.from(await decryptV4LocalFast(mac, key, reference, f, ia))).toEqual(
          Buffer.from(message),
        );
      });

      it('refuses a short body, any flipped bit, another key, footer or assertion', async () => {
        const key = new Uint8Array(32).fill(9);
        const f = utf8('f');
        const ia = utf8('i');
        await expect(decryptV4LocalFast(mac, key, new Uint8Array(63), f, ia)).rejects.toThrow();
        const body = await encryptV4LocalFast(mac, key, utf8('{"a":1}'), f, ia);
        for (let i = 0; i < body.length; i++) {
          const copy = Uint8Array.from(body);
          copy[i] = (copy[i] as number) ^ 0x01;
          await expect(decryptV4LocalFast(mac, key, copy, f, ia)).rejects.toThrow();
        }
        await expect(decryptV4LocalFast(mac, new Uint8Array(32), body, f, ia)).rejects.toThrow();
        await expect(decryptV4LocalFast(mac, key, body, utf8('g'), ia)).rejects.toThrow();
        await expect(decryptV4LocalFast(mac, key, body, f, utf8('j'))).rejects.toThrow();
      });
    });
  }
});

describe('key length', () => {
  const message = utf8('{"p":"x"}');
  const footer = utf8('{"kid":"k"}');
  const assertion = new Uint8Array(0);

  it('the fast path refuses a key that is not 32 bytes, sealing and opening, as the reference path does', async () => {
    const good = new Uint8Array(32).fill(7);
    const body = await encryptV4LocalFast(nobleBlake2b, good, message, footer, assertion);
    for (const length of [0, 16, 31, 33, 64]) {
      const key = new Uint8Array(length).fill(7);
      for (const mac of [nobleBlake2b, wasm as KeyedBlake2b]) {
        await expect(encryptV4LocalFast(mac, key, message, footer, assertion)).rejects.toThrow(
          /a v4.local key is 32 bytes/,
        );
        await expect(decryptV4LocalFast(mac, key, body, footer, assertion)).rejects.toThrow(
          /a v4.local key is 32 bytes/,
        );
      }
      expect(() => encryptV4Local(key, message, footer, assertion)).toThrow(/a v4.local key is 32 bytes/);
      expect(() => decryptV4Local(key, body, footer, assertion)).toThrow(/a v4.local key is 32 bytes/);
    }
    // A 32-byte key still works both ways.
    expect(Buffer.from(await decryptV4LocalFast(nobleBlake2b, good, body, footer, assertion))).toEqual(
      Buffer.from(message),
    );
  });
});
