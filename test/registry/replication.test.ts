/**
 * The connection registry replicated between two regions (two private redis-servers) through its own
 * replication node, sealed and unsealed: a sender in kr finds the pods in hk holding a user's
 * connections; unregister, close and lease renewals replicate; forged, malformed and replayed registry
 * events are refused and counted.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import type { Sealer } from '../../src/contracts/sealer.js';
import { type ConnectionRegistry, createConnectionRegistry, type PodConnections } from '../../src/index.js';
import { createDeployment, type Deployment, transportAvailable } from '../helpers/deployment.js';
import { generatePasetoKey, localSealer, sealed } from '../helpers/forgery.js';
import { eventually } from '../helpers/servers.js';

const WAIT = 20_000;
const PREFIX = 'regrep:';
const CHANNEL = `${PREFIX}registry:`;
const KINDS = ['redis-streams', 'amqp'] as const;

function summary(groups: PodConnections[]): string[] {
  return groups
    .flatMap((g) =>
      g.connections.map((c) => `${g.region}/${g.pod}/${c.connectionId}${c.sid ? `:${c.sid}` : ''}`),
    )
    .sort();
}

for (const kind of KINDS) {
  const available = await transportAvailable(kind);
  for (const sealedMode of [false, true]) {
    describe.skipIf(!available)(
      `a replicated connection registry over ${kind} (${sealedMode ? 'sealed' : 'unsealed'})`,
      () => {
        let d: Deployment;
        const sealer: Sealer | undefined = sealedMode ? localSealer([generatePasetoKey().key]) : undefined;
        const registries: Record<string, ConnectionRegistry> = {};
        const errors: Error[] = [];
        const reg = (name: string) => registries[name] as ConnectionRegistry;
        const open = (region: string, pod: string, leaseMs = 1_500) => {
          const r = createConnectionRegistry({
            client: d.clients[region] as Redis,
            region,
            pod,
            prefix: PREFIX,
            leaseMs,
            transport: d.transport(region),
            ...(sealer ? { sealer } : {}),
          });
          r.on('error', (e) => errors.push(e));
          registries[`${region}/${pod}`] = r;
          return r;
        };

        beforeAll(async () => {
          d = await createDeployment(kind, ['hk', 'kr'], { prefix: CHANNEL });
          open('hk', 'pod-a');
          open('kr', 'pod-b');
          // kr's node subscribes in the background; what hk publishes before that may never reach it (a
          // broker queue not bound yet). A probe connection, registered again until kr lists it, says the
          // way is open before the tests start.
          let probe = 0;
          await eventually(async () => {
            await reg('hk/pod-a').register('probe', `p${++probe}`);
            await new Promise((r) => setTimeout(r, 300));
            return (await reg('kr/pod-b').podsOf('probe')).length > 0;
          }, WAIT);
          for (let i = 1; i <= probe; i++) await reg('hk/pod-a').unregister(`p${i}`);
        });
        afterAll(async () => {
          for (const r of Object.values(registries)) await r.close().catch(() => {});
          await d?.close();
        });

        it('a sender in kr finds the pods in hk holding a user’s connections, grouped by pod', async () => {
          await reg('hk/pod-a').register('u1', 'c1', { sid: 'hk.s1' });
          await reg('hk/pod-a').register('u1', 'c2');
          await reg('kr/pod-b').register('u1', 'c3');
          const all = ['hk/pod-a/c1:hk.s1', 'hk/pod-a/c2', 'kr/pod-b/c3'];
          await eventually(
            async () => summary(await reg('kr/pod-b').podsOf('u1')).join() === all.join(),
            WAIT,
          );
          await eventually(
            async () => summary(await reg('hk/pod-a').podsOf('u1')).join() === all.join(),
            WAIT,
          );
          const groups = await reg('kr/pod-b').podsOf('u1');
          expect(groups.find((g) => g.region === 'hk')?.connections).toHaveLength(2);

          await reg('hk/pod-a').unregister('c2');
          await eventually(
            async () => !summary(await reg('kr/pod-b').podsOf('u1')).includes('hk/pod-a/c2'),
            WAIT,
          );
        });

        it('lease renewals replicate: a live pod in hk stays listed in kr well past its lease', async () => {
          await new Promise((r) => setTimeout(r, 1_500 * 3));
          expect(summary(await reg('kr/pod-b').podsOf('u1'))).toContain('hk/pod-a/c1:hk.s1');
          expect(reg('kr/pod-b').replicationStats()?.applied ?? 0).toBeGreaterThan(3);
        });

        it('a pod of hk that stops renewing (dead, no cleanup) disappears from kr within its lease', async () => {
          const doomed = open('hk', 'pod-d');
          await doomed.register('u3', 'd1');
          await eventually(async () => (await reg('kr/pod-b').podsOf('u3')).length === 1, WAIT);
          // As if the process had died: no more renewals, nothing removed.
          clearInterval((doomed as unknown as { timer: NodeJS.Timeout }).timer);
          await eventually(async () => (await reg('kr/pod-b').podsOf('u3')).length === 0, WAIT);
          expect(await (d.clients.kr as Redis).hlen(`{${PREFIX}|registry}:u:u3`)).toBe(0);
        });

        it('a pod closed in hk disappears from kr', async () => {
          const extra = open('hk', 'pod-x');
          await extra.register('u2', 'x1');
          await eventually(async () => (await reg('kr/pod-b').podsOf('u2')).length === 1, WAIT);
          await extra.close();
          await eventually(async () => (await reg('kr/pod-b').podsOf('u2')).length === 0, WAIT);
        });

        it('forged, malformed and replayed registry events are refused and counted', async () => {
          const stream = sealedMode ? 'relay' : 'outbox';
          const forged = (n: number, body: string): Envelope => ({
            id: `hk:forged-${Date.now()}-${n}`,
            origin: 'hk',
            kind: 'registry',
            time: Date.now(),
            body,
          });
          const inc = `${String(Date.now()).padStart(15, '0')}.0123456789abcdef`;
          const stats = () => reg('kr/pod-b').replicationStats()?.node;
          if (!sealer) {
            await d.inject(
              [forged(1, 'r|pod-evil|not-an-inc|victim|c|'), forged(2, 'r|{x}|' + inc + '|victim|c|')],
              stream,
            );
            await eventually(() => (stats()?.rejected.malformed ?? 0) >= 2, WAIT);
            // A lease pinned far in the future is refused by the script.
            await d.inject([forged(3, `l|pod-evil|${inc}|${Date.now() + 10 * 86_400_000}`)], stream);
            await eventually(() => (reg('kr/pod-b').replicationStats()?.skewed ?? 0) >= 1, WAIT);
          } else {
            const stranger = localSealer([generatePasetoKey().key]);
            const lease = `l|pod-evil|${inc}|${Date.now() + 60_000}`;
            await d.inject([forged(1, lease)], stream);
            await d.inject([await sealed(stranger, [forged(2, lease)], 'hk', CHANNEL)], stream);
            await d.inject([await sealed(sealer, [forged(3, lease)], 'hk', 'sess:')], stream);
            await eventually(() => {
              const r = stats()?.rejected ?? {};
              return (
                (r.unsealed ?? 0) >= 1 &&
                (r['unknown-key'] ?? 0) + (r.tampered ?? 0) >= 1 &&
                (r['wrong-channel'] ?? 0) >= 1
              );
            }, WAIT);
          }
          expect(await reg('kr/pod-b').podsOf('victim')).toEqual([]);
          expect(
            await (d.clients.kr as Redis).zscore(`{${PREFIX}|registry}:leases`, 'hk|pod-evil'),
          ).toBeNull();

          // A genuine event delivered again is a duplicate: dropped and counted.
          const before = stats()?.sequences.hk?.duplicates ?? 0;
          const low = stats()?.sequences.hk?.low ?? 0;
          expect(low).toBeGreaterThan(0);
          const epoch = await (d.clients.hk as Redis).hget(`{${CHANNEL}|outbox}:hk:seq`, 'e');
          const replay: Envelope = {
            id: `hk:${epoch}.1`,
            origin: 'hk',
            kind: 'registry',
            time: Date.now(),
            body: `r|pod-a|${inc}|victim|c9|`,
          };
          await d.inject([sealer ? await sealed(sealer, [replay], 'hk', CHANNEL) : replay], stream);
          await eventually(() => (stats()?.sequences.hk?.duplicates ?? 0) > before, WAIT);
          expect(await reg('kr/pod-b').podsOf('victim')).toEqual([]);
          expect(
            errors
              .filter((e) => !/forged|registry event|refused|seal|unknown|channel/i.test(e.message))
              .map((e) => `${e.name}: ${e.message}`),
          ).toEqual([]);
        });
      },
    );
  }
}
