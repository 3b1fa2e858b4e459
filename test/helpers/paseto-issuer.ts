/**
 * A test authorization server: signs v4.public access tokens with the `paseto` package, the key id in the
 * footer, so that the middleware tests use tokens made the way a real issuer would make them.
 */
import { randomUUID } from 'node:crypto';
import { PublicProtocol } from 'paseto';
import { ImportSecretKeyFactory, SignFactory } from 'paseto/v4/public';
import { generatePasetoKeyPair } from '../../src/security/paseto-keys.js';

export const ISSUER = 'https://auth.test';
export const AUDIENCE = 'shop';

const protocol = new PublicProtocol(SignFactory, ImportSecretKeyFactory);

/** Options of one token. */
export interface IssueOptions {
  /** Lifetime in seconds (default 600). Negative: already expired. */
  expiresIn?: number;
  /** Footer as raw text (default `{"kid": <pid>}`); `null` for no footer. */
  footer?: string | null;
  /** Extra claims, or overrides of the defaults (`iss`, `aud`, `sub`, `jti`, `scope`). */
  claims?: Record<string, unknown>;
  /** Claims to leave out. */
  without?: string[];
}

export interface Issuer {
  readonly publicKey: string;
  readonly pid: string;
  /** Signs a token; returns it with its claims. */
  issue(options?: IssueOptions): Promise<{ token: string; jti: string; exp: string }>;
}

/** A new issuer with its own Ed25519 key pair. */
export function createIssuer(): Issuer {
  const pair = generatePasetoKeyPair();
  const secret = protocol.ImportSecretKey(pair.secretKey);
  return {
    publicKey: pair.publicKey,
    pid: pair.pid,
    async issue(options = {}) {
      const jti = randomUUID();
      const expiresIn = options.expiresIn ?? 600;
      const exp = new Date(Math.floor(Date.now() / 1000) * 1000 + expiresIn * 1000).toISOString();
      const claims: Record<string, unknown> = {
        iss: ISSUER,
        aud: AUDIENCE,
        sub: 'alice',
        jti,
        scope: ['buyer', 'report'],
        exp,
        ...options.claims,
      };
      for (const name of options.without ?? []) delete claims[name];
      const footerText = options.footer === undefined ? JSON.stringify({ kid: pair.pid }) : options.footer;
      const token = await protocol.Sign(await secret, claims as never, {
        ...(footerText === null ? {} : { footer: new TextEncoder().encode(footerText) }),
        ...(claims['exp'] === undefined ? { nonExpiring: true } : {}),
        addIssuedAt: false,
      });
      return { token, jti: String(claims['jti']), exp: String(claims['exp']) };
    },
  };
}
