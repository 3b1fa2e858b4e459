import type { Redis } from 'ioredis';
import type { Sealer } from '../../src/contracts/sealer.js';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import type { AppliedBatch } from '../../src/replication/replicator.js';
import { generatePasetoKey, generatePasetoKeyPair } from '../../src/security/paseto-keys.js';
import { createPasetoSealer } from '../../src/security/paseto-sealer.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import type { BenchRedis } from './redis-server.js';

/** How the two regions seal: not at all, or with a PASETO sealer of either purpose. */
export type Sealing = 'unsealed' | 'v4.local' | 'v4.public';

/** A sealer for hk and one for kr, as two regions of one deployment would configure them. */
export function benchSealers(sealing: Exclude<Sealing, 'unsealed'>): { hk: Sealer; kr: Sealer } {
  const deployment = 'bench';
  if (sealing === 'v4.local') {
    const { key } = generatePasetoKey();
    const sealer = createPasetoSealer({ purpose: 'local', deployment, keys: [key] });
    return { hk: sealer, kr: sealer };
  }
  const hk = generatePasetoKeyPair();
  const kr = generatePasetoKeyPair();
  return {
    hk: createPasetoSealer({
      purpose: 'public',
      deployment,
      region: 'hk',
      secretKey: hk.secretKey,
      publicKeys: { kr: [kr.publicKey] },
    }),
    kr: createPasetoSealer({
      purpose: 'public',
      deployment,
      region: 'kr',
      secretKey: kr.secretKey,
      publicKeys: { hk: [hk.publicKey] },
    }),
  };
}

/**
 * Two regions over Redis Streams: hk writes through its GeoSessionStore, kr applies through its own
 * store's subscription and counts what it applied. Each sealing variant uses its own key prefix, so
 * several pairs share the two servers without seeing each other.
 */
export class Regions {
  readonly prefix: string;
  readonly hkClient: Redis;
  readonly krClient: Redis;
  readonly transport: ReplicationTransport;
  readonly hk: GeoSessionStore;
  kr: GeoSessionStore | undefined;
  applied = 0;
  lastAppliedAt = 0;
  onApplied: ((batch: AppliedBatch, now: number) => void) | undefined;
  private readonly sealers: { hk: Sealer; kr: Sealer } | undefined;

  constructor(
    hkRedis: BenchRedis,
    krRedis: BenchRedis,
    readonly sealing: Sealing = 'unsealed',
  ) {
    this.prefix = `gsrep:${process.pid}:${sealing === 'unsealed' ? '' : `${sealing}:`}`;
    this.sealers = sealing === 'unsealed' ? undefined : benchSealers(sealing);
    this.hkClient = hkRedis.client();
    this.krClient = krRedis.client();
    this.transport = createRedisStreamsTransport({ regions: { hk: this.hkClient, kr: this.krClient } });
    this.hk = new GeoSessionStore({
      region: 'hk',
      client: this.hkClient,
      prefix: this.prefix,
      transport: this.transport,
      sealer: this.sealers ? this.sealers.hk : 'none',
    });
  }

  async startKr(): Promise<void> {
    const kr = new GeoSessionStore({
      region: 'kr',
      client: this.krClient,
      prefix: this.prefix,
      transport: this.transport,
      sealer: this.sealers ? this.sealers.kr : 'none',
    });
    kr.on('replicated', (batch: AppliedBatch) => {
      const now = performance.now();
      this.applied += batch.events.length;
      this.lastAppliedAt = now;
      this.onApplied?.(batch, now);
    });
    this.kr = kr;
    await Promise.all([this.hk.ready(), kr.ready()]);
  }

  async stopKr(): Promise<void> {
    await this.kr?.close();
    this.kr = undefined;
  }

  async close(): Promise<void> {
    await this.stopKr();
    await this.hk.close();
    await this.transport.close();
  }
}
