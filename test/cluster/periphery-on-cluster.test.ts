/**
 * What accepts a Redis Cluster client besides the store's own commands, on a real cluster of 3 masters
 * and 3 replicas (without replication): revocation events and watches (a subscriber on one node that
 * hears endings published in every slot, and moves to another node when its node is failed over,
 * reporting the gap), cache invalidation (keys and tag members in many slots), and the connection
 * registry (one slot). Then the registry and invalidation replicated between that cluster (region hk)
 * and a second one (kr, 3 masters), through the memory transport and AMQP.
 */
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import {
  createConnectionRegistry,
  createInvalidator,
  GeoSessionStore,
  type InvalidatedEvent,
  type RevocationGap,
  type RevokedSession,
} from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { registryKeys } from '../../src/registry/keys.js';
import { createMemoryTransport } from '../../src/transports/memory.js';
import { createDeployment, transportAvailable } from '../helpers/deployment.js';
import { eventually } from '../helpers/eventually.js';
import {
  type ClusterNode,
  clusterSession,
  hasClusterBinaries,
  type LocalCluster,
  startCluster,
  useCluster,
} from '../helpers/redis-cluster.js';
import { slotOf } from '../helpers/slots.js';

const session = (user: string) => clusterSession(user);

describe.skipIf(!hasClusterBinaries)('around the store on a real Redis Cluster', { timeout: 120_000 }, () => {
  let cluster: LocalCluster;
  let client: Cluster;
  useCluster((started, its) => {
    cluster = started;
    client = its;
  });

  /** The live nodes where `channel` has a subscriber. */
  async function subscribedNodes(channel: string): Promise<ClusterNode[]> {
    const found: ClusterNode[] = [];
    for (const node of cluster.nodes) {
      try {
        const reply = (await cluster.nodeClient(node.port).call('PUBSUB', 'NUMSUB', channel)) as unknown[];
        if (Number(reply[1]) > 0) found.push(node);
      } catch {
        // a node killed earlier
      }
    }
    return found;
  }

  /** A key whose slot `node` serves as master, or undefined when it is no master. */
  async function keyServedBy(node: ClusterNode): Promise<string | undefined> {
    const role = String(await cluster.nodeClient(node.port).info('replication'));
    if (!role.includes('role:master')) return undefined;
    for (let i = 0; ; i++) {
      const key = `probe-${i}`;
      if ((await cluster.masterOf(key)).port === node.port) return key;
    }
  }

  it('reports endings in every slot once, and follows its subscriber through a failover with a gap', async () => {
    const prefix = 'rv:';
    const keys = createKeySpace(prefix);
    const store = new GeoSessionStore({ region: 'hk', client, prefix });
    store.on('error', () => {});
    await store.ready();
    const revoked: RevokedSession[] = [];
    const gaps: RevocationGap[] = [];
    store.on('revoked', (event) => revoked.push(event));
    store.on('revocation-gap', (gap) => gaps.push(gap));
    await store.revocationsReady();

    // Sessions on all three masters: each ending is published by a script on its own master.
    const sids = Array.from({ length: 30 }, () => store.genid());
    await Promise.all(sids.map((sid, i) => store.set(sid, session(`u${i}`))));
    const masters = new Set<number>();
    for (const sid of sids) masters.add((await cluster.masterOf(keys.session(sid))).port);
    expect(masters.size).toBe(3);
    const watched: string[] = [];
    store.watch(sids[0] as string, (ending) => watched.push(`${ending.sid}:${ending.reason}`));
    await store.revocationsReady();
    for (const sid of sids) await store.destroy(sid);
    await eventually(() => revoked.length >= sids.length, 10_000);
    expect(revoked.map((e) => e.sid).sort()).toEqual([...sids].sort());
    expect(new Set(revoked.map((e) => e.reason))).toEqual(new Set(['logout']));
    expect(watched).toEqual([`${sids[0]}:logout`]);

    // Put the subscriber on a master (it starts on any node): kill its connection until it lands on one.
    const channel = keys.revoked('hk');
    let target: { node: ClusterNode; key: string } | undefined;
    for (let tries = 0; tries < 30 && !target; tries++) {
      const [node] = await subscribedNodes(channel);
      expect(node).toBeDefined();
      const key = await keyServedBy(node as ClusterNode);
      if (key !== undefined) {
        target = { node: node as ClusterNode, key };
        break;
      }
      const before = gaps.length;
      await cluster.nodeClient((node as ClusterNode).port).call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await eventually(() => gaps.length > before, 10_000);
      await store.revocationsReady();
    }
    expect(target).toBeDefined();

    // A watch made now, on a session that ends while the subscriber's node is down: found by the re-check.
    const during = store.genid();
    await store.set(during, session('during'));
    const endings: string[] = [];
    store.watch(during, (ending) => endings.push(ending.reason));
    await store.revocationsReady();
    const gapsBefore = gaps.length;
    const { killed } = await cluster.failover((target as { key: string }).key);
    expect(killed.port).toBe(target?.node.port);
    await store.destroy(during);
    await eventually(() => gaps.length > gapsBefore, 20_000);
    await store.revocationsReady();
    // Either heard (it subscribed again before the destroy) or found by the re-check: once either way.
    await eventually(() => endings.length === 1, 10_000);
    const [moved] = await subscribedNodes(channel);
    expect(moved?.port).not.toBe(killed.port);

    // And it hears new endings from its new node.
    const after = store.genid();
    await store.set(after, session('after'));
    await store.destroy(after);
    await eventually(() => revoked.some((e) => e.sid === after), 10_000);
    await store.close();
    expect(await subscribedNodes(channel)).toEqual([]);
  });

  it('invalidates keys and tagged keys in many slots, and every invalidator hears it', async () => {
    const channel = 'cache:';
    const inv = createInvalidator({ client, region: 'hk', channel, tagLifetimeMs: 60_000 });
    const other = createInvalidator({ client: cluster.client(), region: 'hk', channel });
    const heard: InvalidatedEvent[] = [];
    other.on('invalidated', (event) => heard.push(event));
    const flushes: string[] = [];
    other.on('flush', (event) => flushes.push(event.reason));
    await Promise.all([inv.ready(), other.ready()]);

    const names = Array.from({ length: 40 }, (_, i) => `page:${i}`);
    expect(new Set(names.map(slotOf)).size).toBe(names.length);
    await Promise.all(names.map((name) => client.set(name, 'cached', 'PX', 600_000)));
    const forever = 'page:forever';
    await client.set(forever, 'cached');
    // Tag members in other slots than the tag set: their expiry is read where they live.
    expect(await inv.tag('pages', names.slice(20))).toBe(20);
    expect(await inv.tag('pages', names.slice(20, 22))).toBe(0);
    const tagKey = createKeySpace(channel).tag('pages');
    const longest = Math.max(...(await Promise.all(names.slice(20).map((n) => client.pexpiretime(n)))));
    expect(await client.pexpiretime(tagKey)).toBe(longest);
    await inv.tag('pages', forever);
    expect(await client.pttl(tagKey)).toBe(-1);

    const result = await inv.invalidate(names.slice(0, 20), { tags: ['pages'] });
    expect(result).toEqual({ deleted: 41, steps: 1 });
    for (const name of [...names, forever]) expect(await client.exists(name)).toBe(0);
    expect(await client.exists(tagKey)).toBe(0);
    await eventually(() => heard.length === 1, 10_000);
    expect(heard[0]).toMatchObject({ origin: 'hk', tags: ['pages'], lagMs: 0 });
    expect(heard[0]?.keys).toEqual(names.slice(0, 20));

    // Split into steps: each a DEL per slot, published once per step.
    const small = createInvalidator({ client, region: 'hk', channel, maxKeysPerEvent: 7 });
    await small.ready();
    await Promise.all(names.map((name) => client.set(name, 'again')));
    expect(await small.invalidate(names)).toEqual({ deleted: 40, steps: 6 });
    await eventually(() => heard.length === 7, 10_000);

    // Its subscriber's connection cut: drop everything, then hear again (from whichever node it picks).
    for (const node of await subscribedNodes('cache:|invalidated')) {
      await cluster.nodeClient(node.port).call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    }
    await eventually(() => flushes.join() === 'disconnected,resubscribed', 10_000);
    expect(other.listening).toBe(true);
    await client.set(names[0] as string, 'again');
    await inv.invalidate(names[0] as string);
    await eventually(() => heard.length === 8, 10_000);

    await Promise.all([inv.close(), other.close(), small.close()]);
  });

  it('keeps the connection registry in one slot, across a failover of its master', async () => {
    // A prefix whose registry slot is on a master that still has a replica (the first test killed one).
    let prefix = '';
    for (let i = 0; prefix === ''; i++) {
      const master = await cluster.masterOf(registryKeys(`reg${i}:`).leases);
      const info = String(await cluster.nodeClient(master.port).info('replication'));
      if (/connected_slaves:[1-9]/.test(info)) prefix = `reg${i}:`;
    }
    const keys = registryKeys(prefix);
    const slot = slotOf(keys.leases);
    for (const key of [keys.incs, keys.user('alice'), keys.user('bob')]) expect(slotOf(key)).toBe(slot);
    const a = createConnectionRegistry({ client, region: 'hk', pod: 'pod-a', prefix });
    const b = createConnectionRegistry({ client: cluster.client(), region: 'hk', pod: 'pod-b', prefix });
    expect(await a.register('alice', 'c1', { sid: 'sid-1' })).toBe(true);
    expect(await b.register('alice', 'c2')).toBe(true);
    expect(await b.register('bob', 'c3')).toBe(true);
    const pods = (await a.podsOf('alice')).sort((x, y) => x.pod.localeCompare(y.pod));
    expect(pods).toEqual([
      { region: 'hk', pod: 'pod-a', connections: [{ connectionId: 'c1', sid: 'sid-1' }] },
      { region: 'hk', pod: 'pod-b', connections: [{ connectionId: 'c2' }] },
    ]);
    // Replicas hold what WAIT confirmed; then the registry's master goes.
    const master = await cluster.masterOf(keys.leases);
    expect(await cluster.nodeClient(master.port).call('WAIT', '1', '5000')).toBe(1);
    await cluster.failover(keys.leases);
    expect(await a.unregister('c1')).toBe(true);
    expect(await b.podsOf('alice')).toEqual([
      { region: 'hk', pod: 'pod-b', connections: [{ connectionId: 'c2' }] },
    ]);
    expect(await a.podsOf('bob')).toEqual([
      { region: 'hk', pod: 'pod-b', connections: [{ connectionId: 'c3' }] },
    ]);
    await Promise.all([a.close(), b.close()]);
    expect(await a.podsOf('bob').catch((e: Error) => e.name)).toBe('ClosedError');
  });

  describe('replicated to a second Cluster', () => {
    let kr: LocalCluster;
    let krClient: Cluster;
    beforeAll(async () => {
      kr = await startCluster(3, 0);
      krClient = kr.client();
    }, 90_000);
    afterAll(async () => {
      await kr?.stop();
    });

    /** One transport per region between hk (the first cluster) and kr, on `channel`. */
    async function transports(kind: 'memory' | 'amqp', channel: string) {
      if (kind === 'memory') {
        const memory = createMemoryTransport({ regions: ['hk', 'kr'] });
        return { of: (_region: string): ReplicationTransport => memory, close: () => memory.close() };
      }
      const d = await createDeployment('amqp', ['hk', 'kr'], {
        prefix: channel,
        clients: { hk: client, kr: krClient },
      });
      return { of: (region: string) => d.transport(region), close: () => d.close() };
    }

    const listed = (groups: { region: string; pod: string; connections: { connectionId: string }[] }[]) =>
      groups.flatMap((g) => g.connections.map((c) => `${g.region}/${g.pod}/${c.connectionId}`)).sort();

    for (const kind of ['memory', 'amqp'] as const) {
      it(`replicates the connection registry over ${kind}, its keys in its outbox's slot`, async (ctx) => {
        if (kind === 'amqp' && !(await transportAvailable('amqp'))) return ctx.skip();
        const prefix = `rr-${kind}:`;
        const channel = `${prefix}registry:`;
        const t = await transports(kind, channel);
        const errors: Error[] = [];
        const open = (region: string, on: Cluster, pod: string) => {
          const r = createConnectionRegistry({ client: on, region, pod, prefix, transport: t.of(region) });
          r.on('error', (e) => errors.push(e));
          return r;
        };
        const hk = open('hk', client, 'pod-a');
        const krReg = open('kr', krClient, 'pod-b');
        try {
          // kr's node subscribes in the background: a probe, registered again until kr lists it.
          let probe = 0;
          await eventually(async () => {
            await hk.register('probe', `p${++probe}`);
            await new Promise((r) => setTimeout(r, 300));
            return (await krReg.podsOf('probe')).length > 0;
          }, 20_000);
          for (let i = 1; i <= probe; i++) await hk.unregister(`p${i}`);

          // Every key a registry script takes is in the outbox's slot; a single Redis keeps its names.
          const keys = registryKeys(prefix, '', channel);
          const space = createKeySpace(channel);
          const slot = slotOf(space.internal('outbox', 'hk'));
          for (const key of [keys.leases, keys.incs, keys.user('alice'), space.sequence('hk')]) {
            expect(slotOf(key)).toBe(slot);
          }
          expect(slotOf(space.internal('outbox', 'kr'))).toBe(slot);
          expect(registryKeys(prefix).leases).toBe(`{${prefix}|registry}:leases`);
          expect(await client.exists(keys.leases)).toBe(1);
          expect(await krClient.exists(keys.leases)).toBe(1);
          expect(await client.exists(registryKeys(prefix).leases)).toBe(0);

          expect(await hk.register('alice', 'c1', { sid: 'sid-1' })).toBe(true);
          expect(await krReg.register('alice', 'c2')).toBe(true);
          const both = ['hk/pod-a/c1', 'kr/pod-b/c2'];
          await eventually(async () => listed(await krReg.podsOf('alice')).join() === both.join(), 20_000);
          await eventually(async () => listed(await hk.podsOf('alice')).join() === both.join(), 20_000);
          expect((await krReg.podsOf('alice')).find((g) => g.region === 'hk')?.connections).toEqual([
            { connectionId: 'c1', sid: 'sid-1' },
          ]);

          expect(await hk.unregister('c1')).toBe(true);
          await eventually(async () => listed(await krReg.podsOf('alice')).join() === 'kr/pod-b/c2', 20_000);
          // kr's pod closes: its connections disappear in hk.
          await krReg.close();
          await eventually(async () => (await hk.podsOf('alice')).length === 0, 20_000);
          expect(hk.replicationStats()?.applied).toBeGreaterThan(0);
          expect(hk.replicationStats()?.node.needsResync).toEqual({});
          expect(errors).toEqual([]);
        } finally {
          await Promise.all([hk.close(), krReg.close()]);
          await t.close();
        }
      });

      it(`replicates invalidations over ${kind}: both regions delete in every slot, the event appended first`, async (ctx) => {
        if (kind === 'amqp' && !(await transportAvailable('amqp'))) return ctx.skip();
        const channel = `ci-${kind}:`;
        const t = await transports(kind, channel);
        const errors: Error[] = [];
        const make = (region: string, on: Cluster) => {
          const inv = createInvalidator({
            client: on,
            region,
            channel,
            transport: t.of(region),
            sealer: 'none',
            operationTimeoutMs: 600,
            heartbeatMs: 300,
          });
          inv.on('error', (e) => errors.push(e));
          return inv;
        };
        const hk = make('hk', client);
        const krInv = make('kr', krClient);
        const heard: InvalidatedEvent[] = [];
        krInv.on('invalidated', (event) => heard.push(event));
        const exists = (on: Cluster, names: readonly string[]) =>
          Promise.all(names.map((n) => on.exists(n))).then((e) => e.reduce((a, b) => a + b, 0));
        try {
          await Promise.all([hk.ready(), krInv.ready()]);
          // kr receives once its queue is bound: a probe, invalidated again until kr deleted it.
          const probe = `${channel}probe`;
          await eventually(async () => {
            await krClient.set(probe, 'x');
            await hk.invalidate(probe);
            await new Promise((r) => setTimeout(r, 300));
            return (await krClient.exists(probe)) === 0;
          }, 20_000);

          const names = Array.from({ length: 30 }, (_, i) => `${channel}page:${i}`);
          expect(new Set(names.map(slotOf)).size).toBe(names.length);
          for (const on of [cluster, kr]) {
            const masters = new Set(await Promise.all(names.map(async (n) => (await on.masterOf(n)).port)));
            expect(masters.size).toBe(3);
          }
          const fill = () =>
            Promise.all(
              [client, krClient].flatMap((on) => names.map((n) => on.set(n, 'cached', 'PX', 600_000))),
            );
          await fill();
          // Each region tags what it cached: the tag's members are deleted where they are tagged.
          expect(await hk.tag('pages', names.slice(20))).toBe(10);
          expect(await krInv.tag('pages', names.slice(20))).toBe(10);
          const before = heard.length;
          expect(await hk.invalidate(names.slice(0, 20), { tags: ['pages'] })).toEqual({
            deleted: 30,
            steps: 1,
          });
          expect(await exists(client, names)).toBe(0);
          await eventually(async () => (await exists(krClient, names)) === 0, 20_000);
          const tagSet = createKeySpace(channel).tag('pages');
          expect(await krClient.exists(tagSet)).toBe(0);
          await eventually(() => heard.length > before, 10_000);
          expect(heard.at(-1)).toMatchObject({ origin: 'hk', tags: ['pages'], keys: names.slice(0, 20) });

          // A step that cannot delete here (a tag set that is no set) rejects, and the other region
          // deletes anyway: the event was appended before the local deletes.
          await fill();
          const broken = createKeySpace(channel).tag('broken');
          await client.set(broken, 'not a set');
          await expect(hk.invalidate(names, { tags: ['broken'] })).rejects.toThrow(/WRONGTYPE/);
          expect(await exists(client, names)).toBe(names.length);
          await eventually(async () => (await exists(krClient, names)) === 0, 20_000);
          // Called again once the cause is gone, it completes (kr applies it twice: no harm).
          await client.del(broken);
          expect(await hk.invalidate(names, { tags: ['broken'] })).toEqual({ deleted: 30, steps: 1 });
          // kr applied both (before the keys are filled again below).
          await eventually(() => heard.filter((e) => e.tags.includes('broken')).length === 2, 10_000);
          expect(errors).toEqual([]);
          expect(krInv.stats().replication?.rejected).toEqual({});

          // The other way: kr's masters refuse DEL for a while (NOPERM, a transient failure): kr's
          // applies fail and the batch comes again until they work; nothing is lost.
          await fill();
          const acl = (rule: string) =>
            Promise.all(kr.nodes.map((n) => kr.nodeClient(n.port).call('ACL', 'SETUSER', 'default', rule)));
          await acl('-del');
          try {
            expect(await hk.invalidate(names)).toEqual({ deleted: 30, steps: 1 });
            await eventually(() => (krInv.stats().replication?.transient.count ?? 0) >= 2, 20_000);
            expect(await exists(krClient, names)).toBe(names.length);
          } finally {
            await acl('+del');
          }
          await eventually(async () => (await exists(krClient, names)) === 0, 20_000);
          expect(krInv.stats().replication?.rejected).toEqual({});
          expect(hk.stats().replication?.needsResync).toEqual({});
          expect(krInv.stats().replication?.needsResync).toEqual({});
        } finally {
          await Promise.all([hk.close(), krInv.close()]);
          await t.close();
        }
      });
    }
  });
});
