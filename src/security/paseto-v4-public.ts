/**
 * PASETO v4.public signing and verification on node:crypto's Ed25519, for tokens whose body is large:
 * the sealer signs whole batches. The `paseto` package's built-in v4.public does the same with WebCrypto,
 * but its base64url falls back to `btoa`/`atob` on Node 20 (no `Uint8Array.prototype.toBase64`), which
 * costs several milliseconds per 100 KB token; small tokens (access tokens) go through `paseto` itself.
 */
import { type KeyObject, sign, verify } from 'node:crypto';
import { concatBytes, preAuthEncode, utf8 } from './bytes.js';

const HEADER = utf8('v4.public.');
const SIGNATURE_BYTES = 64;

/** The token body `message || signature` (before base64url) of `message` signed by `secretKey`. */
export function signV4Public(
  secretKey: KeyObject,
  message: Uint8Array,
  footer: Uint8Array,
  implicitAssertion: Uint8Array,
): Uint8Array {
  const signature = sign(null, preAuthEncode([HEADER, message, footer, implicitAssertion]), secretKey);
  return concatBytes(message, signature);
}

/**
 * The message of a token body (`message || signature`) when its signature verifies under `publicKey`
 * with this footer and implicit assertion; `undefined` otherwise.
 */
export function verifyV4Public(
  publicKey: KeyObject,
  body: Uint8Array,
  footer: Uint8Array,
  implicitAssertion: Uint8Array,
): Uint8Array | undefined {
  if (body.length < SIGNATURE_BYTES) return undefined;
  const message = body.subarray(0, body.length - SIGNATURE_BYTES);
  const signature = body.subarray(body.length - SIGNATURE_BYTES);
  const ok = verify(null, preAuthEncode([HEADER, message, footer, implicitAssertion]), publicKey, signature);
  return ok ? message : undefined;
}
