// Entry point of `geosession/paseto`. The only module that loads `paseto`, `@noble/ciphers` and
// `@noble/hashes` (optional peer dependencies; all three are ESM only: the CommonJS build loads them
// with require(esm), which Node 20.19+ supports).

export { SealError } from './errors.js';
// Sessions from PASETO access tokens.
export type {
  PasetoSessionMiddleware,
  PasetoSessionPlugin,
} from './middleware/paseto-session.js';
export { pasetoSession, pasetoSessionOf, pasetoSessionPlugin } from './middleware/paseto-session.js';
export type { PasetoSessionOptions, TokenClaims } from './middleware/paseto-session-options.js';
export { defaultClaimMapping, PASETO_SESSION_DEFAULTS } from './middleware/paseto-session-options.js';
export type {
  PasetoSession,
  PasetoSessionErrorBody,
  PasetoSessionFailure,
} from './middleware/token-session.js';
export type { AccessTokenFailure } from './security/access-token.js';
export type {
  K4KeyId,
  K4LocalId,
  K4LocalPaserk,
  K4PublicId,
  K4PublicPaserk,
  K4SecretId,
  K4SecretPaserk,
} from './security/paserk.js';
export { k4LocalId, k4PublicId, k4SecretId, paserkId } from './security/paserk.js';
export {
  K4LocalKeyIDFactory,
  K4PublicKeyIDFactory,
  K4SecretKeyIDFactory,
} from './security/paserk-id-factories.js';
export type { GeneratedPasetoKey, GeneratedPasetoKeyPair } from './security/paseto-keys.js';
export { generatePasetoKey, generatePasetoKeyPair } from './security/paseto-keys.js';
export type {
  PasetoLocalSealerOptions,
  PasetoPublicSealerOptions,
  PasetoSealer,
  PasetoSealerOptions,
} from './security/paseto-sealer.js';
export { createPasetoSealer } from './security/paseto-sealer.js';
export { V4LocalDecryptFactory, V4LocalEncryptFactory, V4LocalKey } from './security/paseto-v4-local.js';
export { V4PublicVerifyFactory, V4PublicVerifyKey } from './security/paseto-v4-public.js';
