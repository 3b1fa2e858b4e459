/**
 * Access-token verification (unit, no server): every refusal reason, key rotation by footer kid, and the
 * bounds on what is parsed before the signature is checked.
 */
import { describe, expect, it } from 'vitest';
import { type AccessTokenRules, createAccessTokenVerifier } from '../../src/security/access-token.js';
import type { K4PublicPaserk } from '../../src/security/paserk.js';
import { generatePasetoKey } from '../../src/security/paseto-keys.js';
import { createPasetoSealer } from '../../src/security/paseto-sealer.js';
import { exceedsBytes } from '../../src/validation/utf8.js';
import { AUDIENCE, createIssuer, ISSUER } from '../helpers/paseto-issuer.js';

const issuer = createIssuer();
const rules = (overrides: Partial<AccessTokenRules> = {}): AccessTokenRules => ({
  publicKeys: [issuer.publicKey as K4PublicPaserk],
  issuer: [ISSUER],
  audience: [AUDIENCE],
  clockTolerance: 0,
  verifiedTokenCache: 100,
  maxTokenBytes: 8192,
  ...overrides,
});
const verifier = createAccessTokenVerifier(rules());

async function reasonOf(token: string, v = verifier) {
  const result = await v.verify(token);
  return result.ok ? 'ok' : result.reason;
}

describe('access token verification', () => {
  it('accepts a current token of the issuer and audience, with its exp and key id', async () => {
    const { token, exp } = await issuer.issue();
    const result = await verifier.verify(token);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.token.claims.sub).toBe('alice');
    expect(result.token.expiresAt).toBe(Date.parse(exp));
    expect(result.token.keyId).toBe(issuer.pid);
  });

  it('accepts any listed issuer or audience', async () => {
    const v = createAccessTokenVerifier(rules({ issuer: ['other', ISSUER], audience: ['x', AUDIENCE] }));
    expect(await reasonOf((await issuer.issue()).token, v)).toBe('ok');
  });

  it('refuses by claim: expired, not yet valid, wrong issuer, wrong audience', async () => {
    expect(await reasonOf((await issuer.issue({ expiresIn: -5 })).token)).toBe('expired');
    const later = new Date(Date.now() + 60_000).toISOString();
    expect(await reasonOf((await issuer.issue({ claims: { nbf: later } })).token)).toBe('not-yet-valid');
    expect(await reasonOf((await issuer.issue({ claims: { iat: later } })).token)).toBe('not-yet-valid');
    expect(await reasonOf((await issuer.issue({ claims: { iss: 'https://evil.test' } })).token)).toBe(
      'wrong-issuer',
    );
    expect(await reasonOf((await issuer.issue({ without: ['iss'] })).token)).toBe('wrong-issuer');
    expect(await reasonOf((await issuer.issue({ claims: { aud: 'admin' } })).token)).toBe('wrong-audience');
    expect(await reasonOf((await issuer.issue({ without: ['aud'] })).token)).toBe('wrong-audience');
  });

  it('tolerates clock skew on exp only as configured', async () => {
    const { token } = await issuer.issue({ expiresIn: -2 });
    expect(await reasonOf(token)).toBe('expired');
    expect(await reasonOf(token, createAccessTokenVerifier(rules({ clockTolerance: 30 })))).toBe('ok');
  });

  it('refuses tokens without exp, or with an exp that is not a date, as malformed', async () => {
    expect(await reasonOf((await issuer.issue({ without: ['exp'] })).token)).toBe('malformed');
  });

  it('refuses an unknown kid, and a forged kid or altered payload as tampered', async () => {
    const stranger = createIssuer();
    expect(await reasonOf((await stranger.issue()).token)).toBe('unknown-key');
    // Another key signs, but the footer names ours: the signature does not verify.
    const forged = await stranger.issue({ footer: JSON.stringify({ kid: issuer.pid }) });
    expect(await reasonOf(forged.token)).toBe('tampered');
    const { token } = await issuer.issue();
    const [v, p, body, footer] = token.split('.') as [string, string, string, string];
    const altered = `${v}.${p}.${body.slice(0, 10)}${body[10] === 'A' ? 'B' : 'A'}${body.slice(11)}.${footer}`;
    expect(await reasonOf(altered)).toBe('tampered');
  });

  it('picks the key by kid, so the issuer can rotate', async () => {
    const next = createIssuer();
    const both = createAccessTokenVerifier(
      rules({ publicKeys: [issuer.publicKey, next.publicKey] as K4PublicPaserk[] }),
    );
    expect(await reasonOf((await issuer.issue()).token, both)).toBe('ok');
    expect(await reasonOf((await next.issue()).token, both)).toBe('ok');
  });

  it('remembers verified tokens: the same text skips the signature check, but never its expiry', async () => {
    const cached = createAccessTokenVerifier(rules());
    const { token } = await issuer.issue({ expiresIn: 1 });
    const first = await cached.verify(token);
    const second = await cached.verify(token);
    expect(first.ok && second.ok && first.token === second.token).toBe(true); // served from memory
    if (first.ok) expect(Object.isFrozen(first.token.claims)).toBe(true);
    const uncached = createAccessTokenVerifier(rules({ verifiedTokenCache: 0 }));
    const a = await uncached.verify(token);
    const b = await uncached.verify(token);
    expect(a.ok && b.ok && a.token !== b.token).toBe(true);
    // Once exp has passed, the remembered token is refused like any other.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await reasonOf(token, cached)).toBe('expired');
    expect(await reasonOf(token, cached)).toBe('expired');
  });

  it('keeps at most verifiedTokenCache tokens', async () => {
    const small = createAccessTokenVerifier(rules({ verifiedTokenCache: 1 }));
    const a = (await issuer.issue()).token;
    const b = (await issuer.issue()).token;
    const a1 = await small.verify(a);
    await small.verify(b); // evicts a
    const a2 = await small.verify(a);
    expect(a1.ok && a2.ok && a1.token !== a2.token).toBe(true);
  });

  it('refuses a token over maxTokenBytes (UTF-8 bytes) as malformed, before any lookup or check', async () => {
    // A genuine token, about 3 KB with a big claim.
    const { token } = await issuer.issue({ claims: { scope: 'read '.repeat(500) } });
    expect(Buffer.byteLength(token)).toBeGreaterThan(2048);
    expect(await reasonOf(token)).toBe('ok'); // remembered by the default verifier's cache
    const small = createAccessTokenVerifier(rules({ maxTokenBytes: 2048 }));
    expect(await reasonOf(token, small)).toBe('malformed');
    // Counted in bytes, not characters: 1,000 three-byte characters are 3,000 bytes.
    expect(exceedsBytes('\u20ac'.repeat(1000), 2048)).toBe(true);
    expect(exceedsBytes('a'.repeat(2048), 2048)).toBe(false);
    expect(exceedsBytes('\u20ac'.repeat(682), 2048)).toBe(false);
    expect(exceedsBytes('\u20ac'.repeat(683), 2048)).toBe(true);
    expect(await reasonOf(123 as unknown as string)).toBe('malformed');
  });

  it('refuses anything that is not a v4.public token with a bounded {"kid"} footer as malformed', async () => {
    const { token } = await issuer.issue();
    const noFooter = (await issuer.issue({ footer: null })).token;
    const local = await createPasetoSealer({
      purpose: 'local',
      deployment: 'd',
      keys: [generatePasetoKey().key],
    }).seal('x', { origin: 'hk', channel: 'c' });
    const cases = [
      '',
      'garbage',
      noFooter,
      local,
      token.replace('v4.', 'v3.'),
      `${token}.x`,
      token.slice(0, token.lastIndexOf('.') + 1),
      (await issuer.issue({ footer: 'not json' })).token,
      (await issuer.issue({ footer: JSON.stringify({ kid: issuer.pid, other: 'x' }) })).token,
      (await issuer.issue({ footer: JSON.stringify({ kid: { deep: [issuer.pid] } }) })).token,
      (await issuer.issue({ footer: JSON.stringify({ kid: 'k4.lid.whatever' }) })).token,
      (await issuer.issue({ footer: JSON.stringify({ kid: 'k4.pid.\nforged log line' }) })).token,
      (await issuer.issue({ footer: JSON.stringify({ kid: issuer.pid, wpk: 'x'.repeat(600) }) })).token,
      `v4.public.${'A'.repeat(9000)}.e30`,
    ];
    for (const bad of cases) expect(await reasonOf(bad)).toBe('malformed');
  });
});
