/**
 * The attacker with broker access, or with write access to the stream the other regions read (a raw
 * XADD to a relay stream, a raw AMQP publish to the exchange, a raw NATS publish to the subject), against
 * a sealed deployment of three regions, over each transport and with v4.local and v4.public. Every
 * crafted batch or frame is refused and counted by reason in every receiving region, dead-lettered,
 * reported as a `rejected` event, and never applied (the victim's session is unchanged everywhere);
 * genuine changes still flow afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { Sealer } from '../../src/contracts/sealer.js';
import type { RejectionReason } from '../../src/index.js';
import {
  createDeployment,
  type Deployment,
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
  tamperedToken,
  withFooterOf,
} from '../helpers/forgery.js';
import { sessionState } from '../helpers/meta.js';
import { eventually } from '../helpers/servers.js';

const REGIONS = ['hk', 'kr', 'us'] as const;
const RECEIVERS = ['kr', 'us'] as const;
const WAIT = 20_000;

/** An attack: what is put where the other regions read hk's envelopes, and the refusal it must meet. */
interface Attack {
  name: string;
  reason: RejectionReason;
  envelope?: Envelope;
  raw?: string;
}

/** The keys the deployment runs with, and sealers an attacker may hold (or craft tokens with). */
interface Keyring {
  sealers: Record<string, Sealer>;
  /** Seals for origin hk as hk would, but for another channel / deployment. */
  otherChannel: Sealer;
  otherDeployment: Sealer;
  /** A key (pair) no region accepts: never configured, or retired. */
  unknownKey: Sealer;
  /** us's key, sealing for origin `us` (genuine) and claiming origin `hk` (public only). */
  asUs: Sealer;
  usClaimingHk: Sealer | undefined;
}

function keyring(purpose: 'local' | 'public'): Keyring {
  if (purpose === 'local') {
    const { key } = generatePasetoKey();
    const sealer = localSealer([key]);
    return {
      sealers: Object.fromEntries(REGIONS.map((r) => [r, sealer])),
      otherChannel: sealer,
      otherDeployment: localSealer([key], undefined, 'shop-staging'),
      unknownKey: localSealer([generatePasetoKey().key]),
      asUs: sealer,
      usClaimingHk: undefined,
    };
  }
  const pairs = keyPairs(REGIONS);
  const trusted = publicKeysOf(pairs);
  const secret = (r: string) => pairs[r]?.secretKey as string;
  const sealers = Object.fromEntries(REGIONS.map((r) => [r, publicSealer(r, secret(r), trusted)]));
  return {
    sealers,
    otherChannel: sealers.hk as Sealer,
    otherDeployment: publicSealer('hk', secret('hk'), trusted, 'shop-staging'),
    unknownKey: publicSealer('hk', generatePasetoKeyPair().secretKey, trusted),
    asUs: sealers.us as Sealer,
    // A compromised us signs a batch that claims to come from hk.
    usClaimingHk: publicSealer('hk', secret('us'), {}),
  };
}

async function attacks(keys: Keyring, channel: string, victim: string): Promise<Attack[]> {
  const evil = () => forgedSet('hk', victim, { user: 'victim', role: 'admin' });
  const genuine = await sealed(keys.sealers.hk as Sealer, [evil()], 'hk', channel);
  const forOtherChannel = await sealed(keys.otherChannel, [evil()], 'hk', 'other:');
  const list: Attack[] = [
    { name: 'an unsealed change', reason: 'unsealed', envelope: evil() },
    {
      name: 'an unsealed envelope of another kind',
      reason: 'unsealed',
      envelope: { ...evil(), kind: 'evil' },
    },
    {
      name: 'a tampered token',
      reason: 'tampered',
      envelope: { ...genuine, body: tamperedToken(genuine.body) },
    },
    {
      name: "a genuine batch of us's relabelled as hk's",
      reason: 'tampered',
      envelope: { ...(await sealed(keys.asUs, [evil()], 'us', channel)), origin: 'hk' },
    },
    {
      name: 'a batch sealed with a key no region accepts (unknown or retired)',
      reason: 'unknown-key',
      envelope: await sealed(keys.unknownKey, [evil()], 'hk', channel),
    },
    { name: 'a batch replayed from another channel', reason: 'wrong-channel', envelope: forOtherChannel },
    {
      name: 'a batch replayed from another deployment',
      reason: 'wrong-channel',
      envelope: await sealed(keys.otherDeployment, [evil()], 'hk', channel),
    },
    {
      name: "a replay from another channel with this channel's footer",
      reason: 'tampered',
      envelope: { ...forOtherChannel, body: withFooterOf(forOtherChannel.body, genuine.body) },
    },
    {
      name: 'a frame that is not an envelope',
      reason: 'malformed',
      raw: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
    },
    {
      name: 'a sealed envelope whose body is no token',
      reason: 'malformed',
      envelope: { ...genuine, body: 'v4.local.AAAA' },
    },
  ];
  if (keys.usClaimingHk) {
    list.push({
      name: "us's key on a batch that claims origin hk",
      reason: 'origin-mismatch',
      envelope: await sealed(keys.usClaimingHk, [evil()], 'hk', channel),
    });
  }
  return list;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

for (const kind of TRANSPORT_KINDS) {
  const available = await transportAvailable(kind);

  describe.skipIf(!available)(`forged traffic against a sealed deployment over ${kind}`, () => {
    describe.each(['local', 'public'] as const)('v4.%s', (purpose) => {
      let d: Deployment;
      const keys = keyring(purpose);

      beforeAll(async () => {
        d = await createDeployment(kind, REGIONS);
        for (const region of REGIONS) await d.start(region, { sealer: keys.sealers[region] });
      });
      afterAll(async () => {
        await d?.close();
      });

      it('refuses, counts, dead-letters and never applies any of it; genuine changes still flow', async () => {
        const hk = d.store('hk');
        const victim = hk.genid();
        await hk.set(victim, session({ user: 'victim', role: 'user' }));
        await eventually(async () => {
          for (const r of RECEIVERS) if ((await d.store(r).get(victim))?.role !== 'user') return false;
          return true;
        }, WAIT);
        const before = Object.fromEntries(
          await Promise.all(
            RECEIVERS.map(
              async (r) => [r, await sessionState(d.clients[r] as never, d.keys, victim)] as const,
            ),
          ),
        );

        const list = await attacks(keys, d.prefix, victim);
        for (const attack of list) {
          if (attack.raw !== undefined) await d.injectRaw('hk', attack.raw);
          else await d.inject([attack.envelope as Envelope]);
        }
        const expected = countBy(list, (a) => a.reason);
        const total = list.length;

        // A genuine change from hk, sent after the attacks on the same stream / subject / queue, arrives.
        await hk.set(victim, session({ user: 'victim', role: 'user', step: 2 }));
        await eventually(async () => {
          for (const r of RECEIVERS) {
            if ((await d.store(r).get(victim))?.step !== 2) return false;
            if ((d.rejected[r]?.length ?? 0) < total) return false;
          }
          return true;
        }, WAIT);

        for (const r of RECEIVERS) {
          const store = d.store(r);
          // Counted by reason, exactly once each.
          expect(store.replicationStats()?.rejected, r).toEqual(expected);
          // Reported as `rejected` events ...
          const events = d.rejected[r] ?? [];
          expect(
            countBy(events, (e) => e.reason),
            r,
          ).toEqual(expected);
          for (const e of events) {
            expect(e.error.code).toMatch(/^ERR_GEOSESSION_/);
            if (e.reason !== 'malformed') expect(e.origin).toBe('hk');
          }
          // ... and dead-lettered.
          await eventually(async () => (await store.deadLetters(100)).length >= total, WAIT);
          const letters = await store.deadLetters(100);
          expect(
            countBy(letters, (l) => l.reason),
            r,
          ).toEqual(expected);
          // Never applied: the victim's session went from "user" to step 2, never through "admin".
          const after = await sessionState(d.clients[r] as never, d.keys, victim);
          expect(JSON.parse(after.value ?? '{}')).toMatchObject({ role: 'user', step: 2 });
          expect(after.meta.v).not.toBe(before[r]?.meta.v);
          expect(after.meta.v?.endsWith('.hk')).toBe(true);
        }
        // hk itself received none of it (it never reads its own streams).
        expect(d.store('hk').replicationStats()?.rejected).toEqual({});
        expect(d.rejected.hk).toEqual([]);

        // Changes keep flowing, in every direction.
        const fresh = d.store('kr').genid();
        await d.store('kr').set(fresh, session({ user: 'erin' }));
        await eventually(
          async () =>
            (await d.store('hk').get(fresh))?.user === 'erin' &&
            (await d.store('us').get(fresh))?.user === 'erin',
          WAIT,
        );
      });
    });
  });
}
