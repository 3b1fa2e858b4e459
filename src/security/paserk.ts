/**
 * PASERK k4: plaintext serializations of PASETO v4 keys (`k4.local`, `k4.public`, `k4.secret`) and their
 * identifiers (`k4.lid`, `k4.pid`, `k4.sid`), following the PASERK specification
 * (github.com/paseto-standard/paserk, `types/` and `operations/ID.md`).
 *
 * An identifier is `k4.<type>.` followed by the base64url of BLAKE2b-264 (33 bytes) over that same header
 * and the whole PASERK it names. Node's `blake2b512` cannot produce it (the output length is a BLAKE2b
 * parameter, not a truncation), so it comes from `@noble/hashes`.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { blake2b } from '@noble/hashes/blake2.js';
import { ConfigError } from '../errors.js';
import { fromBase64url, toBase64url, utf8 } from './bytes.js';

/** A k4 symmetric key: `k4.local.` + base64url of 32 bytes. */
export type K4LocalPaserk = `k4.local.${string}`;
/** A k4 Ed25519 public key: `k4.public.` + base64url of 32 bytes. */
export type K4PublicPaserk = `k4.public.${string}`;
/** A k4 Ed25519 secret key: `k4.secret.` + base64url of 64 bytes (seed, then public key). */
export type K4SecretPaserk = `k4.secret.${string}`;
/** Identifier of a k4 symmetric key. */
export type K4LocalId = `k4.lid.${string}`;
/** Identifier of a k4 public key. */
export type K4PublicId = `k4.pid.${string}`;
/** Identifier of a k4 secret key. */
export type K4SecretId = `k4.sid.${string}`;
/** Any k4 key identifier. */
export type K4KeyId = K4LocalId | K4PublicId | K4SecretId;

/** Byte length of each k4 key type. */
const LENGTHS = { local: 32, public: 32, secret: 64 } as const;
type KeyType = keyof typeof LENGTHS;

/** DER header of a PKCS#8 Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function serialize(type: KeyType, bytes: Uint8Array, argument: string): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== LENGTHS[type]) {
    throw new ConfigError(argument, `must be ${LENGTHS[type]} bytes to serialize as k4.${type}`);
  }
  return `k4.${type}.${toBase64url(bytes)}`;
}

function parse(type: KeyType, paserk: unknown, argument: string): Uint8Array {
  const header = `k4.${type}.`;
  if (typeof paserk !== 'string' || !paserk.startsWith(header)) {
    throw new ConfigError(argument, `must be a ${header} PASERK`);
  }
  const bytes = fromBase64url(paserk.slice(header.length));
  if (bytes === undefined || bytes.length !== LENGTHS[type]) {
    throw new ConfigError(argument, `is not a valid ${header} PASERK (${LENGTHS[type]} bytes of base64url)`);
  }
  return bytes;
}

/** DER header of an SPKI Ed25519 public key; the 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A node:crypto private key of a 32-byte Ed25519 seed. */
export function ed25519PrivateKeyObject(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** A node:crypto public key of 32 Ed25519 public key bytes. */
export function ed25519PublicKeyObject(key: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, key]), format: 'der', type: 'spki' });
}

/** The Ed25519 public key of a 32-byte seed (node:crypto). */
export function ed25519PublicKeyOf(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(ed25519PrivateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

/** Serializes a 32-byte symmetric key as `k4.local`. */
export function serializeK4Local(key: Uint8Array): K4LocalPaserk {
  return serialize('local', key, 'key') as K4LocalPaserk;
}

/** The 32 key bytes of a `k4.local` PASERK; throws a `ConfigError` for anything else. */
export function parseK4Local(paserk: string, argument = 'paserk'): Uint8Array {
  return parse('local', paserk, argument);
}

/** Serializes a 32-byte Ed25519 public key as `k4.public`. */
export function serializeK4Public(key: Uint8Array): K4PublicPaserk {
  return serialize('public', key, 'key') as K4PublicPaserk;
}

/** The 32 key bytes of a `k4.public` PASERK; throws a `ConfigError` for anything else. */
export function parseK4Public(paserk: string, argument = 'paserk'): Uint8Array {
  return parse('public', paserk, argument);
}

/**
 * Serializes a 64-byte Ed25519 secret key (32-byte seed, then its 32-byte public key) as `k4.secret`.
 * Throws when the second half is not the seed's public key.
 */
export function serializeK4Secret(key: Uint8Array): K4SecretPaserk {
  const paserk = serialize('secret', key, 'key') as K4SecretPaserk;
  checkSecretHalves(key, 'key');
  return paserk;
}

/**
 * The 64 bytes (seed, then public key) of a `k4.secret` PASERK. Throws a `ConfigError` for anything
 * else, including a public half that does not belong to the seed (signatures would then verify under a
 * key other than the one advertised).
 */
export function parseK4Secret(paserk: string, argument = 'paserk'): Uint8Array {
  const bytes = parse('secret', paserk, argument);
  checkSecretHalves(bytes, argument);
  return bytes;
}

function checkSecretHalves(bytes: Uint8Array, argument: string): void {
  const derived = ed25519PublicKeyOf(bytes.subarray(0, 32));
  if (!Buffer.from(derived).equals(bytes.subarray(32))) {
    throw new ConfigError(argument, 'holds a public key that does not belong to its Ed25519 seed');
  }
}

/** The `k4.public` PASERK of a `k4.secret` PASERK's key pair. */
export function publicPaserkOf(secret: string, argument = 'paserk'): K4PublicPaserk {
  return serializeK4Public(parseK4Secret(secret, argument).subarray(32));
}

/** The PASERK identifier `k4.<idType>.` of `paserk` (BLAKE2b-264 over header and PASERK). */
function identify(idType: 'lid' | 'pid' | 'sid', paserk: string): string {
  const header = `k4.${idType}.`;
  const digest = blake2b(utf8(header + paserk), { dkLen: 33 });
  return header + toBase64url(digest);
}

/** Serializations whose identifier is a `k4.lid` (plaintext, wrapped, password-wrapped, sealed). */
const LID_INPUT = /^k4\.(local|local-wrap\.[a-z0-9-]+|local-pw|seal)\.[A-Za-z0-9_-]+$/;
/** Serializations whose identifier is a `k4.sid`. */
const SID_INPUT = /^k4\.(secret|secret-wrap\.[a-z0-9-]+|secret-pw)\.[A-Za-z0-9_-]+$/;

/** The `k4.lid` of a symmetric key's PASERK (plaintext `k4.local`, or its wrapped or sealed forms). */
export function k4LocalId(paserk: string, argument = 'paserk'): K4LocalId {
  if (typeof paserk !== 'string' || !LID_INPUT.test(paserk)) {
    throw new ConfigError(argument, 'must be a k4.local PASERK (or a wrapped or sealed k4 local key)');
  }
  if (paserk.startsWith('k4.local.')) parseK4Local(paserk, argument);
  return identify('lid', paserk) as K4LocalId;
}

/** The `k4.pid` of a `k4.public` PASERK. */
export function k4PublicId(paserk: string, argument = 'paserk'): K4PublicId {
  parseK4Public(paserk, argument);
  return identify('pid', paserk) as K4PublicId;
}

/** The `k4.sid` of a secret key's PASERK (plaintext `k4.secret`, or its wrapped forms). */
export function k4SecretId(paserk: string, argument = 'paserk'): K4SecretId {
  if (typeof paserk !== 'string' || !SID_INPUT.test(paserk)) {
    throw new ConfigError(argument, 'must be a k4.secret PASERK (or a wrapped k4 secret key)');
  }
  if (paserk.startsWith('k4.secret.')) parseK4Secret(paserk, argument);
  return identify('sid', paserk) as K4SecretId;
}

/**
 * The PASERK identifier of a k4 key: `k4.lid` for `k4.local`, `k4.pid` for `k4.public`, `k4.sid` for
 * `k4.secret` (wrapped and sealed forms too). Throws a `ConfigError` naming `key` for anything else.
 */
export function paserkId(key: string): K4KeyId {
  if (typeof key === 'string') {
    if (key.startsWith('k4.public.')) return k4PublicId(key, 'key');
    if (SID_INPUT.test(key)) return k4SecretId(key, 'key');
    if (LID_INPUT.test(key)) return k4LocalId(key, 'key');
  }
  throw new ConfigError('key', 'must be a k4.local, k4.public or k4.secret PASERK');
}
