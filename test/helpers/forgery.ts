/**
 * Keys, sealers and forged replication traffic for the security tests: what a deployment configures,
 * and what an attacker with broker access, stream write access, or one region's keys can craft.
 */
import type { Redis } from 'ioredis';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { Sealer } from '../../src/contracts/sealer.js';
import { ClosedError } from '../../src/errors.js';
import type { SessionData } from '../../src/index.js';
import { sealEnvelopes } from '../../src/replication/sealed-batch.js';
import { sessionEnvelope } from '../../src/replication/session-codec.js';
import {
  type GeneratedPasetoKeyPair,
  generatePasetoKey,
  generatePasetoKeyPair,
} from '../../src/security/paseto-keys.js';
import { createPasetoSealer } from '../../src/security/paseto-sealer.js';
import { version } from './meta.js';
import { eventually } from './servers.js';

export const DEPLOYMENT = 'shop-prod';
export const HOUR = 3_600_000;

export { generatePasetoKey, generatePasetoKeyPair };

/** A v4.local sealer over shared `keys` (k4.local PASERKs), sealing with `sealWith` (default: the first). */
export function localSealer(keys: readonly string[], sealWith?: string, deployment = DEPLOYMENT): Sealer {
  return createPasetoSealer({
    purpose: 'local',
    deployment,
    keys,
    ...(sealWith ? { sealWith } : {}),
  });
}

/** One key pair per region. */
export function keyPairs(regions: readonly string[]): Record<string, GeneratedPasetoKeyPair> {
  return Object.fromEntries(regions.map((r) => [r, generatePasetoKeyPair()]));
}

/**
 * A v4.public sealer for `region`, signing with `secretKey` and trusting `trusted` (public keys by
 * region; the region's own key is trusted automatically).
 */
export function publicSealer(
  region: string,
  secretKey: string,
  trusted: Record<string, readonly string[]>,
  deployment = DEPLOYMENT,
): Sealer {
  const publicKeys = Object.fromEntries(Object.entries(trusted).filter(([r]) => r !== region));
  return createPasetoSealer({ purpose: 'public', deployment, region, secretKey, publicKeys });
}

/** Every region's public key, by region. */
export function publicKeysOf(pairs: Record<string, GeneratedPasetoKeyPair>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(pairs).map(([r, p]) => [r, [p.publicKey]]));
}

/** A session as express-session would hand it over, living `lifeMs`. */
export function session(data: Record<string, unknown>, lifeMs = HOUR): SessionData {
  return {
    cookie: { originalMaxAge: lifeMs, expires: new Date(Date.now() + lifeMs).toISOString() },
    ...data,
  };
}

let forged = 0;

/**
 * A session change as a region's scripts would have written it: a `set` of `sid` to `data`, with a
 * version just ahead of now (so it would win over what the victim holds) unless given.
 */
export function forgedSet(
  origin: string,
  sid: string,
  data: Record<string, unknown>,
  overrides: { version?: string; expiresAt?: number; lifetimeMs?: number; time?: number } = {},
): Envelope {
  const now = Date.now();
  const expiresAt = overrides.expiresAt ?? now + HOUR;
  const body = JSON.stringify({
    cookie: { originalMaxAge: HOUR, expires: new Date(expiresAt).toISOString() },
    ...data,
  });
  return sessionEnvelope({
    id: `${origin}:forged-${++forged}`,
    origin,
    time: overrides.time ?? now,
    sid,
    op: 'set',
    version: overrides.version ?? version(now + 1000, 0, origin),
    expiresAt,
    lifetimeMs: overrides.lifetimeMs ?? HOUR,
    fingerprint: `forged${forged}`,
    data: body,
  });
}

/** A touch of `sid` claiming expiry `expiresAt` (0: never) under the lifetime rule `lifetimeMs`. */
export function forgedTouch(origin: string, sid: string, expiresAt: number, lifetimeMs: number): Envelope {
  return sessionEnvelope({
    id: `${origin}:forged-${++forged}`,
    origin,
    time: Date.now(),
    sid,
    op: 'touch',
    version: '',
    expiresAt,
    lifetimeMs,
  });
}

/** `envelopes` sealed as one batch by `sealer`, bound to `origin` and `channel`. */
export async function sealed(
  sealer: Sealer,
  envelopes: readonly Envelope[],
  origin: string,
  channel: string,
): Promise<Envelope> {
  const [batch] = await sealEnvelopes(sealer, envelopes, origin, channel);
  if (!batch) throw new Error('nothing sealed');
  return { ...batch, id: `${origin}:sealed-${++forged}` };
}

/** The token with one character of its body changed (still canonical base64url). */
export function tamperedToken(token: string): string {
  const parts = token.split('.');
  const body = parts[2] as string;
  const i = Math.floor(body.length / 2);
  const flipped = body[i] === 'A' ? 'B' : 'A';
  parts[2] = `${body.slice(0, i)}${flipped}${body.slice(i + 1)}`;
  return parts.join('.');
}

/** The token with its footer replaced by the footer of `other` (a token of another channel). */
export function withFooterOf(token: string, other: string): string {
  const parts = token.split('.');
  parts[3] = other.split('.')[3] as string;
  return parts.join('.');
}

/** The session value `client` holds for `key`, parsed, or null. */
export async function storedSession(client: Redis, key: string): Promise<Record<string, unknown> | null> {
  const text = await client.get(key);
  return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
}

/**
 * Writes sessions from every running region of a deployment, continuously, until stopped; pauses a
 * region while it restarts. Records what each completed write stored, so a test can check that every
 * one of them reached every region.
 */
export class Traffic {
  /** sid → what was written. */
  readonly written = new Map<string, { region: string; n: number }>();
  /** Writes that failed for another reason than the region closing under them. */
  readonly failures: unknown[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly deployment: {
      regions: readonly string[];
      running(region: string): boolean;
      store(region: string): {
        genid(): string;
        set(sid: string, s: SessionData): Promise<void>;
      };
    },
    private readonly pauseMs = 5,
  ) {}

  start(): this {
    this.loops = this.deployment.regions.map((region) => this.loop(region));
    return this;
  }

  private async loop(region: string): Promise<void> {
    let n = 0;
    while (!this.stopped) {
      if (!this.deployment.running(region)) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const store = this.deployment.store(region);
      const sid = store.genid();
      n++;
      try {
        await store.set(sid, session({ region, n }));
        this.written.set(sid, { region, n });
      } catch (error) {
        if (!(error instanceof ClosedError)) this.failures.push(error);
      }
      await new Promise((r) => setTimeout(r, this.pauseMs));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  /** Count of writes not present (with the right content) in `client` under `prefix`. */
  async missingIn(
    client: Redis,
    prefix: string,
    among: Iterable<string> = this.written.keys(),
  ): Promise<number> {
    const sids = [...among];
    let missing = 0;
    for (let i = 0; i < sids.length; i += 500) {
      const chunk = sids.slice(i, i + 500);
      const values = await client.mget(...chunk.map((sid) => prefix + sid));
      chunk.forEach((sid, j) => {
        const text = values[j];
        const want = this.written.get(sid);
        if (!text || !want) {
          missing++;
          return;
        }
        const got = JSON.parse(text) as { n?: number; region?: string };
        if (got.n !== want.n || got.region !== want.region) missing++;
      });
    }
    return missing;
  }

  /** Waits until every write completed so far is in every region's Redis. */
  async reachedEverywhere(clients: Readonly<Record<string, Redis>>, prefix: string, timeoutMs = 60_000) {
    const sids = new Set(this.written.keys());
    try {
      await eventually(
        async () => {
          for (const client of Object.values(clients)) {
            if ((await this.missingIn(client, prefix, sids)) > 0) return false;
          }
          return true;
        },
        timeoutMs,
        200,
      );
    } catch (error) {
      const missing: Record<string, Record<string, number>> = {};
      for (const [region, client] of Object.entries(clients)) {
        for (const sid of sids) {
          if ((await this.missingIn(client, prefix, [sid])) === 0) continue;
          const from = this.written.get(sid)?.region ?? '?';
          missing[region] ??= {};
          missing[region][from] = (missing[region][from] ?? 0) + 1;
        }
      }
      throw new Error(
        `of ${sids.size} writes, missing (in region: from region): ${JSON.stringify(missing)}`,
        {
          cause: error,
        },
      );
    }
  }
}
