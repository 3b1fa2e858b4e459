/**
 * One region's Redis taken over, with v4.public, over Redis Streams, AMQP and NATS. Sealing cannot
 * protect the other regions from what that region's relay reads in its own outbox: an entry the attacker
 * appends there is sealed with the region's key and applied everywhere (this test pins that limit).
 * v4.public gives containment: once the other regions drop the region's public key, everything it sends
 * is refused as `unknown-key` (forged or not), and the other regions keep replicating between themselves.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sealer } from '../../src/contracts/sealer.js';
import {
  createDeployment,
  type Deployment,
  TRANSPORT_KINDS,
  transportAvailable,
} from '../helpers/deployment.js';
import { forgedSet, keyPairs, publicKeysOf, publicSealer, session } from '../helpers/forgery.js';
import { eventually } from '../helpers/servers.js';

const REGIONS = ['hk', 'kr', 'us'] as const;
const WAIT = 20_000;

for (const kind of TRANSPORT_KINDS) {
  const available = await transportAvailable(kind);

  describe.skipIf(!available)(`a compromised region contained with v4.public over ${kind}`, () => {
    let d: Deployment;
    const pairs = keyPairs(REGIONS);
    const trusted = publicKeysOf(pairs);
    const secret = (r: string) => pairs[r]?.secretKey as string;
    const sealerOf = (r: string, keys = trusted): Sealer => publicSealer(r, secret(r), keys);

    beforeAll(async () => {
      d = await createDeployment(kind, REGIONS);
      for (const region of REGIONS) await d.start(region, { sealer: sealerOf(region) });
    });
    afterAll(async () => {
      await d?.close();
    });

    /** What an attacker with write access to hk's Redis does: append a change to hk's outbox. */
    async function appendToHkOutbox(sid: string, data: Record<string, unknown>): Promise<void> {
      const envelope = forgedSet('hk', sid, data);
      // What the scripts write: the body alone.
      await (d.clients.hk as Redis).xadd(d.keys.internal('outbox', 'hk'), '*', 'b', envelope.body);
    }

    it("the outbox is trusted by the region's own relay; dropping the region's key contains it", async () => {
      const victim = d.store('kr').genid();
      await d.store('kr').set(victim, session({ user: 'victim', role: 'user' }));
      await eventually(async () => (await d.store('hk').get(victim))?.role === 'user', WAIT);

      // The limit: hk's relay seals what hk's outbox holds, so the forged change is applied everywhere.
      await appendToHkOutbox(victim, { user: 'victim', role: 'admin' });
      await eventually(
        async () =>
          (await d.store('kr').get(victim))?.role === 'admin' &&
          (await d.store('us').get(victim))?.role === 'admin',
        WAIT,
      );
      expect(d.rejected.kr).toEqual([]);

      // Containment: kr and us stop trusting hk's key (a rolling deploy of the two).
      const withoutHk = Object.fromEntries(Object.entries(trusted).filter(([r]) => r !== 'hk'));
      await d.restart('kr', { sealer: sealerOf('kr', withoutHk) });
      await d.restart('us', { sealer: sealerOf('us', withoutHk) });
      await d.store('kr').set(victim, session({ user: 'victim', role: 'user', restored: true }));
      await eventually(async () => (await d.store('us').get(victim))?.restored === true, WAIT);

      // Whatever hk sends now is refused: a forged change and a genuine one alike.
      await appendToHkOutbox(victim, { user: 'victim', role: 'root' });
      const fresh = d.store('hk').genid();
      await d.store('hk').set(fresh, session({ user: 'from-hk' }));
      // The test can still open what was refused (it holds a sealer that trusts hk's key): wait until
      // both changes were refused in kr and in us.
      const inspector = sealerOf('kr');
      const refusedPayloads = async (region: string) => {
        const letters = await d.store(region).deadLetters(100);
        const payloads: string[] = [];
        for (const letter of letters) {
          expect(letter.reason).toBe('unknown-key');
          expect(letter.origin).toBe('hk');
          payloads.push((await inspector.open(letter.body, { origin: 'hk', channel: d.prefix })).payload);
        }
        return payloads.join('\n');
      };
      await eventually(async () => {
        for (const region of ['kr', 'us']) {
          const payloads = await refusedPayloads(region);
          if (!payloads.includes('root') || !payloads.includes(fresh)) return false;
        }
        return true;
      }, WAIT);
      for (const region of ['kr', 'us']) {
        expect(new Set(d.rejected[region]?.map((r) => r.reason))).toEqual(new Set(['unknown-key']));
        expect(await d.store(region).get(victim)).toMatchObject({ role: 'user', restored: true });
        expect(await d.store(region).get(fresh)).toBeNull();
      }

      // kr and us go on replicating between themselves.
      const between = d.store('us').genid();
      await d.store('us').set(between, session({ user: 'us-user' }));
      await eventually(async () => (await d.store('kr').get(between))?.user === 'us-user', WAIT);
    });
  });
}
