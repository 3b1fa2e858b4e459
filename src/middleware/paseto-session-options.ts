/**
 * Options of `pasetoSession` (express) and `pasetoSessionPlugin` (fastify), validated once, when the
 * middleware is created: every mistake is a `ConfigError` naming the option.
 */
import { ConfigError } from '../errors.js';
import { DEFAULT_MAX_TOKEN_BYTES } from '../security/access-token.js';
import type { K4PublicPaserk } from '../security/paserk.js';
import { parseK4Public } from '../security/paserk.js';
import type { GeoSessionStore } from '../session/store.js';
import { numberOption } from '../validation/options.js';

/** Verified token claims, as the `paseto` package returns them (`exp`, `iat`, `nbf` are ISO strings). */
export type TokenClaims = Readonly<Record<string, unknown>>;

/** Options of {@link pasetoSession} and {@link pasetoSessionPlugin}. */
export interface PasetoSessionOptions {
  /** The session store (a {@link GeoSessionStore}): sessions are stored and replicated like any other. */
  store: GeoSessionStore;
  /**
   * The token issuer's `k4.public` PASERKs. Each token names its key by `kid` (a `k4.pid`) in its footer;
   * list the next key before the issuer switches to it, and drop the old one once its tokens expired.
   */
  publicKeys: readonly string[];
  /** Accepted `iss` claim(s). Required: a token of another issuer is refused (`wrong-issuer`). */
  issuer: string | readonly string[];
  /** Accepted `aud` claim(s). Required: a token for another service is refused (`wrong-audience`). */
  audience: string | readonly string[];
  /**
   * Name of a cookie that may carry the token when there is no `Authorization: Bearer` header.
   * @default undefined (the header only)
   */
  cookie?: string;
  /**
   * The claim whose value names the session. `jti` gives one session per token; a session-handle claim
   * of your issuer (e.g. `sid`) keeps one session across token refreshes.
   * @default 'jti'
   */
  sessionIdClaim?: string;
  /**
   * Prefix of session ids: the session id is this plus the claim's value. Letters, digits and `-_.~`.
   * @default 'token-'
   */
  sessionIdPrefix?: string;
  /**
   * Maps verified claims to the fields a new session starts with (a plain, JSON-safe object). `id`,
   * `cookie` and `destroy` are reserved.
   * @default `sub` to `userId`, and `scope` when present
   */
  claims?: (claims: TokenClaims) => Record<string, unknown>;
  /**
   * Seconds of clock skew tolerated on `exp`, `nbf` and `iat`. The session also lives this much past
   * `exp`, so that a token still accepted finds its session.
   * @default 0
   */
  clockTolerance?: number;
  /**
   * How many verified tokens to remember (by their exact text, first in first out): a token seen again
   * skips the Ed25519 check, only its expiry is checked again. Most of a request's CPU otherwise goes to
   * that check. 0 turns it off.
   * @default 10000
   */
  verifiedTokenCache?: number;
  /**
   * Longest token accepted, in UTF-8 bytes (from 256 to 1 MiB). A longer one is refused as `malformed`
   * before it is decoded, looked up or verified, so an oversized header or cookie costs no parsing and no
   * signature check. A cookie value may be percent-encoded up to three times this.
   * @default 8192
   */
  maxTokenBytes?: number;
}

/** Options after defaults and validation. */
export interface ResolvedPasetoSessionOptions {
  readonly store: GeoSessionStore;
  readonly publicKeys: readonly K4PublicPaserk[];
  readonly issuer: readonly string[];
  readonly audience: readonly string[];
  readonly cookie: string | undefined;
  readonly sessionIdClaim: string;
  readonly sessionIdPrefix: string;
  readonly claims: (claims: TokenClaims) => Record<string, unknown>;
  readonly clockTolerance: number;
  readonly verifiedTokenCache: number;
  readonly maxTokenBytes: number;
}

/** Characters a session id may hold (RFC 3986 unreserved), and its longest length. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9\-_.~]{1,200}$/;
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$/;
const KNOWN = new Set([
  'store',
  'publicKeys',
  'issuer',
  'audience',
  'cookie',
  'sessionIdClaim',
  'sessionIdPrefix',
  'claims',
  'clockTolerance',
  'verifiedTokenCache',
  'maxTokenBytes',
]);

/** Defaults of the optional options. */
export const PASETO_SESSION_DEFAULTS = Object.freeze({
  sessionIdClaim: 'jti',
  sessionIdPrefix: 'token-',
  clockTolerance: 0,
  verifiedTokenCache: 10_000,
  maxTokenBytes: DEFAULT_MAX_TOKEN_BYTES,
});

/** The default claim mapping: `sub` to `userId`, plus `scope` when the token has one. */
export function defaultClaimMapping(claims: TokenClaims): Record<string, unknown> {
  const fields: Record<string, unknown> = { userId: claims['sub'] ?? null };
  if (claims['scope'] !== undefined) fields['scope'] = claims['scope'];
  return fields;
}

function stringList(name: string, value: unknown): readonly string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.some((item) => typeof item !== 'string' || item.length === 0)
  ) {
    throw new ConfigError(name, 'is required: a non-empty string or array of non-empty strings');
  }
  return [...list];
}

function isStore(value: unknown): value is GeoSessionStore {
  const store = value as Partial<GeoSessionStore> | null;
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof store.get === 'function' &&
    typeof store.set === 'function' &&
    typeof store.destroy === 'function' &&
    typeof store.isDestroyed === 'function'
  );
}

/** Fills in defaults and validates, throwing a `ConfigError` that names the first bad option. */
export function resolvePasetoSessionOptions(input: PasetoSessionOptions): ResolvedPasetoSessionOptions {
  if (typeof input !== 'object' || input === null) {
    throw new ConfigError('options', 'must be an object with `store`, `publicKeys`, `issuer` and `audience`');
  }
  for (const name of Object.keys(input)) {
    if (!KNOWN.has(name)) throw new ConfigError(name, 'is not an option of pasetoSession');
  }
  if (!isStore(input.store)) {
    throw new ConfigError('store', 'is required: a GeoSessionStore (with get, set, destroy, isDestroyed)');
  }
  if (!Array.isArray(input.publicKeys) || input.publicKeys.length === 0) {
    throw new ConfigError('publicKeys', 'is required: a non-empty array of k4.public PASERKs');
  }
  const publicKeys = input.publicKeys.map((paserk: unknown, i) => {
    parseK4Public(paserk as string, `publicKeys[${i}]`);
    return paserk as K4PublicPaserk;
  });
  const issuer = stringList('issuer', input.issuer);
  const audience = stringList('audience', input.audience);

  const cookie = input.cookie;
  if (cookie !== undefined && (typeof cookie !== 'string' || !COOKIE_NAME.test(cookie))) {
    throw new ConfigError('cookie', 'must be a cookie name (RFC 6265 token characters)');
  }
  const sessionIdClaim = input.sessionIdClaim ?? PASETO_SESSION_DEFAULTS.sessionIdClaim;
  if (typeof sessionIdClaim !== 'string' || sessionIdClaim.length === 0) {
    throw new ConfigError('sessionIdClaim', 'must be a non-empty claim name');
  }
  const sessionIdPrefix = input.sessionIdPrefix ?? PASETO_SESSION_DEFAULTS.sessionIdPrefix;
  if (
    typeof sessionIdPrefix !== 'string' ||
    (sessionIdPrefix !== '' && !SESSION_ID_PATTERN.test(sessionIdPrefix)) ||
    sessionIdPrefix.length > 100
  ) {
    throw new ConfigError('sessionIdPrefix', 'must be at most 100 letters, digits or `-_.~`');
  }
  const claims = input.claims ?? defaultClaimMapping;
  if (typeof claims !== 'function') throw new ConfigError('claims', 'must be a function of the claims');
  const clockTolerance = input.clockTolerance ?? PASETO_SESSION_DEFAULTS.clockTolerance;
  if (typeof clockTolerance !== 'number' || !Number.isFinite(clockTolerance) || clockTolerance < 0) {
    throw new ConfigError('clockTolerance', 'must be a number of seconds, 0 or more');
  }
  if (clockTolerance > 300) {
    throw new ConfigError('clockTolerance', 'must be at most 300 seconds: it is a tolerance, not a lifetime');
  }
  const verifiedTokenCache = input.verifiedTokenCache ?? PASETO_SESSION_DEFAULTS.verifiedTokenCache;
  if (
    typeof verifiedTokenCache !== 'number' ||
    !Number.isInteger(verifiedTokenCache) ||
    verifiedTokenCache < 0 ||
    verifiedTokenCache > 10_000_000
  ) {
    throw new ConfigError('verifiedTokenCache', 'must be an integer from 0 (off) to 10,000,000 tokens');
  }
  const maxTokenBytes = numberOption(
    'maxTokenBytes',
    input.maxTokenBytes,
    PASETO_SESSION_DEFAULTS.maxTokenBytes,
    {
      integer: true,
      min: 256,
      minExclusive: false,
      max: 1_048_576,
    },
  );
  return {
    store: input.store,
    publicKeys,
    issuer,
    audience,
    cookie,
    sessionIdClaim,
    sessionIdPrefix,
    claims,
    clockTolerance,
    verifiedTokenCache,
    maxTokenBytes,
  };
}
