/**
 * PASETO v4: every official vector (test/fixtures/paseto/v4.json, ISC, Paragon Initiative Enterprises),
 * including the expected failures, through
 * - our v4.local primitives (fixed nonce: byte-exact tokens) and our v4.public primitives (Ed25519 is
 *   deterministic: byte-exact tokens), and
 * - the `paseto` package's protocol objects, built in and composed with our extension capabilities
 *   (v4.local Encrypt/Decrypt, v4.public Verify on node:crypto).
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { LocalProtocol, PublicProtocol } from 'paseto';
import { ImportPublicKeyFactory, VerifyFactory } from 'paseto/v4/public';
import { describe, expect, it } from 'vitest';
import { fromBase64url, toBase64url, utf8 } from '../../src/security/bytes.js';
import {
  ed25519PrivateKeyObject,
  ed25519PublicKeyObject,
  serializeK4Public,
} from '../../src/security/paserk.js';
import {
  decryptV4Local,
  encryptV4Local,
  V4LocalDecryptFactory,
  V4LocalEncryptFactory,
  V4LocalKey,
} from '../../src/security/paseto-v4-local.js';
import {
  signV4Public,
  V4PublicVerifyFactory,
  V4PublicVerifyKey,
  verifyV4Public,
} from '../../src/security/paseto-v4-public.js';

interface TokenVector {
  name: string;
  'expect-fail': boolean;
  key?: string;
  nonce?: string;
  'public-key'?: string;
  'secret-key'?: string;
  token: string;
  payload: string | null;
  footer: string;
  'implicit-assertion': string;
}

const all = (
  JSON.parse(readFileSync(new URL('../fixtures/paseto/v4.json', import.meta.url), 'utf8')) as {
    tests: TokenVector[];
  }
).tests;
const hex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));
/** The vectors' `exp` is 2022-01-01; check them as of a day before. */
const BEFORE_EXPIRY = new Date('2021-12-31T00:00:00Z');

const local = new LocalProtocol(V4LocalEncryptFactory, V4LocalDecryptFactory);
const publicProtocol = new PublicProtocol(VerifyFactory, ImportPublicKeyFactory);
/** `paseto`'s PublicProtocol with our node:crypto Verify capability. */
const nodeVerify = new PublicProtocol(V4PublicVerifyFactory);

/** Splits a token into header, body bytes and footer bytes (undefined when the framing is invalid). */
function split(token: string) {
  const parts = token.split('.');
  const body = parts[2] === undefined ? undefined : fromBase64url(parts[2]);
  const footer = parts[3] === undefined ? new Uint8Array(0) : fromBase64url(parts[3]);
  return { header: `${parts[0]}.${parts[1]}.`, body, footer, count: parts.length };
}

function expectAllFail(vector: TokenVector) {
  const ia = utf8(vector['implicit-assertion']);
  return async () => {
    let attempts = 0;
    if (vector.key) {
      attempts++;
      await expect(
        local.Decrypt(new V4LocalKey(hex(vector.key)), vector.token, {
          implicitAssertion: ia,
          now: BEFORE_EXPIRY,
        }),
      ).rejects.toThrow();
      const { header, body, footer } = split(vector.token);
      if (header === 'v4.local.' && body && footer) {
        expect(() => decryptV4Local(hex(vector.key as string), body, footer, ia)).toThrow();
      }
    }
    if (vector['public-key']) {
      attempts++;
      const key = await publicProtocol.ImportPublicKey(serializeK4Public(hex(vector['public-key'])));
      await expect(
        publicProtocol.Verify(key, vector.token, { implicitAssertion: ia, now: BEFORE_EXPIRY }),
      ).rejects.toThrow();
      const nodeKey = new V4PublicVerifyKey(serializeK4Public(hex(vector['public-key'])));
      await expect(
        nodeVerify.Verify(nodeKey, vector.token, { implicitAssertion: ia, now: BEFORE_EXPIRY }),
      ).rejects.toThrow();
      const { header, body, footer } = split(vector.token);
      if (header === 'v4.public.' && body && footer) {
        expect(
          verifyV4Public(ed25519PublicKeyObject(hex(vector['public-key'])), body, footer, ia),
        ).toBeUndefined();
      }
    }
    expect(attempts).toBeGreaterThan(0);
  };
}

describe('PASETO v4 official vectors', () => {
  for (const vector of all) {
    const footer = utf8(vector.footer);
    const ia = utf8(vector['implicit-assertion']);
    const suffix = footer.length > 0 ? `.${toBase64url(footer)}` : '';

    if (vector['expect-fail']) {
      it(`${vector.name} must fail`, expectAllFail(vector));
      continue;
    }

    if (vector.token.startsWith('v4.local.')) {
      it(`${vector.name} (v4.local)`, async () => {
        const key = hex(vector.key as string);
        const body = encryptV4Local(
          key,
          utf8(vector.payload as string),
          footer,
          ia,
          hex(vector.nonce as string),
        );
        expect(`v4.local.${toBase64url(body)}${suffix}`).toBe(vector.token);
        expect(Buffer.from(decryptV4Local(key, body, footer, ia)).toString()).toBe(vector.payload);

        const opened = await local.Decrypt(new V4LocalKey(key), vector.token, {
          implicitAssertion: ia,
          now: BEFORE_EXPIRY,
        });
        expect(JSON.stringify(opened.claims)).toBe(vector.payload);
        expect(Buffer.from(opened.footer).toString()).toBe(vector.footer);
        // The implicit assertion is authenticated: another one must not open it.
        await expect(
          local.Decrypt(new V4LocalKey(key), vector.token, {
            implicitAssertion: utf8(`${vector['implicit-assertion']}x`),
            now: BEFORE_EXPIRY,
          }),
        ).rejects.toThrow();
      });
      continue;
    }

    it(`${vector.name} (v4.public)`, async () => {
      const seed = hex(vector['secret-key'] as string).subarray(0, 32);
      const message = utf8(vector.payload as string);
      const body = signV4Public(ed25519PrivateKeyObject(seed), message, footer, ia);
      expect(`v4.public.${toBase64url(body)}${suffix}`).toBe(vector.token);
      const publicKey = hex(vector['public-key'] as string);
      expect(
        Buffer.from(verifyV4Public(ed25519PublicKeyObject(publicKey), body, footer, ia) ?? []).toString(),
      ).toBe(vector.payload);
      const key = await publicProtocol.ImportPublicKey(serializeK4Public(publicKey));
      const verified = await publicProtocol.Verify(key, vector.token, {
        implicitAssertion: ia,
        now: BEFORE_EXPIRY,
      });
      expect(JSON.stringify(verified.claims)).toBe(vector.payload);
      const nodeKey = new V4PublicVerifyKey(serializeK4Public(publicKey));
      const viaNode = await nodeVerify.Verify(nodeKey, vector.token, {
        implicitAssertion: ia,
        now: BEFORE_EXPIRY,
      });
      expect(JSON.stringify(viaNode.claims)).toBe(vector.payload);
      await expect(
        nodeVerify.Verify(nodeKey, vector.token, { implicitAssertion: utf8('other'), now: BEFORE_EXPIRY }),
      ).rejects.toThrow();
    });
  }

  it('covers every vector of the file (9 local, 3 public, 5 failures)', () => {
    expect(all.filter((v) => !v['expect-fail'] && v.token.startsWith('v4.local.'))).toHaveLength(9);
    expect(all.filter((v) => !v['expect-fail'] && v.token.startsWith('v4.public.'))).toHaveLength(3);
    expect(all.filter((v) => v['expect-fail'])).toHaveLength(5);
  });
});

describe('v4.local primitives', () => {
  const key = new Uint8Array(32).fill(9);
  const empty = new Uint8Array(0);

  it('refuses a body shorter than nonce and tag, any flipped bit, and another key', () => {
    expect(() => decryptV4Local(key, new Uint8Array(63), empty, empty)).toThrow();
    const body = encryptV4Local(key, utf8('{"a":1}'), utf8('f'), utf8('i'));
    expect(Buffer.from(decryptV4Local(key, body, utf8('f'), utf8('i'))).toString()).toBe('{"a":1}');
    for (let i = 0; i < body.length; i++) {
      const copy = Uint8Array.from(body);
      copy[i] = (copy[i] as number) ^ 0x01;
      expect(() => decryptV4Local(key, copy, utf8('f'), utf8('i'))).toThrow();
    }
    expect(() => decryptV4Local(new Uint8Array(32), body, utf8('f'), utf8('i'))).toThrow();
    expect(() => decryptV4Local(key, body, utf8('g'), utf8('i'))).toThrow();
  });

  it('draws a fresh nonce per message', () => {
    const a = encryptV4Local(key, utf8('same'), empty, empty);
    const b = encryptV4Local(key, utf8('same'), empty, empty);
    expect(toBase64url(a)).not.toBe(toBase64url(b));
  });

  it('keeps the key bytes out of JSON and inspection', () => {
    const k = new V4LocalKey(new Uint8Array(32).fill(0xab));
    expect(JSON.stringify(k)).toBe(
      '{"algorithm":{"name":"PASETO v4.local"},"extractable":false,"type":"secret"}',
    );
    expect(inspect(k, { showHidden: true, depth: 5 })).not.toMatch(/171/);
  });
});
