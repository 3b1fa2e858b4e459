/**
 * Sealing: authenticated (and, for symmetric keys, encrypted) batches of envelopes. The pipeline seals
 * every batch a region sends with its {@link Sealer} and opens every sealed batch it receives, whatever
 * the transport; a batch that fails to open is refused whole and never applied.
 */

/** What a sealed batch is bound to, besides its key: replaying it under another binding fails to open. */
export interface SealBinding {
  /** The region that sends the batch (the origin of every envelope in it). */
  readonly origin: string;
  /** The keyspace (store key prefix) the batch belongs to. */
  readonly channel: string;
}

/** What opening a sealed batch proved. */
export interface OpenedSeal {
  /** The payload exactly as it was sealed. */
  readonly payload: string;
  /** Id of the key that opened it (for a PASETO sealer, a PASERK id). */
  readonly keyId: string;
  /**
   * The region the key belongs to, when keys are per region (asymmetric keys: only that region can have
   * sealed it); `undefined` for keys shared by every region.
   */
  readonly region: string | undefined;
}

/** Why a sealed or unsealed batch was refused. Stable strings, used as metric labels. */
export type RefusalReason =
  | 'unsealed'
  | 'tampered'
  | 'unknown-key'
  | 'origin-mismatch'
  | 'wrong-channel'
  | 'malformed';

/**
 * Seals and opens batches. Implementations must fail closed: `open` rejects with an error whose
 * `reason` (a {@link RefusalReason}) says why, for anything it cannot fully authenticate.
 */
export interface Sealer {
  /** The scheme, for logs and stats, e.g. `paseto-v4-local` or `paseto-v4-public`. */
  readonly scheme: string;
  /** Seals `payload`, bound to `binding`, with the current key. */
  seal(payload: string, binding: SealBinding): Promise<string>;
  /**
   * Opens a sealed batch that claims to come from `binding.origin` for `binding.channel`. Rejects with
   * a `SealError` when the token is malformed, tampered with, sealed by an unknown or retired key, bound
   * to another channel or deployment, or (per-region keys) sealed by a region other than the origin.
   */
  open(token: string, binding: SealBinding): Promise<OpenedSeal>;
}
