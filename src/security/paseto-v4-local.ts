/**
 * PASETO v4.local (XChaCha20 + keyed BLAKE2b, encrypt-then-MAC), which the `paseto` package leaves to its
 * extension API. The primitives follow the v4 specification (paseto-spec `docs/01-Protocol-Versions/
 * Version4.md`); {@link V4LocalEncryptFactory} and {@link V4LocalDecryptFactory} plug them into `paseto`'s
 * `LocalProtocol`, which does the token framing, footers, implicit assertions and claims.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { xchacha20 } from '@noble/ciphers/chacha.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { type Key, LocalDecrypt, LocalEncrypt } from 'paseto';
import { concatBytes, preAuthEncode, utf8 } from './bytes.js';
import { parseK4Local } from './paserk.js';

const HEADER = utf8('v4.local.');
const ENCRYPTION_KEY_INFO = utf8('paseto-encryption-key');
const AUTHENTICATION_KEY_INFO = utf8('paseto-auth-key-for-aead');
const NONCE_BYTES = 32;
const TAG_BYTES = 32;
const KEY_BYTES = 32;

/**
 * A v4.local symmetric key for the factories below. Its bytes are held in a private field: they are not
 * enumerable, never serialized by `JSON.stringify` or `util.inspect`, and not extractable.
 */
export class V4LocalKey implements Key {
  /** Algorithm metadata `paseto` uses to tell keys apart. */
  readonly algorithm = Object.freeze({ name: 'PASETO v4.local' as const });
  /** The key bytes cannot be exported through `paseto`. */
  readonly extractable = false;
  /** A secret (symmetric) key. */
  readonly type = 'secret' as const;
  readonly #material: Uint8Array;

  constructor(material: Uint8Array) {
    if (!(material instanceof Uint8Array) || material.length !== KEY_BYTES) {
      throw new TypeError(`a v4.local key is ${KEY_BYTES} bytes`);
    }
    this.#material = Uint8Array.from(material);
  }

  /** The key of a `k4.local` PASERK. */
  static fromPaserk(paserk: string, argument = 'paserk'): V4LocalKey {
    return new V4LocalKey(parseK4Local(paserk, argument));
  }

  /** The key bytes, for this module's primitives only. */
  static material(key: V4LocalKey): Uint8Array {
    if (!(key instanceof V4LocalKey)) throw new TypeError('expected a V4LocalKey');
    return key.#material;
  }
}

/** The encryption key and XChaCha20 nonce, and the authentication key, of one message nonce. */
function splitKeys(key: Uint8Array, nonce: Uint8Array) {
  if (key.length !== KEY_BYTES) throw new TypeError(`a v4.local key is ${KEY_BYTES} bytes`);
  const derived = blake2b(concatBytes(ENCRYPTION_KEY_INFO, nonce), { key, dkLen: 56 });
  return {
    encryptionKey: derived.subarray(0, 32),
    counterNonce: derived.subarray(32),
    authenticationKey: blake2b(concatBytes(AUTHENTICATION_KEY_INFO, nonce), { key, dkLen: 32 }),
  };
}

function tagOf(
  authenticationKey: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  footer: Uint8Array,
  implicitAssertion: Uint8Array,
): Uint8Array {
  const preAuth = preAuthEncode([HEADER, nonce, ciphertext, footer, implicitAssertion]);
  return blake2b(preAuth, { key: authenticationKey, dkLen: TAG_BYTES });
}

/**
 * Encrypts `message` and returns the token body `nonce || ciphertext || tag` (before base64url). `nonce`
 * is random unless given (the test vectors fix it; never fix it in production).
 */
export function encryptV4Local(
  key: Uint8Array,
  message: Uint8Array,
  footer: Uint8Array,
  implicitAssertion: Uint8Array,
  nonce: Uint8Array = new Uint8Array(randomBytes(NONCE_BYTES)),
): Uint8Array {
  if (nonce.length !== NONCE_BYTES) throw new TypeError(`a v4.local nonce is ${NONCE_BYTES} bytes`);
  const { encryptionKey, counterNonce, authenticationKey } = splitKeys(key, nonce);
  const out = new Uint8Array(NONCE_BYTES + message.length + TAG_BYTES);
  out.set(nonce, 0);
  const ciphertext = out.subarray(NONCE_BYTES, NONCE_BYTES + message.length);
  xchacha20(encryptionKey, counterNonce, message, ciphertext);
  out.set(
    tagOf(authenticationKey, nonce, ciphertext, footer, implicitAssertion),
    NONCE_BYTES + message.length,
  );
  return out;
}

/** Raised by {@link decryptV4Local} when the tag does not match: wrong key, or altered token. */
export class V4LocalAuthenticationError extends Error {
  constructor() {
    super('v4.local authentication failed');
    this.name = 'V4LocalAuthenticationError';
  }
}

/**
 * Checks the tag of a token body (`nonce || ciphertext || tag`) in constant time, then decrypts it.
 * Throws {@link V4LocalAuthenticationError} when the body is too short or the tag does not match.
 */
export function decryptV4Local(
  key: Uint8Array,
  body: Uint8Array,
  footer: Uint8Array,
  implicitAssertion: Uint8Array,
): Uint8Array {
  if (body.length < NONCE_BYTES + TAG_BYTES) throw new V4LocalAuthenticationError();
  const nonce = body.subarray(0, NONCE_BYTES);
  const ciphertext = body.subarray(NONCE_BYTES, body.length - TAG_BYTES);
  const tag = body.subarray(body.length - TAG_BYTES);
  const { encryptionKey, counterNonce, authenticationKey } = splitKeys(key, nonce);
  const expected = tagOf(authenticationKey, nonce, ciphertext, footer, implicitAssertion);
  if (!timingSafeEqual(expected, tag)) throw new V4LocalAuthenticationError();
  return xchacha20(encryptionKey, counterNonce, ciphertext);
}

/** `paseto` capability: v4.local `Encrypt` for `new LocalProtocol(...)`, keyed by {@link V4LocalKey}. */
export const V4LocalEncryptFactory: ReturnType<typeof LocalEncrypt<4, V4LocalKey>> =
  /* @__PURE__ */ LocalEncrypt<4, V4LocalKey>({
    version: 4,
    run: async (key, input, footer, implicitAssertion) =>
      encryptV4Local(V4LocalKey.material(key), input, footer, implicitAssertion),
  });

/** `paseto` capability: v4.local `Decrypt` for `new LocalProtocol(...)`, keyed by {@link V4LocalKey}. */
export const V4LocalDecryptFactory: ReturnType<typeof LocalDecrypt<4, V4LocalKey>> =
  /* @__PURE__ */ LocalDecrypt<4, V4LocalKey>({
    version: 4,
    run: async (key, input, footer, implicitAssertion) =>
      decryptV4Local(V4LocalKey.material(key), input, footer, implicitAssertion),
  });
