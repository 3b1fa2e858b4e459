/**
 * PASERK k4: the official test vectors (test/fixtures/paseto, ISC, Paragon Initiative Enterprises) for
 * k4.local, k4.public, k4.secret, k4.lid and k4.pid, including the expected failures; k4.sid against
 * digests computed independently (Python's hashlib.blake2b, digest_size=33), since the fixtures have
 * no k4.sid file; and the key helpers.
 */
import { readFileSync } from 'node:fs';
import { LocalProtocol, PublicProtocol } from 'paseto';
import { ImportPublicKeyFactory, ImportSecretKeyFactory, SignFactory, VerifyFactory } from 'paseto/v4/public';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import {
  k4LocalId,
  k4PublicId,
  k4SecretId,
  parseK4Local,
  parseK4Public,
  parseK4Secret,
  paserkId,
  publicPaserkOf,
  serializeK4Local,
  serializeK4Public,
  serializeK4Secret,
} from '../../src/security/paserk.js';
import {
  K4LocalKeyIDFactory,
  K4PublicKeyIDFactory,
  K4SecretKeyIDFactory,
} from '../../src/security/paserk-id-factories.js';
import { generatePasetoKey, generatePasetoKeyPair } from '../../src/security/paseto-keys.js';

interface KeyVector {
  name: string;
  'expect-fail': boolean;
  key: string | null;
  paserk: string | null;
  'public-key'?: string | null;
}

function vectors(file: string): KeyVector[] {
  const url = new URL(`../fixtures/paseto/${file}.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { tests: KeyVector[] }).tests;
}

const hex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

const SERIALIZATIONS = {
  'k4.local': { serialize: serializeK4Local, parse: parseK4Local },
  'k4.public': { serialize: serializeK4Public, parse: parseK4Public },
  'k4.secret': { serialize: serializeK4Secret, parse: parseK4Secret },
} as const;

describe('k4 serializations: official vectors', () => {
  for (const [file, { serialize, parse }] of Object.entries(SERIALIZATIONS)) {
    for (const vector of vectors(file)) {
      it(`${vector.name}${vector['expect-fail'] ? ' (must fail)' : ''}`, () => {
        if (!vector['expect-fail']) {
          const key = hex(vector.key as string);
          expect(serialize(key)).toBe(vector.paserk);
          expect(Buffer.from(parse(vector.paserk as string)).toString('hex')).toBe(vector.key);
          return;
        }
        // Whichever side the vector gives must be refused.
        let refusals = 0;
        if (vector.key !== null) {
          expect(() => serialize(hex(vector.key as string))).toThrow(ConfigError);
          refusals++;
        }
        if (vector.paserk !== null) {
          expect(() => parse(vector.paserk as string)).toThrow(ConfigError);
          refusals++;
        }
        expect(refusals).toBeGreaterThan(0);
      });
    }
  }

  it('refuses a k4.secret whose public half is not its seed’s', () => {
    const good = vectors('k4.secret')[1] as KeyVector;
    const bytes = hex(good.key as string);
    bytes[63] = (bytes[63] as number) ^ 1;
    expect(() => serializeK4Secret(bytes)).toThrow(/does not belong/);
    const forged = `k4.secret.${Buffer.from(bytes).toString('base64url')}`;
    expect(() => parseK4Secret(forged, 'secretKey')).toThrow(
      expect.objectContaining({ option: 'secretKey' }),
    );
  });

  it('refuses padded, non-canonical and foreign-alphabet encodings', () => {
    const paserk = vectors('k4.local')[1]?.paserk as string;
    expect(() => parseK4Local(`${paserk}=`)).toThrow(ConfigError);
    expect(() => parseK4Local(paserk.replace('-', '+'))).toThrow(ConfigError);
    // The last character carries 4 unused bits; flipping one of them must not give the same key.
    const last = paserk.at(-1) as string;
    const sibling = String.fromCharCode(last.charCodeAt(0) + 1);
    expect(() => parseK4Local(paserk.slice(0, -1) + sibling)).toThrow(ConfigError);
    expect(() => parseK4Local(paserk.replace('k4.', 'k2.'))).toThrow(ConfigError);
  });
});

describe('k4 ids: official vectors', () => {
  const cases = [
    ['k4.lid', (key: Uint8Array) => k4LocalId(serializeK4Local(key))],
    ['k4.pid', (key: Uint8Array) => k4PublicId(serializeK4Public(key))],
  ] as const;
  for (const [file, idOf] of cases) {
    for (const vector of vectors(file)) {
      it(`${vector.name}${vector['expect-fail'] ? ' (must fail)' : ''}`, () => {
        const key = hex(vector.key as string);
        if (vector['expect-fail']) expect(() => idOf(key)).toThrow(ConfigError);
        else expect(idOf(key)).toBe(vector.paserk);
      });
    }
  }

  it('k4.sid of the k4.secret vectors (BLAKE2b-264 cross-checked with Python hashlib)', () => {
    const expected: Record<string, string> = {
      'k4.secret-1': 'k4.sid.YujQ-NvcGquQ0Q-arRf8iYEcXiSOKg2Vk5az-n1lxiUd',
      'k4.secret-2': 'k4.sid.gHYyx8y5YzqKEZeYoMDqUOKejdSnY_AWhYZiSCMjR1V5',
      'k4.secret-3': 'k4.sid.2_m4h6ZTO3qm_PIpl-eYyAqTbNTgmIPQ85POmUEyZHNd',
    };
    for (const vector of vectors('k4.secret').filter((v) => !v['expect-fail'])) {
      expect(k4SecretId(vector.paserk as string)).toBe(expected[vector.name]);
      expect(paserkId(vector.paserk as string)).toBe(expected[vector.name]);
    }
  });

  it('paserkId picks lid, pid or sid by the PASERK type and refuses anything else', () => {
    const local = vectors('k4.lid')[1] as KeyVector;
    const pub = vectors('k4.pid')[1] as KeyVector;
    expect(paserkId(serializeK4Local(hex(local.key as string)))).toBe(local.paserk);
    expect(paserkId(serializeK4Public(hex(pub.key as string)))).toBe(pub.paserk);
    for (const bad of ['', 'k4.lid.abc', 'k3.local.AAAA', 'v4.local.AAAA', 'k4.local.', 42]) {
      expect(() => paserkId(bad as string)).toThrow(expect.objectContaining({ option: 'key' }));
    }
    // Wrapped forms have ids too (the id covers the whole serialization).
    expect(paserkId('k4.local-wrap.pie.AAAA')).toMatch(/^k4\.lid\./);
    expect(paserkId('k4.secret-wrap.pie.AAAA')).toMatch(/^k4\.sid\./);
    expect(paserkId('k4.seal.AAAA')).toMatch(/^k4\.lid\./);
  });

  it('plugs into the paseto package as KeyID, PublicKeyID and SecretKeyID capabilities', async () => {
    const local = vectors('k4.lid')[2] as KeyVector;
    const pub = vectors('k4.pid')[2] as KeyVector;
    const secret = vectors('k4.secret')[2] as KeyVector;
    const v4local = new LocalProtocol(K4LocalKeyIDFactory);
    const v4public = new PublicProtocol(K4PublicKeyIDFactory, K4SecretKeyIDFactory);
    expect(await v4local.KeyID(serializeK4Local(hex(local.key as string)))).toBe(local.paserk);
    expect(await v4public.PublicKeyID(serializeK4Public(hex(pub.key as string)))).toBe(pub.paserk);
    expect(await v4public.SecretKeyID(secret.paserk as `k4.secret.${string}`)).toBe(
      k4SecretId(secret.paserk as string),
    );
  });
});

describe('key helpers', () => {
  it('generatePasetoKey gives a fresh k4.local and its lid', () => {
    const a = generatePasetoKey();
    const b = generatePasetoKey();
    expect(a.key).toMatch(/^k4\.local\.[A-Za-z0-9_-]{43}$/);
    expect(a.lid).toBe(k4LocalId(a.key));
    expect(a.lid).toBe(paserkId(a.key));
    expect(a.key).not.toBe(b.key);
  });

  it('generatePasetoKeyPair gives a matching k4.secret / k4.public pair that paseto signs and verifies with', async () => {
    const pair = generatePasetoKeyPair();
    expect(pair.secretKey).toMatch(/^k4\.secret\.[A-Za-z0-9_-]{86}$/);
    expect(publicPaserkOf(pair.secretKey)).toBe(pair.publicKey);
    expect(pair.pid).toBe(paserkId(pair.publicKey));
    const v4 = new PublicProtocol(SignFactory, VerifyFactory, ImportPublicKeyFactory, ImportSecretKeyFactory);
    const token = await v4.Sign(await v4.ImportSecretKey(pair.secretKey), { sub: 'alice' });
    const { claims } = await v4.Verify(await v4.ImportPublicKey(pair.publicKey), token);
    expect(claims.sub).toBe('alice');
  });
});
