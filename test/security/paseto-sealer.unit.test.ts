/**
 * The PASETO sealer: round trips, interoperability with the `paseto` package, every refusal reason,
 * key rotation, binding mismatches, per-region keys, garbage, and option validation.
 */
import fc from 'fast-check';
import { LocalProtocol, PublicProtocol } from 'paseto';
import { ImportPublicKeyFactory, VerifyFactory } from 'paseto/v4/public';
import { describe, expect, it } from 'vitest';
import type { RefusalReason, SealBinding, Sealer } from '../../src/contracts/sealer.js';
import { ConfigError, SealError } from '../../src/errors.js';
import { preAuthEncode, toBase64url, utf8 } from '../../src/security/bytes.js';
import { parseK4Local } from '../../src/security/paserk.js';
import { generatePasetoKey, generatePasetoKeyPair } from '../../src/security/paseto-keys.js';
import { createPasetoSealer, type PasetoSealerOptions } from '../../src/security/paseto-sealer.js';
import { encryptV4Local, V4LocalDecryptFactory, V4LocalKey } from '../../src/security/paseto-v4-local.js';

const HK: SealBinding = { origin: 'hk', channel: 'sess:' };
const KR: SealBinding = { origin: 'kr', channel: 'sess:' };

/** Resolves to the refusal reason, failing the test if `open` succeeds or throws something else. */
async function refusal(sealer: Sealer, token: unknown, binding: SealBinding): Promise<RefusalReason> {
  try {
    await sealer.open(token as string, binding);
  } catch (error) {
    expect(error).toBeInstanceOf(SealError);
    expect((error as SealError).code).toBe('ERR_GEOSESSION_SEAL');
    return (error as SealError).reason;
  }
  throw new Error('open accepted a token it should have refused');
}

function footerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[3] as string, 'base64url').toString()) as Record<
    string,
    unknown
  >;
}

/** The token with its footer replaced by `footer` (a string, taken as is). */
function withFooter(token: string, footer: string): string {
  return `${token.split('.').slice(0, 3).join('.')}.${toBase64url(utf8(footer))}`;
}

function localSealer(keys: string[], extra: Partial<PasetoSealerOptions> = {}) {
  return createPasetoSealer({
    purpose: 'local',
    deployment: 'shop-prod',
    keys,
    ...extra,
  } as PasetoSealerOptions);
}

const payloads = ['', 'x', '[{"id":"1","kind":"set","body":"{\\"user\\":\\"ü 🔑\\"}"}]', 'a'.repeat(100_000)];

describe('v4.local sealer', () => {
  const key = generatePasetoKey();
  const sealer = localSealer([key.key]);

  it('round-trips any payload, with the key id and no region', async () => {
    expect(sealer.scheme).toBe('paseto-v4-local');
    expect(sealer.keyId).toBe(key.lid);
    for (const payload of payloads) {
      const token = await sealer.seal(payload, HK);
      expect(token.startsWith('v4.local.')).toBe(true);
      expect(token).not.toContain('ü');
      expect(await sealer.open(token, HK)).toEqual({ payload, keyId: key.lid, region: undefined });
    }
  });

  it('writes a small JSON footer with the kid and the binding digest, nothing secret', async () => {
    const token = await sealer.seal('secret payload', HK);
    const footer = footerOf(token);
    expect(Object.keys(footer)).toEqual(['kid', 'bind']);
    expect(footer.kid).toBe(key.lid);
    expect(footer.bind).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(token).not.toContain(key.key.slice('k4.local.'.length));
  });

  it('makes standard v4.local tokens: the paseto package opens them with the implicit assertion', async () => {
    const token = await sealer.seal('interop', HK);
    const protocol = new LocalProtocol(V4LocalDecryptFactory);
    const assertion = preAuthEncode([
      utf8('geosession-seal-v1'),
      utf8('shop-prod'),
      utf8(HK.channel),
      utf8(HK.origin),
    ]);
    const opened = await protocol.Decrypt(V4LocalKey.fromPaserk(key.key), token, {
      implicitAssertion: assertion,
      allowNonExpiring: true,
    });
    expect(opened.claims).toEqual({ p: 'interop' });
    await expect(
      protocol.Decrypt(V4LocalKey.fromPaserk(key.key), token, { allowNonExpiring: true }),
    ).rejects.toThrow();
  });

  it('refuses a token for another channel or deployment as wrong-channel, before any crypto', async () => {
    const token = await sealer.seal('p', HK);
    expect(await refusal(sealer, token, { origin: 'hk', channel: 'other:' })).toBe('wrong-channel');
    const otherDeployment = localSealer([key.key], { deployment: 'shop-staging' });
    expect(await refusal(otherDeployment, token, HK)).toBe('wrong-channel');
    // A forged footer carrying the right digest still does not open: the assertion binds the channel.
    const forChannel = await sealer.seal('p', { origin: 'hk', channel: 'other:' });
    const forged = withFooter(token, JSON.stringify(footerOf(forChannel)));
    expect(await refusal(sealer, forged, { origin: 'hk', channel: 'other:' })).toBe('tampered');
  });

  it('refuses a token relabelled with another origin (the implicit assertion binds it)', async () => {
    const token = await sealer.seal('p', HK);
    expect(await refusal(sealer, token, KR)).toBe('tampered');
  });

  it('refuses an unknown or retired key as unknown-key, and a forged kid as tampered', async () => {
    const stranger = localSealer([generatePasetoKey().key]);
    const token = await stranger.seal('p', HK);
    expect(await refusal(sealer, token, HK)).toBe('unknown-key');
    const relabelled = withFooter(token, JSON.stringify({ ...footerOf(token), kid: key.lid }));
    expect(await refusal(sealer, relabelled, HK)).toBe('tampered');
  });

  it('refuses any altered character of the body as tampered or malformed, never opening it', async () => {
    const token = await sealer.seal('{"a":1}', HK);
    const bodyStart = 'v4.local.'.length;
    const bodyEnd = token.lastIndexOf('.');
    for (let i = bodyStart; i < bodyEnd; i++) {
      const c = token[i] === 'A' ? 'B' : 'A';
      const altered = token.slice(0, i) + c + token.slice(i + 1);
      expect(['tampered', 'malformed']).toContain(await refusal(sealer, altered, HK));
    }
  });

  it('refuses tokens of the other purpose, version or shape as malformed', async () => {
    const token = await sealer.seal('p', HK);
    const pair = generatePasetoKeyPair();
    const publicSealer = createPasetoSealer({
      purpose: 'public',
      deployment: 'shop-prod',
      region: 'hk',
      secretKey: pair.secretKey,
      publicKeys: {},
    });
    expect(await refusal(sealer, await publicSealer.seal('p', HK), HK)).toBe('malformed');
    expect(await refusal(publicSealer, token, HK)).toBe('malformed');
    const cases = [
      undefined,
      42,
      '',
      'v4.local.',
      token.replace('v4.', 'v3.'),
      token.replace('v4.local.', 'v4.LOCAL.'),
      token.slice(0, token.lastIndexOf('.')), // no footer
      `${token}.extra`,
      `${token}=`,
      token.replace(/^v4\.local\.[^.]+/, 'v4.local.'), // empty body
      token.replace(/^v4\.local\.[^.]+/, 'v4.local.A'), // impossible base64 length
    ];
    for (const bad of cases) expect(await refusal(sealer, bad, HK)).toBe('malformed');
    // Authentic, but not the claims the sealer writes.
    const raw = parseK4Local(generatePasetoKey().key);
    const other = localSealer([`k4.local.${toBase64url(raw)}`]);
    const footer = footerOf(await other.seal('p', HK));
    const footerBytes = utf8(JSON.stringify(footer));
    const assertion = preAuthEncode([
      utf8('geosession-seal-v1'),
      utf8('shop-prod'),
      utf8('sess:'),
      utf8('hk'),
    ]);
    const body = encryptV4Local(raw, utf8('{"q":1}'), footerBytes, assertion);
    const notOurs = `v4.local.${toBase64url(body)}.${toBase64url(footerBytes)}`;
    expect(await refusal(other, notOurs, HK)).toBe('malformed');
  });

  it('refuses oversized, deep, non-JSON and unexpected footers as malformed', async () => {
    const token = await sealer.seal('p', HK);
    const good = footerOf(token);
    const footers = [
      JSON.stringify({ ...good, pad: 'x' }), // unknown member
      JSON.stringify({ kid: good.kid }), // missing binding
      JSON.stringify({ ...good, kid: 1 }),
      JSON.stringify({ ...good, kid: { nested: true } }),
      `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
      `{"kid":${'['.repeat(50)}1${']'.repeat(50)}}`,
      JSON.stringify({ ...good, kid: `${good.kid as string}${'x'.repeat(600)}` }),
      ' '.repeat(600),
      "arbitrary-string-that-isn't-json",
      '[]',
      'null',
      JSON.stringify({ ...good, kid: 'k4.pid.AAAA' }), // a kid of the wrong type
      JSON.stringify({ ...good, kid: 'k4.lid.\n[forged log line]' }), // not a PASERK id
    ];
    for (const footer of footers)
      expect(await refusal(sealer, withFooter(token, footer), HK)).toBe('malformed');
    // A footer that is not valid UTF-8 or not base64url.
    expect(await refusal(sealer, `${token.slice(0, token.lastIndexOf('.'))}.__8`, HK)).toBe('malformed');
    expect(await refusal(sealer, `${token.slice(0, token.lastIndexOf('.'))}.${'A'.repeat(5000)}`, HK)).toBe(
      'malformed',
    );
  });

  it('refuses truncated tokens and arbitrary strings, never throwing anything but a SealError', async () => {
    const token = await sealer.seal('a batch of envelopes', HK);
    for (let n = 0; n < token.length; n++) {
      expect(['malformed', 'tampered', 'wrong-channel']).toContain(
        await refusal(sealer, token.slice(0, n), HK),
      );
    }
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (garbage) => {
        await refusal(sealer, garbage, HK);
        await refusal(sealer, `v4.local.${garbage}`, HK);
        await refusal(sealer, `${token.slice(0, 60)}${garbage}`, HK);
      }),
      { numRuns: 300 },
    );
  });

  it('rotates without downtime: add the key everywhere, switch sealWith, retire the old one', async () => {
    const oldKey = generatePasetoKey();
    const newKey = generatePasetoKey();
    const before = localSealer([oldKey.key]);
    const oldToken = await before.seal('old', HK);
    // Step 1: every region accepts both, still sealing with the old key.
    const step1 = localSealer([oldKey.key, newKey.key]);
    expect(step1.keyId).toBe(oldKey.lid);
    // Step 2: seal with the new key; old tokens (in flight, in backlogs) still open.
    const step2 = localSealer([oldKey.key, newKey.key], { sealWith: newKey.lid });
    const newToken = await step2.seal('new', HK);
    expect(footerOf(newToken).kid).toBe(newKey.lid);
    expect((await step2.open(oldToken, HK)).payload).toBe('old');
    expect((await step1.open(newToken, HK)).payload).toBe('new'); // a region not switched yet
    expect(await refusal(before, newToken, HK)).toBe('unknown-key'); // why step 1 comes first
    // Step 3: retire the old key.
    const step3 = localSealer([newKey.key]);
    expect((await step3.open(newToken, HK)).keyId).toBe(newKey.lid);
    expect(await refusal(step3, oldToken, HK)).toBe('unknown-key');
  });
});

describe('v4.public sealer', () => {
  const hk = generatePasetoKeyPair();
  const kr = generatePasetoKeyPair();
  const make = (
    region: string,
    secretKey: string,
    publicKeys: Record<string, string[]>,
    deployment = 'shop-prod',
  ) => createPasetoSealer({ purpose: 'public', deployment, region, secretKey, publicKeys });
  const hkSealer = make('hk', hk.secretKey, { kr: [kr.publicKey] });
  const krSealer = make('kr', kr.secretKey, { hk: [hk.publicKey] });

  it('round-trips between regions, naming the signing region', async () => {
    expect(hkSealer.scheme).toBe('paseto-v4-public');
    expect(hkSealer.keyId).toBe(hk.pid);
    for (const payload of payloads) {
      const token = await hkSealer.seal(payload, HK);
      expect(await krSealer.open(token, HK)).toEqual({ payload, keyId: hk.pid, region: 'hk' });
      expect((await hkSealer.open(token, HK)).region).toBe('hk'); // its own key is trusted too
    }
  });

  it('makes standard v4.public tokens: the paseto package verifies them', async () => {
    const token = await hkSealer.seal('interop', HK);
    const protocol = new PublicProtocol(VerifyFactory, ImportPublicKeyFactory);
    const assertion = preAuthEncode([
      utf8('geosession-seal-v1'),
      utf8('shop-prod'),
      utf8('sess:'),
      utf8('hk'),
    ]);
    const { claims } = await protocol.Verify(await protocol.ImportPublicKey(hk.publicKey), token, {
      implicitAssertion: assertion,
      allowNonExpiring: true,
    });
    expect(claims).toEqual({ p: 'interop' });
  });

  it('seals only for its own region', async () => {
    await expect(hkSealer.seal('p', KR)).rejects.toMatchObject({ reason: 'origin-mismatch' });
  });

  it('refuses a batch a region signed for another origin as origin-mismatch', async () => {
    // A compromised hk that can sign cannot speak for kr: its key verifies, but belongs to hk.
    const rogue = make('kr', hk.secretKey, {}); // hk's key, pretending to be kr
    const token = await rogue.seal('forged', KR);
    expect(await refusal(krSealer, token, KR)).toBe('origin-mismatch');
    const jp = make('jp', generatePasetoKeyPair().secretKey, { hk: [hk.publicKey] });
    expect(await refusal(jp, token, KR)).toBe('origin-mismatch');
  });

  it('refuses a token relabelled with another origin as tampered', async () => {
    const token = await hkSealer.seal('p', HK);
    const jp = make('jp', generatePasetoKeyPair().secretKey, { hk: [hk.publicKey], kr: [kr.publicKey] });
    expect(await refusal(jp, token, KR)).toBe('tampered');
  });

  it('refuses when a public key is moved to another region', async () => {
    const confused = make('jp', generatePasetoKeyPair().secretKey, { kr: [hk.publicKey] });
    const token = await hkSealer.seal('p', HK);
    expect(await refusal(confused, token, HK)).toBe('origin-mismatch');
  });

  it('refuses unknown keys, other channels and deployments, and altered tokens', async () => {
    const token = await hkSealer.seal('{"a":1}', HK);
    const stranger = make('kr', kr.secretKey, {}); // does not know hk
    expect(await refusal(stranger, token, HK)).toBe('unknown-key');
    expect(await refusal(krSealer, token, { origin: 'hk', channel: 'x:' })).toBe('wrong-channel');
    const staging = make('kr', kr.secretKey, { hk: [hk.publicKey] }, 'shop-staging');
    expect(await refusal(staging, token, HK)).toBe('wrong-channel');
    // The payload is signed, not encrypted: change one character of it.
    const altered = token.replace('v4.public.eyJw', 'v4.public.eyJx');
    expect(await refusal(krSealer, altered, HK)).toBe('tampered');
    const relabelled = withFooter(token, JSON.stringify({ ...footerOf(token), kid: kr.pid }));
    expect(await refusal(krSealer, relabelled, HK)).toBe('tampered');
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: token.length - 1 }),
        fc.nat({ max: token.length }),
        async (from, length) => {
          const cut = token.slice(0, from) + token.slice(from + length + 1);
          await refusal(krSealer, cut, HK);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rotates a region’s key: others trust both, the region switches, the old one is dropped', async () => {
    const next = generatePasetoKeyPair();
    const old = await hkSealer.seal('old', HK);
    const krBoth = make('kr', kr.secretKey, { hk: [hk.publicKey, next.publicKey] });
    const hkNext = make('hk', next.secretKey, { kr: [kr.publicKey], hk: [hk.publicKey] });
    const fresh = await hkNext.seal('new', HK);
    expect((await krBoth.open(old, HK)).payload).toBe('old');
    expect((await krBoth.open(fresh, HK)).keyId).toBe(next.pid);
    const krAfter = make('kr', kr.secretKey, { hk: [next.publicKey] });
    expect(await refusal(krAfter, old, HK)).toBe('unknown-key');
  });
});

describe('token size limit', () => {
  it('open refuses a token over maxTokenBytes as malformed, before decoding or authenticating it', async () => {
    const key = generatePasetoKey().key;
    const pair = generatePasetoKeyPair();
    const publicSealer = (extra: Partial<PasetoSealerOptions> = {}) =>
      createPasetoSealer({
        purpose: 'public',
        deployment: 'd',
        region: 'hk',
        secretKey: pair.secretKey,
        publicKeys: {},
        ...extra,
      } as PasetoSealerOptions);
    const sealers = [
      [localSealer([key]), localSealer([key], { maxTokenBytes: 64 * 1024 })],
      [publicSealer(), publicSealer({ maxTokenBytes: 64 * 1024 })],
    ] as const;
    for (const [roomy, strict] of sealers) {
      // A genuine token of about 100 KB opens under the default limit (8 MiB), not under 64 KiB.
      const token = await roomy.seal('a'.repeat(75_000), HK);
      expect(token.length).toBeGreaterThan(64 * 1024);
      expect((await roomy.open(token, HK)).payload).toHaveLength(75_000);
      expect(await refusal(strict, token, HK)).toBe('malformed');
      // Below the limit it still opens.
      const small = await roomy.seal('x', HK);
      expect((await strict.open(small, HK)).payload).toBe('x');
      // 9 MiB of anything is refused under the default, whatever it holds.
      const huge = `${token.slice(0, 10)}${'A'.repeat(9 * 1024 * 1024)}${token.slice(token.lastIndexOf('.'))}`;
      await expect(roomy.open(huge, HK)).rejects.toThrow(/larger than maxTokenBytes/);
    }
  });
});

describe('option validation', () => {
  const key = generatePasetoKey();
  const pair = generatePasetoKeyPair();
  const local = { purpose: 'local', deployment: 'd', keys: [key.key] };
  const pub = { purpose: 'public', deployment: 'd', region: 'hk', secretKey: pair.secretKey, publicKeys: {} };

  const cases: Array<[string, unknown]> = [
    ['options', null],
    ['purpose', { ...local, purpose: 'shared' }],
    ['deployment', { ...local, deployment: undefined }],
    ['deployment', { ...local, deployment: '' }],
    ['deployment', { ...local, deployment: 'has space' }],
    ['keys', { ...local, keys: [] }],
    ['keys', { ...local, keys: key.key }],
    ['keys[1]', { ...local, keys: [key.key, 'k4.local.short'] }],
    ['keys[0]', { ...local, keys: [pair.secretKey] }],
    ['keys[1]', { ...local, keys: [key.key, key.key] }],
    ['sealWith', { ...local, sealWith: generatePasetoKey().lid }],
    ['sealWith', { ...local, sealWith: key.key }],
    ['secretKey', { ...local, secretKey: pair.secretKey }], // a public option on a local sealer
    ['colour', { ...local, colour: 'red' }],
    ['region', { ...pub, region: undefined }],
    ['region', { ...pub, region: 'Hong Kong' }],
    ['secretKey', { ...pub, secretKey: undefined }],
    ['secretKey', { ...pub, secretKey: key.key }],
    ['publicKeys', { ...pub, publicKeys: undefined }],
    ['publicKeys', { ...pub, publicKeys: [pair.publicKey] }],
    ['publicKeys.KR', { ...pub, publicKeys: { KR: [pair.publicKey] } }],
    ['publicKeys.kr', { ...pub, publicKeys: { kr: pair.publicKey } }],
    ['publicKeys.kr[0]', { ...pub, publicKeys: { kr: [pair.secretKey] } }],
    ['publicKeys.jp[0]', { ...pub, publicKeys: { kr: [pair.publicKey], jp: [pair.publicKey] } }],
    ['secretKey', { ...pub, publicKeys: { kr: [pair.publicKey] } }], // own key listed for another region
    ['keys', { ...pub, keys: [key.key] }],
    ['maxTokenBytes', { ...local, maxTokenBytes: 1024 }],
    ['maxTokenBytes', { ...pub, maxTokenBytes: 1e12 }],
    ['maxTokenBytes', { ...local, maxTokenBytes: '8MB' }],
  ];
  for (const [option, options] of cases) {
    it(`names \`${option}\` (${JSON.stringify(options)?.slice(0, 60)})`, () => {
      let caught: unknown;
      try {
        createPasetoSealer(options as PasetoSealerOptions);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).option).toBe(option);
      // Never echo a key in the message.
      expect((caught as Error).message).not.toContain(key.key.slice(9));
      expect((caught as Error).message).not.toContain(pair.secretKey.slice(10));
    });
  }
});
