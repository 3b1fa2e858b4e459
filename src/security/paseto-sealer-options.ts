/**
 * Options of the PASETO sealer, and their validation: every mistake is a `ConfigError` naming the option,
 * thrown when the sealer is created, never when the first batch is sealed.
 */
import { ConfigError } from '../errors.js';
import { isValidRegion } from '../validation/ids.js';
import {
  type K4LocalId,
  type K4LocalPaserk,
  type K4PublicId,
  k4LocalId,
  k4PublicId,
  parseK4Local,
  parseK4Public,
  parseK4Secret,
  serializeK4Public,
} from './paserk.js';

/** Symmetric sealing: every region holds the same keys; one seals, all of them open. */
export interface PasetoLocalSealerOptions {
  /** `'local'`: PASETO v4.local (XChaCha20 + BLAKE2b); the broker never sees what it carries. */
  purpose: 'local';
  /**
   * Name of the deployment (e.g. `shop-prod`). Bound into every token, so that a token of one deployment
   * never opens in another that happens to share a key. 1 to 200 printable ASCII characters.
   */
  deployment: string;
  /**
   * The `k4.local` PASERKs this region accepts (see `generatePasetoKey()`), at least one. Every region
   * must hold the key any region seals with.
   */
  keys: readonly string[];
  /**
   * The `k4.lid` of the key to seal with (see `paserkId()`).
   * @default the id of `keys[0]`
   */
  sealWith?: string;
  /**
   * Longest token `open` reads, in bytes (see {@link DEFAULT_MAX_SEAL_TOKEN_BYTES}); a longer one is
   * refused as `malformed` before it is decoded or authenticated.
   * @default 8388608 (8 MiB)
   */
  maxTokenBytes?: number;
}

/** Per-region signing: each region signs with its own Ed25519 key and holds the others' public keys. */
export interface PasetoPublicSealerOptions {
  /**
   * `'public'`: PASETO v4.public (Ed25519). Batches are signed, not encrypted; a region can only speak for
   * itself, so one compromised region cannot forge another's changes.
   */
  purpose: 'public';
  /** Name of the deployment, bound into every token (see {@link PasetoLocalSealerOptions.deployment}). */
  deployment: string;
  /** This region's id; it seals only batches whose origin is this region. */
  region: string;
  /** This region's `k4.secret` PASERK (see `generatePasetoKeyPair()`). */
  secretKey: string;
  /**
   * The `k4.public` PASERKs each region signs with, by region id. A token opens only with a key listed
   * under the region it claims to come from. This region's own public key is added automatically. To
   * stop trusting a region, remove its keys.
   */
  publicKeys: Readonly<Record<string, readonly string[]>>;
  /**
   * Longest token `open` reads, in bytes (see {@link DEFAULT_MAX_SEAL_TOKEN_BYTES}).
   * @default 8388608 (8 MiB)
   */
  maxTokenBytes?: number;
}

/**
 * Default longest sealed token `open` reads: 8 MiB. A batch is packed to about 256 KiB and one session is
 * limited by the store (a token is a third larger than what it seals), so genuine tokens stay far below
 * it; raise it only if a region sends single sessions of several MiB (AMQP, Redis Streams), in every
 * region.
 */
export const DEFAULT_MAX_SEAL_TOKEN_BYTES = 8 * 1024 * 1024;

/** Options of `createPasetoSealer`: `purpose` picks the variant. */
export type PasetoSealerOptions = PasetoLocalSealerOptions | PasetoPublicSealerOptions;

/** Validated local options. */
export interface ResolvedLocalOptions {
  readonly purpose: 'local';
  readonly deployment: string;
  /** Key bytes by `k4.lid`, in the order given. */
  readonly keys: ReadonlyMap<K4LocalId, Uint8Array>;
  readonly sealWith: K4LocalId;
  readonly maxTokenBytes: number;
}

/** A public key this region accepts, and the region it belongs to. */
export interface TrustedPublicKey {
  /** The 32 Ed25519 public key bytes. */
  readonly bytes: Uint8Array;
  /** The region that signs with it. */
  readonly region: string;
}

/** Validated public options. */
export interface ResolvedPublicOptions {
  readonly purpose: 'public';
  readonly deployment: string;
  readonly region: string;
  /** The 32-byte Ed25519 seed of this region's signing key. */
  readonly secretSeed: Uint8Array;
  /** The `k4.pid` of this region's signing key. */
  readonly ownKeyId: K4PublicId;
  /** Every accepted public key by `k4.pid`. */
  readonly publicKeys: ReadonlyMap<K4PublicId, TrustedPublicKey>;
  readonly maxTokenBytes: number;
}

const LOCAL_OPTIONS = new Set(['purpose', 'deployment', 'keys', 'sealWith', 'maxTokenBytes']);
const PUBLIC_OPTIONS = new Set([
  'purpose',
  'deployment',
  'region',
  'secretKey',
  'publicKeys',
  'maxTokenBytes',
]);
const DEPLOYMENT = /^[\x21-\x7e]{1,200}$/;

function checkNames(input: object, known: Set<string>, purpose: string): void {
  for (const name of Object.keys(input)) {
    if (!known.has(name)) {
      throw new ConfigError(name, `is not an option of a ${purpose} PASETO sealer`);
    }
  }
}

function deploymentOf(value: unknown): string {
  if (value === undefined) throw new ConfigError('deployment', 'is required (e.g. "shop-prod")');
  if (typeof value !== 'string' || !DEPLOYMENT.test(value)) {
    throw new ConfigError('deployment', 'must be 1 to 200 printable ASCII characters, without spaces');
  }
  return value;
}

function maxTokenBytesOf(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_SEAL_TOKEN_BYTES;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 4096 || value > 512 * 1024 * 1024) {
    throw new ConfigError('maxTokenBytes', 'must be an integer number of bytes from 4096 to 512 MiB');
  }
  return value;
}

function resolveLocal(input: PasetoLocalSealerOptions): ResolvedLocalOptions {
  checkNames(input, LOCAL_OPTIONS, 'local');
  const deployment = deploymentOf(input.deployment);
  if (!Array.isArray(input.keys) || input.keys.length === 0) {
    throw new ConfigError('keys', 'must be a non-empty array of k4.local PASERKs');
  }
  const keys = new Map<K4LocalId, Uint8Array>();
  input.keys.forEach((paserk: unknown, i) => {
    const option = `keys[${i}]`;
    const bytes = parseK4Local(paserk as string, option);
    const id = k4LocalId(paserk as K4LocalPaserk, option);
    if (keys.has(id)) throw new ConfigError(option, 'repeats a key listed before it');
    keys.set(id, bytes);
  });
  const first = keys.keys().next().value as K4LocalId;
  const sealWith = input.sealWith ?? first;
  if (typeof sealWith !== 'string' || !keys.has(sealWith as K4LocalId)) {
    throw new ConfigError('sealWith', 'must be the k4.lid of one of `keys` (see paserkId())');
  }
  return {
    purpose: 'local',
    deployment,
    keys,
    sealWith: sealWith as K4LocalId,
    maxTokenBytes: maxTokenBytesOf(input.maxTokenBytes),
  };
}

function resolvePublic(input: PasetoPublicSealerOptions): ResolvedPublicOptions {
  checkNames(input, PUBLIC_OPTIONS, 'public');
  const deployment = deploymentOf(input.deployment);
  if (input.region === undefined) throw new ConfigError('region', 'is required (e.g. "hk")');
  if (!isValidRegion(input.region)) {
    throw new ConfigError('region', "must be 1 to 32 lowercase letters, digits or '-'");
  }
  const region = input.region;
  if (input.secretKey === undefined) {
    throw new ConfigError('secretKey', 'is required: this region’s k4.secret PASERK');
  }
  const secret = parseK4Secret(input.secretKey, 'secretKey');
  const ownPublic = serializeK4Public(secret.subarray(32));
  const ownKeyId = k4PublicId(ownPublic);

  const given = input.publicKeys;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new ConfigError('publicKeys', 'must be an object of region id to arrays of k4.public PASERKs');
  }
  const publicKeys = new Map<K4PublicId, TrustedPublicKey>();
  const trust = (paserk: unknown, owner: string, option: string) => {
    const bytes = parseK4Public(paserk as string, option);
    const id = k4PublicId(paserk as string, option);
    const known = publicKeys.get(id);
    if (known && known.region !== owner) {
      throw new ConfigError(option, `is already listed for region "${known.region}": a key has one owner`);
    }
    publicKeys.set(id, { bytes, region: owner });
  };
  for (const [owner, list] of Object.entries(given)) {
    if (!isValidRegion(owner)) throw new ConfigError(`publicKeys.${owner}`, 'is not a valid region id');
    if (!Array.isArray(list)) {
      throw new ConfigError(`publicKeys.${owner}`, 'must be an array of k4.public PASERKs');
    }
    list.forEach((paserk: unknown, i) => {
      trust(paserk, owner, `publicKeys.${owner}[${i}]`);
    });
  }
  trust(ownPublic, region, 'secretKey');
  return {
    purpose: 'public',
    deployment,
    region,
    secretSeed: secret.subarray(0, 32),
    ownKeyId,
    publicKeys,
    maxTokenBytes: maxTokenBytesOf(input.maxTokenBytes),
  };
}

/** Validates sealer options, throwing a `ConfigError` naming the first bad option. */
export function resolveSealerOptions(
  input: PasetoSealerOptions,
): ResolvedLocalOptions | ResolvedPublicOptions {
  if (typeof input !== 'object' || input === null) {
    throw new ConfigError('options', 'must be an object with `purpose` and `deployment`');
  }
  const purpose = (input as { purpose?: unknown }).purpose;
  if (purpose === 'local') return resolveLocal(input as PasetoLocalSealerOptions);
  if (purpose === 'public') return resolvePublic(input as PasetoPublicSealerOptions);
  throw new ConfigError('purpose', "must be 'local' or 'public'");
}
