/**
 * Key generation for the PASETO sealer and token sessions, as PASERK strings ready for configuration or
 * a secret manager, with the PASERK id each is known by.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  type K4LocalId,
  type K4LocalPaserk,
  type K4PublicId,
  type K4PublicPaserk,
  type K4SecretPaserk,
  k4LocalId,
  k4PublicId,
  serializeK4Local,
  serializeK4Public,
  serializeK4Secret,
} from './paserk.js';

/** A new symmetric key (v4.local) and its id. */
export interface GeneratedPasetoKey {
  /** The key as a `k4.local` PASERK. Secret: share it only between the regions of one deployment. */
  readonly key: K4LocalPaserk;
  /** Its `k4.lid`, e.g. for `sealWith`. Not secret. */
  readonly lid: K4LocalId;
}

/** A new Ed25519 key pair (v4.public) and the id of its public key. */
export interface GeneratedPasetoKeyPair {
  /** The `k4.secret` PASERK. Secret: it stays in the region (or the token issuer) that signs with it. */
  readonly secretKey: K4SecretPaserk;
  /** The `k4.public` PASERK to hand to every verifier. */
  readonly publicKey: K4PublicPaserk;
  /** The public key's `k4.pid`, as it appears in token footers. */
  readonly pid: K4PublicId;
}

/** Generates a random 256-bit v4.local key (`k4.local`) and its `k4.lid`. */
export function generatePasetoKey(): GeneratedPasetoKey {
  const key = serializeK4Local(new Uint8Array(randomBytes(32)));
  return { key, lid: k4LocalId(key) };
}

/** Generates an Ed25519 key pair for v4.public (`k4.secret`, `k4.public`) and the public key's `k4.pid`. */
export function generatePasetoKeyPair(): GeneratedPasetoKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d as string, 'base64url');
  const publicBytes = Buffer.from(jwk.x as string, 'base64url');
  const secretKey = serializeK4Secret(new Uint8Array(Buffer.concat([seed, publicBytes])));
  const publicKey = serializeK4Public(new Uint8Array(publicBytes));
  return { secretKey, publicKey, pid: k4PublicId(publicKey) };
}
