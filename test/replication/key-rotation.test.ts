/**
 * Changing keys and switching sealing on in a running deployment, under traffic, over Redis Streams,
 * AMQP and NATS. Every change is a rolling deploy: one region after the other is restarted with new
 * options while every running region keeps writing sessions. Nothing written may be refused or lost:
 * at the end every write is in every region, and no region refused anything.
 * - v4.local: add the new key everywhere, switch `sealWith` everywhere, retire the old key.
 * - v4.public: one region's new key pair: the others accept both public keys, the region switches its
 *   secret key, the others drop the old public key.
 * - the window: no sealer → sealer that still sends unsealed (`sendUnsealed`) → sealer that seals and
 *   still accepts unsealed (`acceptUnsealed`) → sealed only.
 * After a rotation, a batch sealed with the retired key is refused as `unknown-key`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Sealer } from '../../src/contracts/sealer.js';
import {
  createDeployment,
  type Deployment,
  type RegionConfig,
  TRANSPORT_KINDS,
  transportAvailable,
} from '../helpers/deployment.js';
import {
  forgedSet,
  generatePasetoKey,
  generatePasetoKeyPair,
  keyPairs,
  localSealer,
  publicKeysOf,
  publicSealer,
  sealed,
  session,
  Traffic,
} from '../helpers/forgery.js';
import { eventually } from '../helpers/servers.js';

const REGIONS = ['hk', 'kr', 'us'] as const;
const WAIT = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Restarts `regions` one after the other with their new options; traffic runs on meanwhile. */
async function rollingDeploy(
  d: Deployment,
  config: (region: string) => RegionConfig,
  regions: readonly string[] = REGIONS,
): Promise<void> {
  for (const region of regions) {
    await d.restart(region, config(region));
    await sleep(300);
  }
}

/** Every write reached every region, and nothing was refused or failed. */
async function nothingLost(d: Deployment, traffic: Traffic): Promise<void> {
  await traffic.stop();
  expect(traffic.written.size).toBeGreaterThan(100);
  await traffic.reachedEverywhere(d.clients, d.prefix, WAIT);
  expect(traffic.failures).toEqual([]);
  for (const region of REGIONS) {
    expect(d.rejected[region], region).toEqual([]);
    expect(d.store(region).replicationStats()?.needsResync, region).toEqual({});
  }
}

/** A change hk sends sealed by `sealer` is refused by kr and us as `unknown-key`. */
async function refusedAsUnknownKey(d: Deployment, sealer: Sealer): Promise<void> {
  const sid = d.store('kr').genid();
  await d.store('kr').set(sid, session({ role: 'user' }));
  await eventually(async () => (await d.store('us').get(sid))?.role === 'user', WAIT);
  await d.inject([await sealed(sealer, [forgedSet('hk', sid, { role: 'admin' })], 'hk', d.prefix)]);
  await eventually(() => d.rejected.kr?.length === 1 && d.rejected.us?.length === 1, WAIT);
  expect(d.rejected.kr?.[0]?.reason).toBe('unknown-key');
  expect(d.rejected.us?.[0]?.reason).toBe('unknown-key');
  expect((await d.store('us').get(sid))?.role).toBe('user');
}

for (const kind of TRANSPORT_KINDS) {
  const available = await transportAvailable(kind);

  describe.skipIf(!available)(`rolling key changes under traffic over ${kind}`, { timeout: 120_000 }, () => {
    let d: Deployment | undefined;
    afterEach(async () => {
      await d?.close();
      d = undefined;
    });

    it('v4.local: add the new key everywhere, switch sealWith, retire the old key', async () => {
      const deployment = await createDeployment(kind, REGIONS);
      d = deployment;
      const k1 = generatePasetoKey();
      const k2 = generatePasetoKey();
      for (const r of REGIONS) await deployment.start(r, { sealer: localSealer([k1.key]) });
      const traffic = new Traffic(deployment).start();
      await sleep(300);

      await rollingDeploy(deployment, () => ({ sealer: localSealer([k1.key, k2.key], k1.lid) }));
      await rollingDeploy(deployment, () => ({ sealer: localSealer([k1.key, k2.key], k2.lid) }));
      // No batch sealed with k1 is left anywhere once everything written so far has arrived.
      await traffic.reachedEverywhere(deployment.clients, deployment.prefix, WAIT);
      await sleep(500);
      await rollingDeploy(deployment, () => ({ sealer: localSealer([k2.key]) }));
      await sleep(300);
      await nothingLost(deployment, traffic);

      await refusedAsUnknownKey(deployment, localSealer([k1.key]));
    });

    it("v4.public: hk's new key pair is trusted everywhere, hk switches, the old public key is dropped", async () => {
      const deployment = await createDeployment(kind, REGIONS);
      d = deployment;
      const pairs = keyPairs(REGIONS);
      const secret = (r: string) => pairs[r]?.secretKey as string;
      const old = pairs.hk?.publicKey as string;
      const next = generatePasetoKeyPair();
      const trusted = publicKeysOf(pairs);
      for (const r of REGIONS) await deployment.start(r, { sealer: publicSealer(r, secret(r), trusted) });
      const traffic = new Traffic(deployment).start();
      await sleep(300);

      const both = { ...trusted, hk: [old, next.publicKey] };
      await rollingDeploy(deployment, (r) => ({ sealer: publicSealer(r, secret(r), both) }), ['kr', 'us']);
      await deployment.restart('hk', { sealer: publicSealer('hk', next.secretKey, both) });
      await sleep(300);
      await traffic.reachedEverywhere(deployment.clients, deployment.prefix, WAIT);
      await sleep(500);
      const only = { ...trusted, hk: [next.publicKey] };
      await rollingDeploy(deployment, (r) => ({ sealer: publicSealer(r, secret(r), only) }), ['kr', 'us']);
      await sleep(300);
      await nothingLost(deployment, traffic);

      await refusedAsUnknownKey(deployment, publicSealer('hk', secret('hk'), {}));
    });

    it('switching sealing on region by region (sendUnsealed, then acceptUnsealed) loses nothing', async () => {
      const deployment = await createDeployment(kind, REGIONS);
      d = deployment;
      const { key } = generatePasetoKey();
      for (const r of REGIONS) await deployment.start(r);
      const traffic = new Traffic(deployment).start();
      await sleep(300);

      await rollingDeploy(deployment, () => ({
        sealer: localSealer([key]),
        acceptUnsealed: true,
        sendUnsealed: true,
      }));
      await rollingDeploy(deployment, () => ({ sealer: localSealer([key]), acceptUnsealed: true }));
      // Every region seals now. Before any refuses unsealed envelopes, those still in flight must have
      // arrived (a broker redelivers what a restarted consumer held only after its ack wait).
      await traffic.reachedEverywhere(deployment.clients, deployment.prefix, WAIT);
      await sleep(500);
      await rollingDeploy(deployment, () => ({ sealer: localSealer([key]) }));
      await sleep(300);
      await nothingLost(deployment, traffic);
      // Sealed for good: an unsealed change is refused now.
      const sid = deployment.store('kr').genid();
      await deployment.store('kr').set(sid, session({ role: 'user' }));
      await deployment.inject([forgedSet('hk', sid, { role: 'admin' })]);
      await eventually(() => deployment.rejected.kr?.[0]?.reason === 'unsealed', WAIT);
    });

    it.runIf(kind === 'redis-streams')(
      'Redis Streams: a region that does not seal yet loses nothing while away from one that does',
      async () => {
        // Regions that do not seal read the others' outboxes directly, also the outbox of a region whose
        // relay already seals: that relay must not trim what they have not read.
        const deployment = await createDeployment(kind, REGIONS);
        d = deployment;
        const { key } = generatePasetoKey();
        for (const r of REGIONS) await deployment.start(r);
        await deployment.restart('hk', { sealer: localSealer([key]), acceptUnsealed: true });
        const traffic = new Traffic(deployment).start();
        await sleep(300);
        await deployment.stop('kr');
        // Longer than the relay's trim interval (5 s).
        await sleep(7000);
        await deployment.start('kr');
        await sleep(300);
        await nothingLost(deployment, traffic);
      },
    );
  });
}
