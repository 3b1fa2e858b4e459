/**
 * Verification of PASETO v4.public access tokens (issued by an authorization server, not by geosession)
 * with the `paseto` package (framing, claims), its signature check on node:crypto (./paseto-v4-public.ts). The key is chosen by the `kid` (a `k4.pid`) in the footer, so the issuer can
 * rotate keys: list the new public key, let the issuer switch, then drop the old one. Everything that is
 * not a valid, current token for this issuer and audience gets one stable reason code.
 */
import { type Claims, PublicProtocol } from 'paseto';
import { exceedsBytes } from '../validation/utf8.js';
import { fromBase64url } from './bytes.js';
import { type K4PublicId, type K4PublicPaserk, k4PublicId } from './paserk.js';
import { readJsonFooter } from './paseto-footer.js';
import { V4PublicVerifyFactory, V4PublicVerifyKey } from './paseto-v4-public.js';

/** Why an access token was refused. Stable strings, sent to clients as `reason`. */
export type AccessTokenFailure =
  /** No token in the request. */
  | 'missing'
  /** Not a v4.public token with a `{"kid": "k4.pid..."}` footer, or required claims missing or invalid. */
  | 'malformed'
  /** The footer's `kid` is not one of the configured public keys. */
  | 'unknown-key'
  /** The signature does not verify (altered token, or signed by another key). */
  | 'tampered'
  /** `exp` has passed (beyond the clock tolerance). */
  | 'expired'
  /** `nbf` or `iat` is in the future (beyond the clock tolerance). */
  | 'not-yet-valid'
  /** `iss` is not the configured issuer. */
  | 'wrong-issuer'
  /** `aud` is not the configured audience. */
  | 'wrong-audience';

/** What the verifier checks. */
export interface AccessTokenRules {
  /** `k4.public` PASERKs of the issuer's signing keys. */
  readonly publicKeys: readonly K4PublicPaserk[];
  /** Accepted `iss` values. */
  readonly issuer: readonly string[];
  /** Accepted `aud` values. */
  readonly audience: readonly string[];
  /** Seconds of clock skew tolerated on `exp`, `nbf` and `iat`. */
  readonly clockTolerance: number;
  /**
   * How many verified tokens to remember by their exact text, so that a token seen again skips the
   * signature check (only its `exp` is checked again) until it expires; 0 remembers none.
   */
  readonly verifiedTokenCache: number;
  /** Longest token accepted, in UTF-8 bytes; a longer one is refused as `malformed` before anything else. */
  readonly maxTokenBytes: number;
}

/** An authentic, current token. */
export interface VerifiedAccessToken {
  readonly claims: Claims;
  /** `exp` in epoch ms. */
  readonly expiresAt: number;
  /** The `k4.pid` of the key that verified it. */
  readonly keyId: K4PublicId;
}

/** The outcome of {@link AccessTokenVerifier.verify}. */
export type AccessTokenResult =
  | { readonly ok: true; readonly token: VerifiedAccessToken }
  | { readonly ok: false; readonly reason: AccessTokenFailure };

/** Verifies access tokens against fixed rules. */
export interface AccessTokenVerifier {
  verify(token: string): Promise<AccessTokenResult>;
}

/** Default longest access token, in UTF-8 bytes; an access token is a few hundred. */
export const DEFAULT_MAX_TOKEN_BYTES = 8192;
const SHAPE = /^v4\.public\.[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)$/;
const FOOTER_MEMBERS = ['kid', 'wpk'] as const;
/** A k4.pid: the header and 44 base64url characters (33 bytes). */
const PUBLIC_ID = /^k4\.pid\.[A-Za-z0-9_-]{44}$/;

const fail = (reason: AccessTokenFailure): AccessTokenResult => ({ ok: false, reason });

/** The reason for a claim that `paseto` refused after the signature verified. */
function claimFailure(error: { claim?: string; message: string }): AccessTokenFailure {
  switch (error.claim) {
    case 'aud':
      return 'wrong-audience';
    case 'iss':
      return 'wrong-issuer';
    case 'exp':
      return /expired/i.test(error.message) ? 'expired' : 'malformed';
    case 'nbf':
    case 'iat':
      return /not active|future/i.test(error.message) ? 'not-yet-valid' : 'malformed';
    default:
      return 'malformed';
  }
}

/** Freezes `value` and everything in it (verified claims are shared by every request with that token). */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Remembers verified tokens by their text, first in first out, at most `limit`. A hit whose `exp` has
 * passed is forgotten and refused as expired: everything else about a token was fixed when it verified.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, VerifiedAccessToken>();

  constructor(
    private readonly limit: number,
    private readonly toleranceMs: number,
  ) {}

  get(token: string): AccessTokenResult | undefined {
    const hit = this.entries.get(token);
    if (hit === undefined) return undefined;
    if (Date.now() > hit.expiresAt + this.toleranceMs) {
      this.entries.delete(token);
      return fail('expired');
    }
    return { ok: true, token: hit };
  }

  add(token: string, verified: VerifiedAccessToken): void {
    if (this.limit === 0) return;
    if (this.entries.size >= this.limit) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(token, verified);
  }
}

/** Creates a verifier. The rules are expected to be validated already (see the middleware options). */
export function createAccessTokenVerifier(rules: AccessTokenRules): AccessTokenVerifier {
  const protocol = new PublicProtocol(V4PublicVerifyFactory);
  const keys = new Map<string, V4PublicVerifyKey>();
  for (const paserk of rules.publicKeys) keys.set(k4PublicId(paserk), new V4PublicVerifyKey(paserk));
  const options = {
    issuer: rules.issuer,
    audience: rules.audience,
    clockTolerance: rules.clockTolerance,
  };
  const cache = new VerifiedTokens(rules.verifiedTokenCache, rules.clockTolerance * 1000);

  return {
    async verify(token) {
      if (typeof token !== 'string' || exceedsBytes(token, rules.maxTokenBytes)) return fail('malformed');
      const remembered = cache.get(token);
      if (remembered !== undefined) return remembered;
      const shape = SHAPE.exec(token);
      const footerBytes = shape ? fromBase64url(shape[1] as string) : undefined;
      const footer = footerBytes && readJsonFooter(footerBytes, FOOTER_MEMBERS);
      const kid = footer?.kid;
      if (kid === undefined || !PUBLIC_ID.test(kid)) return fail('malformed');
      const key = keys.get(kid);
      if (key === undefined) return fail('unknown-key');
      let claims: Claims;
      try {
        ({ claims } = await protocol.Verify(key, token, options));
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'ERR_PASETO_CLAIM_VALIDATION') return fail(claimFailure(error as Error));
        return fail('tampered');
      }
      // paseto requires `exp` (allowNonExpiring is off) and has checked it is an RFC 3339 date-time.
      const expiresAt = Date.parse(claims.exp as string);
      if (!Number.isFinite(expiresAt)) return fail('malformed');
      const verified: VerifiedAccessToken = {
        claims: deepFreeze(claims),
        expiresAt,
        keyId: kid as K4PublicId,
      };
      cache.add(token, verified);
      return { ok: true, token: verified };
    },
  };
}
