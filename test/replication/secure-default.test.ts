/**
 * Secure by default (issue 15): the attack that worked against a store given a transport and nothing
 * else (a well-formed `set` XADDed where kr reads hk's changes, or published to the AMQP exchange with
 * the broker's guest account, turned a victim's `role` into `admin` in kr) now meets either a store that
 * refuses to be built, or the documented one-line sealed setup, which refuses the forgery.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { GeoSessionStore } from '../../src/index.js';
import { createPasetoSealer, generatePasetoKey } from '../../src/paseto.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { createDeployment, type Deployment, transportAvailable } from '../helpers/deployment.js';
import { forgedSet, session } from '../helpers/forgery.js';
import { eventually } from '../helpers/servers.js';

const WAIT = 20_000;

it('a store with a transport and no sealer is refused at construction, naming `sealer`', async () => {
  const transport = createMemoryTransport({ regions: ['hk', 'kr'] });
  const { Redis } = await import('ioredis');
  const client = new Redis({ lazyConnect: true });
  try {
    let caught: unknown;
    try {
      new GeoSessionStore({ region: 'hk', client, transport });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe('sealer');
  } finally {
    client.disconnect();
    await transport.close();
  }
});

for (const kind of ['redis-streams', 'amqp'] as const) {
  const available = await transportAvailable(kind);

  describe.skipIf(!available)(`the documented sealed setup over ${kind}`, () => {
    let d: Deployment;

    beforeAll(async () => {
      d = await createDeployment(kind, ['hk', 'kr']);
      // docs/security.md "The sealed setup": one key from generatePasetoKey(), the same in every region.
      const key = generatePasetoKey().key;
      for (const region of ['hk', 'kr']) {
        const sealer = createPasetoSealer({ purpose: 'local', deployment: 'shop', keys: [key] });
        await d.start(region, { sealer });
      }
    });
    afterAll(async () => {
      await d?.close();
    });

    it("refuses a forged set written where kr reads hk's changes; the victim stays a user", async () => {
      const hk = d.store('hk');
      const kr = d.store('kr');
      const victim = hk.genid();
      await hk.set(victim, session({ user: 'victim', role: 'user' }));
      await eventually(async () => (await kr.get(victim))?.role === 'user', WAIT);

      // Redis Streams: an XADD to hk's relay stream (what kr reads); AMQP: a publish to the exchange.
      await d.inject([forgedSet('hk', victim, { user: 'victim', role: 'admin' })]);
      // An attacker's own session, made out of nothing.
      const made = hk.genid();
      await d.inject([forgedSet('hk', made, { user: 'mallory', role: 'admin' })]);

      await eventually(async () => (d.rejected.kr?.length ?? 0) >= 2, WAIT);
      expect(d.rejected.kr?.map((r) => r.reason)).toEqual(['unsealed', 'unsealed']);
      expect(kr.replicationStats()?.rejected).toEqual({ unsealed: 2 });

      // A genuine change sent after the forgeries arrives; the forgeries never did.
      await hk.set(victim, session({ user: 'victim', role: 'user', step: 2 }));
      await eventually(async () => (await kr.get(victim))?.step === 2, WAIT);
      expect(await kr.get(victim)).toMatchObject({ role: 'user', step: 2 });
      expect(await kr.get(made)).toBeNull();
    });
  });
}
