/**
 * Sealed replication end to end, over Redis Streams, AMQP and NATS, with v4.local and v4.public: three
 * regions (each its own private redis-server and store) replicate sessions sealed; what travels between
 * them (broker messages, the streams the other regions read) never holds session contents in clear with
 * v4.local; with Redis Streams the relay publishes sealed batches to the `relay` stream, which is what
 * the other regions read, and nothing but the relay reads the outbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sealer } from '../../src/contracts/sealer.js';
import type { GeoSessionStore } from '../../src/index.js';
import { groupsOf } from '../../src/streams/group-info.js';
import {
  createDeployment,
  type Deployment,
  TRANSPORT_KINDS,
  transportAvailable,
} from '../helpers/deployment.js';
import {
  forgedSet,
  generatePasetoKey,
  keyPairs,
  localSealer,
  publicKeysOf,
  publicSealer,
  session,
  storedSession,
} from '../helpers/forgery.js';
import { eventually } from '../helpers/servers.js';

const REGIONS = ['hk', 'kr', 'us'] as const;
const WAIT = 20_000;
/** What no broker and no stream between regions may show in clear with v4.local. */
const SECRET = 'card-4111-1111-1111-1111';
const TOKEN = /v4\.(local|public)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)/g;

/** Every PASETO token in `texts`, with its purpose and decoded body. */
function tokensIn(texts: readonly string[]): { purpose: string; body: string; footer: string }[] {
  const out: { purpose: string; body: string; footer: string }[] = [];
  for (const text of texts) {
    for (const m of text.matchAll(TOKEN)) {
      out.push({
        purpose: m[1] as string,
        body: Buffer.from(m[2] as string, 'base64url').toString('latin1'),
        footer: Buffer.from(m[3] as string, 'base64url').toString('utf8'),
      });
    }
  }
  return out;
}

function sealersFor(purpose: 'local' | 'public'): Record<string, Sealer> {
  if (purpose === 'local') {
    const { key } = generatePasetoKey();
    return Object.fromEntries(REGIONS.map((r) => [r, localSealer([key])]));
  }
  const pairs = keyPairs(REGIONS);
  const trusted = publicKeysOf(pairs);
  return Object.fromEntries(REGIONS.map((r) => [r, publicSealer(r, pairs[r]?.secretKey as string, trusted)]));
}

for (const kind of TRANSPORT_KINDS) {
  const available = await transportAvailable(kind);

  describe.skipIf(!available)(`sealed replication over ${kind}`, () => {
    describe.each(['local', 'public'] as const)('v4.%s', (purpose) => {
      let d: Deployment;
      const store = (region: string): GeoSessionStore => d.store(region);

      beforeAll(async () => {
        // Streams are inspected after the fact: no trimming during the test.
        d = await createDeployment(kind, REGIONS, {
          transport: { 'redis-streams': { trimIntervalMs: 600_000 } },
        });
        const sealers = sealersFor(purpose);
        for (const region of REGIONS) await d.start(region, { sealer: sealers[region] });
      });
      afterAll(async () => {
        await d?.close();
      });

      it('sessions replicate sealed: a login, an update elsewhere and a logout reach every region', async () => {
        const sid = store('hk').genid();
        await store('hk').set(sid, session({ user: 'alice', secret: SECRET }));
        await eventually(
          async () =>
            (await store('kr').get(sid))?.secret === SECRET &&
            (await store('us').get(sid))?.secret === SECRET,
          WAIT,
        );
        await store('kr').set(sid, session({ user: 'alice', secret: SECRET, step: 2 }));
        await eventually(
          async () => (await store('hk').get(sid))?.step === 2 && (await store('us').get(sid))?.step === 2,
          WAIT,
        );
        await store('us').destroy(sid);
        await eventually(async () => {
          for (const r of REGIONS) if (!(await store(r).isDestroyed(sid))) return false;
          return true;
        }, WAIT);
        for (const region of REGIONS) {
          const stats = store(region).replicationStats();
          expect(stats?.rejected, region).toEqual({});
          expect(stats?.received.applied, region).toBeGreaterThan(0);
          expect(d.rejected[region], region).toEqual([]);
          expect(await store(region).deadLetters(), region).toEqual([]);
        }
        expect(store('hk').replicationStats()?.published).toBeGreaterThan(0);
      });

      it(`what travels between regions is sealed${purpose === 'local' ? ' and holds no session contents in clear' : ' (signed, readable)'}`, async () => {
        const sid = store('kr').genid();
        await store('kr').set(sid, session({ user: 'bob', secret: SECRET }));
        await eventually(async () => (await store('hk').get(sid))?.secret === SECRET, WAIT);

        const transit = await d.inTransit();
        expect(transit.length).toBeGreaterThan(0);
        const tokens = tokensIn(transit);
        // Every message or entry carries a sealed batch, and nothing else.
        expect(tokens.length).toBe(transit.length);
        expect(new Set(tokens.map((t) => t.purpose))).toEqual(new Set([purpose]));
        for (const t of tokens) expect(JSON.parse(t.footer)).toHaveProperty('kid');
        for (const text of transit) {
          expect(text).not.toContain(SECRET);
          expect(text).not.toContain(sid);
        }
        const bodies = tokens.map((t) => t.body);
        if (purpose === 'local') {
          // Encrypted: not even the decoded token bodies show the session, its id or its user.
          for (const body of bodies) {
            expect(body).not.toContain(SECRET);
            expect(body).not.toContain(sid);
            expect(body).not.toContain('"user"');
          }
        } else {
          // Signed only: anyone who reads the broker reads the session (use TLS for confidentiality).
          expect(bodies.some((body) => body.includes(SECRET) && body.includes(sid))).toBe(true);
        }
      });

      it.runIf(kind === 'redis-streams')(
        'Redis Streams: the relay seals the outbox into the relay stream, which is all the others read',
        async () => {
          const sid = store('us').genid();
          await store('us').set(sid, session({ user: 'carol', secret: SECRET }));
          await eventually(
            async () => (await storedSession(d.clients.kr!, d.prefix + sid))?.user === 'carol',
            WAIT,
          );
          for (const region of REGIONS) {
            const client = d.clients[region]!;
            const others = REGIONS.filter((r) => r !== region);
            // The outbox (written by the scripts, in clear) is read by this region's relay only ...
            const outboxGroups = await groupsOf(client, d.keys.internal('outbox', region));
            expect(outboxGroups.map((g) => g.name)).toEqual(['relay']);
            // ... and every other region reads the relay stream, through its own consumer group.
            const relayGroups = await groupsOf(client, d.keys.internal('relay', region));
            expect(relayGroups.map((g) => g.name).sort()).toEqual(others);
            const entries = await client.xrange(d.keys.internal('relay', region), '-', '+');
            expect(entries.length).toBeGreaterThan(0);
            for (const [, fields] of entries) {
              expect(fields[0]).toBe('e');
              expect(fields[1]).toMatch(new RegExp(`^sealed \\d+ \\S+\\nv4\\.${purpose}\\.`));
            }
            expect(store(region).replicationStats()?.published).toBeGreaterThan(0);
          }
        },
      );

      it('an unsealed change where the other regions read is refused as unsealed, never applied', async () => {
        const sid = store('hk').genid();
        await store('hk').set(sid, session({ user: 'dave', role: 'user' }));
        await eventually(async () => (await store('kr').get(sid))?.role === 'user', WAIT);
        const before = { kr: d.rejected.kr?.length ?? 0, us: d.rejected.us?.length ?? 0 };
        await d.inject([forgedSet('hk', sid, { user: 'dave', role: 'admin' })]);
        await eventually(
          () => (d.rejected.kr?.length ?? 0) > before.kr && (d.rejected.us?.length ?? 0) > before.us,
          WAIT,
        );
        for (const region of ['kr', 'us']) {
          expect(d.rejected[region]?.at(-1)).toMatchObject({
            reason: 'unsealed',
            origin: 'hk',
            kind: 'session',
          });
          expect(store(region).replicationStats()?.rejected).toEqual({ unsealed: 1 });
          expect((await store(region).get(sid))?.role).toBe('user');
        }
      });
    });
  });
}
