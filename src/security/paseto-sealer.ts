/**
 * A {@link Sealer} on PASETO v4: `local` (shared symmetric keys, v4.local) or `public` (one Ed25519
 * signing key per region, v4.public).
 *
 * Tokens are standard PASETO v4 (any v4 implementation opens them, given the key and the implicit
 * assertion): `v4.<purpose>.<body>.<footer>`.
 * - The message is the claims object `{"p": <payload>}`, with no `iat` or `exp`: replaying a batch into
 *   the channel it was made for is harmless (applying is idempotent), and a backlog must still open
 *   hours later.
 * - The footer is `{"kid": <k4.lid or k4.pid>, "bind": <digest>}`, where `bind` is a 72-bit BLAKE2b
 *   digest of the deployment and channel: a token for another channel or deployment is refused before
 *   any cryptography.
 * - The implicit assertion (authenticated, never transmitted) binds deployment, channel and origin, so a
 *   token replayed into another keyspace, deployment or origin never opens, whatever its footer says.
 *
 * The framing is done here on the v4 primitives (./paseto-v4-local-fast.ts, ./paseto-v4-public.ts) rather
 * than through the `paseto` package's protocol objects: on Node 20 their base64url falls back to
 * `btoa`/`atob` and costs several ms per 100 KB batch. The tests check that `paseto` opens these tokens.
 * v4.local runs its stream cipher on node:crypto and its BLAKE2b in WebAssembly when the optional
 * package `hash-wasm` is installed (in JavaScript otherwise).
 *
 * `open` checks, in this order, failing closed with a `SealError` whose `reason` is:
 * 1. `malformed`: not a string, not a v4 token of the configured purpose, longer than `maxTokenBytes`
 *    (before anything is decoded), no footer, or a footer that
 *    is too long, too deep, not the JSON object above, or a `kid` of the wrong type;
 * 2. `wrong-channel`: the footer's binding digest is not this deployment's and channel's;
 * 3. `unknown-key`: no accepted key has that id (never seen, or retired);
 * 4. `malformed`: the body is not canonical base64url;
 * 5. `tampered`: decryption or signature verification failed (altered token, altered footer, or bound
 *    to another origin);
 * 6. `origin-mismatch` (`public` only): the key that verified it belongs to a region other than the
 *    claimed origin, i.e. a region signed for another one;
 * 7. `malformed`: authentic, but the message is not `{"p": <string>}`.
 */
import type { KeyObject } from 'node:crypto';
import { blake2b } from '@noble/hashes/blake2.js';
import type { OpenedSeal, RefusalReason, SealBinding, Sealer } from '../contracts/sealer.js';
import { SealError } from '../errors.js';
import { exceedsBytes } from '../validation/utf8.js';
import { fromBase64url, fromUtf8, preAuthEncode, toBase64url, utf8 } from './bytes.js';
import { ed25519PrivateKeyObject, ed25519PublicKeyObject } from './paserk.js';
import { MAX_FOOTER_BYTES, readJsonFooter } from './paseto-footer.js';
import {
  type PasetoSealerOptions,
  type ResolvedLocalOptions,
  type ResolvedPublicOptions,
  resolveSealerOptions,
} from './paseto-sealer-options.js';
import { decryptV4LocalFast, encryptV4LocalFast, fastestBlake2b } from './paseto-v4-local-fast.js';
import { signV4Public, verifyV4Public } from './paseto-v4-public.js';

export type {
  PasetoLocalSealerOptions,
  PasetoPublicSealerOptions,
  PasetoSealerOptions,
} from './paseto-sealer-options.js';

/** A {@link Sealer} made by {@link createPasetoSealer}. */
export interface PasetoSealer extends Sealer {
  /** `paseto-v4-local` or `paseto-v4-public`. */
  readonly scheme: 'paseto-v4-local' | 'paseto-v4-public';
  /** The PASETO purpose. */
  readonly purpose: 'local' | 'public';
  /** PASERK id of the key new tokens are sealed with (`k4.lid` or `k4.pid`). */
  readonly keyId: string;
}

const FOOTER_NAMES = ['kid', 'bind'] as const;
const PASERK_ID = /^k4\.(lid|pid)\.[A-Za-z0-9_-]{44}$/;
/** Longest base64url footer segment that can decode to at most MAX_FOOTER_BYTES. */
const MAX_FOOTER_SEGMENT = Math.ceil((MAX_FOOTER_BYTES * 4) / 3);
const BINDING_LABEL = utf8('geosession-seal-binding-v1');
const ASSERTION_LABEL = utf8('geosession-seal-v1');
/** Bound caches of per-channel footers and per-binding assertions (a store has one channel). */
const CACHE_LIMIT = 64;

function refuse(reason: RefusalReason, message: string, cause?: unknown): SealError {
  return new SealError(reason, message, cause === undefined ? undefined : { cause });
}

function checkBinding(binding: SealBinding): void {
  if (
    typeof binding !== 'object' ||
    binding === null ||
    typeof binding.origin !== 'string' ||
    typeof binding.channel !== 'string'
  ) {
    throw new TypeError('binding must be { origin: string, channel: string }');
  }
}

/** A small map that forgets everything when full: the working set is one or two entries. */
function memo<T>(make: (key: string) => T): (key: string) => T {
  const cache = new Map<string, T>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      if (cache.size >= CACHE_LIMIT) cache.clear();
      value = make(key);
      cache.set(key, value);
    }
    return value;
  };
}

/** A token that passed every check that needs no key. */
interface Inspected {
  readonly kid: string;
  /** The base64url body, decoded only once a key is found. */
  readonly body: string;
  /** The footer bytes, as authenticated. */
  readonly footer: Uint8Array;
}

/** A footer ready to use: its bytes (authenticated) and its base64url segment (appended). */
interface Footer {
  readonly bytes: Uint8Array;
  readonly segment: string;
}

/** What both purposes share: the token header, binding digests, footers, assertions and parsing. */
class Framing {
  readonly header: string;
  readonly footer: (channel: string) => Footer;
  private readonly digestOf: (channel: string) => string;
  private readonly assertionOf: (key: string) => Uint8Array;

  constructor(
    purpose: 'local' | 'public',
    deployment: string,
    private readonly kidPrefix: string,
    kid: string,
    private readonly maxTokenBytes: number,
  ) {
    this.header = `v4.${purpose}.`;
    this.digestOf = memo((channel) =>
      toBase64url(blake2b(preAuthEncode([BINDING_LABEL, utf8(deployment), utf8(channel)]), { dkLen: 9 })),
    );
    this.footer = memo((channel) => {
      const bytes = utf8(JSON.stringify({ kid, bind: this.digestOf(channel) }));
      return { bytes, segment: toBase64url(bytes) };
    });
    this.assertionOf = memo((key) => {
      const [channel, origin] = JSON.parse(key) as [string, string];
      return preAuthEncode([ASSERTION_LABEL, utf8(deployment), utf8(channel), utf8(origin)]);
    });
  }

  assertion(binding: SealBinding): Uint8Array {
    return this.assertionOf(JSON.stringify([binding.channel, binding.origin]));
  }

  format(body: Uint8Array, footer: Footer): string {
    return `${this.header}${toBase64url(body)}.${footer.segment}`;
  }

  /** Checks the header and the footer (bounded, before any cryptography), or refuses. */
  inspect(token: unknown, binding: SealBinding): Inspected {
    if (typeof token !== 'string' || !token.startsWith(this.header)) {
      throw refuse('malformed', `not a ${this.header.slice(0, -1)} token`);
    }
    if (exceedsBytes(token, this.maxTokenBytes)) {
      throw refuse('malformed', `the token is larger than maxTokenBytes (${this.maxTokenBytes})`);
    }
    const dot = token.indexOf('.', this.header.length);
    if (dot === -1) throw refuse('malformed', 'the token has no footer');
    const segment = token.slice(dot + 1);
    if (segment.length > MAX_FOOTER_SEGMENT) throw refuse('malformed', 'the footer is too long');
    const footer = fromBase64url(segment);
    const fields = footer && readJsonFooter(footer, FOOTER_NAMES);
    if (!footer || !fields || fields.kid === undefined || fields.bind === undefined) {
      throw refuse('malformed', 'the footer is not a geosession seal footer');
    }
    if (fields.bind !== this.digestOf(binding.channel)) {
      throw refuse('wrong-channel', 'the token was sealed for another channel or deployment');
    }
    // A PASERK id is the type header and 44 base64url characters (33 bytes); nothing else gets further,
    // so refusal messages never carry attacker-chosen text.
    if (!fields.kid.startsWith(this.kidPrefix) || !PASERK_ID.test(fields.kid)) {
      throw refuse('malformed', `the footer's kid is not a ${this.kidPrefix} PASERK id`);
    }
    return { kid: fields.kid, body: token.slice(this.header.length, dot), footer };
  }
}

/** Decodes a token body, or refuses it as malformed. */
function bodyBytes(body: string): Uint8Array {
  const bytes = body.length === 0 ? undefined : fromBase64url(body);
  if (!bytes) throw refuse('malformed', 'the token body is not canonical base64url');
  return bytes;
}

function encodeClaims(payload: string): Uint8Array {
  if (typeof payload !== 'string') throw new TypeError('payload must be a string');
  return utf8(JSON.stringify({ p: payload }));
}

/** The payload of authenticated claims, or a refusal when they are not `{"p": string}`. */
function decodeClaims(message: Uint8Array): string {
  let claims: unknown;
  try {
    claims = JSON.parse(fromUtf8(message));
  } catch (error) {
    throw refuse('malformed', 'the token holds no JSON claims', error);
  }
  const payload = (claims as { p?: unknown } | null)?.p;
  if (typeof payload !== 'string') throw refuse('malformed', 'the token holds no payload');
  return payload;
}

function createLocalSealer(options: ResolvedLocalOptions): PasetoSealer {
  const keyId = options.sealWith;
  const framing = new Framing('local', options.deployment, 'k4.lid.', keyId, options.maxTokenBytes);
  const sealKey = options.keys.get(keyId) as Uint8Array;
  return {
    scheme: 'paseto-v4-local',
    purpose: 'local',
    keyId,
    async seal(payload, binding) {
      checkBinding(binding);
      const footer = framing.footer(binding.channel);
      const claims = encodeClaims(payload);
      const mac = await fastestBlake2b();
      const body = await encryptV4LocalFast(mac, sealKey, claims, footer.bytes, framing.assertion(binding));
      return framing.format(body, footer);
    },
    async open(token, binding): Promise<OpenedSeal> {
      checkBinding(binding);
      const { kid, body, footer } = framing.inspect(token, binding);
      const key = options.keys.get(kid as typeof keyId);
      if (!key) throw refuse('unknown-key', `no accepted key has id ${kid}`);
      const bytes = bodyBytes(body);
      let message: Uint8Array;
      try {
        message = await decryptV4LocalFast(
          await fastestBlake2b(),
          key,
          bytes,
          footer,
          framing.assertion(binding),
        );
      } catch (error) {
        throw refuse('tampered', 'the token failed to authenticate', error);
      }
      return { payload: decodeClaims(message), keyId: kid, region: undefined };
    },
  };
}

function createPublicSealer(options: ResolvedPublicOptions): PasetoSealer {
  const keyId = options.ownKeyId;
  const framing = new Framing('public', options.deployment, 'k4.pid.', keyId, options.maxTokenBytes);
  const secret = ed25519PrivateKeyObject(options.secretSeed);
  const verifiers = new Map<string, { key: KeyObject; region: string }>();
  for (const [id, trusted] of options.publicKeys) {
    verifiers.set(id, { key: ed25519PublicKeyObject(trusted.bytes), region: trusted.region });
  }
  return {
    scheme: 'paseto-v4-public',
    purpose: 'public',
    keyId,
    async seal(payload, binding) {
      checkBinding(binding);
      if (binding.origin !== options.region) {
        throw refuse('origin-mismatch', `region ${options.region} cannot seal for origin ${binding.origin}`);
      }
      const footer = framing.footer(binding.channel);
      const body = signV4Public(secret, encodeClaims(payload), footer.bytes, framing.assertion(binding));
      return framing.format(body, footer);
    },
    async open(token, binding): Promise<OpenedSeal> {
      checkBinding(binding);
      const { kid, body, footer } = framing.inspect(token, binding);
      const trusted = verifiers.get(kid);
      if (!trusted) throw refuse('unknown-key', `no accepted key has id ${kid}`);
      const message = verifyV4Public(trusted.key, bodyBytes(body), footer, framing.assertion(binding));
      if (!message) throw refuse('tampered', 'the signature does not verify');
      if (trusted.region !== binding.origin) {
        throw refuse(
          'origin-mismatch',
          `a key of region ${trusted.region} signed a batch that claims origin ${binding.origin}`,
        );
      }
      return { payload: decodeClaims(message), keyId: kid, region: trusted.region };
    },
  };
}

/**
 * Creates a PASETO v4 {@link Sealer} (see the module comment for the token layout and the refusal
 * order). Options are validated at once: a bad one throws a `ConfigError` naming it.
 *
 * @example Shared keys (`local`)
 * ```ts
 * const sealer = createPasetoSealer({ purpose: 'local', deployment: 'shop-prod', keys: [process.env.SEAL_KEY!] });
 * ```
 * @example One key per region (`public`)
 * ```ts
 * const sealer = createPasetoSealer({
 *   purpose: 'public', deployment: 'shop-prod', region: 'hk',
 *   secretKey: process.env.HK_SECRET!, publicKeys: { kr: [process.env.KR_PUBLIC!] },
 * });
 * ```
 */
export function createPasetoSealer(options: PasetoSealerOptions): PasetoSealer {
  const resolved = resolveSealerOptions(options);
  return resolved.purpose === 'local' ? createLocalSealer(resolved) : createPublicSealer(resolved);
}
