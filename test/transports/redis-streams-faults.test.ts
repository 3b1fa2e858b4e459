/**
 * The Redis Streams transport under the faults of issue 11, on private redis-servers, one per region:
 * - a region's Redis that comes back empty: readers recreate their consumer groups by themselves and
 *   replication resumes in both directions within 5 s, without a process restart; the emptied region is
 *   reported once (ERR_GEOSESSION_RESYNC_NEEDED) and shows in `replicationStats().needsResync`. Before,
 *   the other region's reader failed with NOGROUP forever;
 * - a region that never comes back: what is kept for it is bounded by `maxBacklog` (entries and age);
 *   crossing the warning threshold and then the bound is an ERR_GEOSESSION_BACKLOG `error` event with the
 *   transport `degraded`, and past the bound the oldest entries are dropped and the region needs a
 *   resync. Before, all of it stayed with no stat, event or state change;
 * - removing a region for good: the documented procedure (docs/replication.md, "Removing a region");
 * - dead consumers are removed from their groups (consumerIdleMs).
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PeerBacklog, ReplicationTransport, TransportState } from '../../src/contracts/transport.js';
import { BacklogError, type GeoSessionError, ResyncNeededError } from '../../src/errors.js';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import {
  createRedisStreamsTransport,
  type RedisStreamsTransportOptions,
} from '../../src/transports/redis-streams.js';
import { eventually, hasRedis, type PrivateRedis, startRedis, uniquePrefix } from '../helpers/servers.js';

const WAIT = 20_000;

function session(data: Record<string, unknown>): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    ...data,
  };
}

/** XINFO reply rows as objects. */
function rows(reply: unknown): Record<string, unknown>[] {
  return (reply as unknown[][]).map((row) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < row.length; i += 2) out[String(row[i])] = row[i + 1];
    return out;
  });
}

const groupNames = async (client: Redis, key: string) =>
  rows(await client.xinfo('GROUPS', key)).map((g) => String(g.name));

const consumerNames = async (client: Redis, key: string, group: string) =>
  rows(await client.xinfo('CONSUMERS', key, group)).map((c) => String(c.name));

describe.skipIf(!hasRedis)('redis-streams transport faults (private servers)', () => {
  const servers: Record<string, PrivateRedis> = {};
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    for (const region of ['hk', 'kr', 'us']) servers[region] = await startRedis();
  });
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });
  afterAll(async () => {
    for (const server of Object.values(servers)) await server.stop();
  });

  const server = (region: string) => servers[region] as PrivateRedis;

  /** A region's process: its own clients, its own transport and its store, with errors and states kept. */
  function region(
    name: string,
    prefix: string,
    regions: readonly string[],
    extra: Partial<RedisStreamsTransportOptions> = {},
  ) {
    const clients = Object.fromEntries(regions.map((r) => [r, server(r).client()]));
    const transport = createRedisStreamsTransport({
      regions: clients,
      blockMs: 200,
      watchdogMs: 1000,
      trimIntervalMs: 200,
      ...extra,
    });
    const states: TransportState[] = [];
    transport.on('state', (s) => states.push(s));
    const store = new GeoSessionStore({
      region: name,
      client: clients[name] as Redis,
      prefix,
      tombstoneTtl: 600,
      transport,
      sealer: 'none',
    });
    const errors: GeoSessionError[] = [];
    store.on('error', (e) => errors.push(e));
    opened.push(transport, store);
    return { store, transport, errors, states, client: clients[name] as Redis };
  }

  const resyncsOf = (errors: GeoSessionError[], about: string) =>
    errors.filter((e) => e instanceof ResyncNeededError && e.region === about);

  it('a region whose Redis restarts empty: both directions resume within 5 s, reported once', async () => {
    const prefix = uniquePrefix('empty');
    const hk = region('hk', prefix, ['hk', 'kr']);
    const kr = region('kr', prefix, ['hk', 'kr']);
    await Promise.all([hk.store.ready(), kr.store.ready()]);
    const before = hk.store.genid();
    await hk.store.set(before, session({ user: 'before' }));
    await eventually(async () => (await kr.store.get(before)) !== null, WAIT);

    // kr's redis-server dies and comes back empty on the same port (no persistence).
    await server('kr').restart();
    const restarted = Date.now();
    const fromKr = kr.store.genid();
    const fromHk = hk.store.genid();
    // kr's client may still be reconnecting: its first write may fail, the next one lands.
    await eventually(
      () =>
        kr.store.set(fromKr, session({ user: 'kr-after' })).then(
          () => true,
          () => false,
        ),
      WAIT,
      50,
    );
    await hk.store.set(fromHk, session({ user: 'hk-after' }));
    await eventually(
      async () => (await hk.store.get(fromKr)) !== null && (await kr.store.get(fromHk)) !== null,
      Math.max(1, 5000 - (Date.now() - restarted)),
      50,
    );
    expect(await hk.store.get(fromKr)).toMatchObject({ user: 'kr-after' });
    expect(await kr.store.get(fromHk)).toMatchObject({ user: 'hk-after' });

    // Both processes know kr lost its data: hk through the groups it had to recreate on kr's outbox, kr
    // through the epoch its Redis no longer held.
    await eventually(() => resyncsOf(kr.errors, 'kr').length > 0, WAIT);
    await eventually(() => resyncsOf(hk.errors, 'kr').length > 0, WAIT);
    expect(Object.keys(hk.store.replicationStats()?.needsResync ?? {})).toContain('kr');
    expect(Object.keys(kr.store.replicationStats()?.needsResync ?? {})).toContain('kr');
    expect(resyncsOf(hk.errors, 'kr')[0]?.code).toBe('ERR_GEOSESSION_RESYNC_NEEDED');
    // hk's group on kr's outbox is back, and hk's transport is healthy again.
    expect(await groupNames(kr.client, createKeySpace(prefix).internal('outbox', 'kr'))).toContain('hk');
    await eventually(() => hk.transport.state === 'ready' && kr.transport.state === 'ready', WAIT);

    // Reported once: later writes and another round of checks add no report.
    const more = hk.store.genid();
    await kr.store.set(kr.store.genid(), session({ user: 'later' }));
    await hk.store.set(more, session({ user: 'later' }));
    await eventually(async () => (await kr.store.get(more)) !== null, WAIT);
    await new Promise((r) => setTimeout(r, 5500)); // one more epoch check of the replicators (every 5 s)
    expect(resyncsOf(hk.errors, 'kr')).toHaveLength(1);
    expect(resyncsOf(kr.errors, 'kr')).toHaveLength(1);
  }, 60_000);

  describe('a region that never comes back', () => {
    /** Waits for a trim round of hk's transport to report `us`'s backlog, and returns it. */
    async function backlogOfUs(
      transport: ReplicationTransport,
      prefix: string,
      accept: (b: PeerBacklog) => boolean,
    ) {
      let found: PeerBacklog | undefined;
      await eventually(async () => {
        found = (await transport.backlog?.(prefix, 'hk'))?.find((b) => b.region === 'us');
        return found !== undefined && accept(found);
      }, WAIT);
      return found as PeerBacklog;
    }

    it('is bounded by entries: a warning, then the bound, the oldest dropped and a resync needed', async () => {
      const prefix = uniquePrefix('bound');
      // us is configured but never runs (its Redis is up, nobody reads for it).
      const hk = region('hk', prefix, ['hk', 'us'], { maxBacklog: { entries: 100, warnAt: 0.5 } });
      await hk.store.ready();
      const outbox = createKeySpace(prefix).internal('outbox', 'hk');
      const sids = Array.from({ length: 160 }, () => hk.store.genid());

      for (const sid of sids.slice(0, 40)) await hk.store.set(sid, session({ n: sid }));
      await backlogOfUs(hk.transport, prefix, (b) => b.entries === 40);
      expect(hk.transport.state).toBe('ready');
      expect(hk.errors.filter((e) => e instanceof BacklogError)).toEqual([]);

      for (const sid of sids.slice(40, 60)) await hk.store.set(sid, session({ n: sid }));
      await backlogOfUs(hk.transport, prefix, (b) => b.level === 'warning');
      await eventually(() => hk.errors.some((e) => e instanceof BacklogError), WAIT);
      const [warning] = hk.errors.filter((e) => e instanceof BacklogError) as BacklogError[];
      expect(warning).toMatchObject({ code: 'ERR_GEOSESSION_BACKLOG', region: 'us', level: 'warning' });
      expect(hk.transport.state).toBe('degraded');
      expect(hk.states).toContain('degraded');
      expect(hk.store.replicationStats()?.needsResync).toEqual({});

      for (const sid of sids.slice(60)) await hk.store.set(sid, session({ n: sid }));
      await eventually(
        () => hk.errors.some((e) => e instanceof BacklogError && e.level === 'exceeded'),
        WAIT,
      );
      const exceeded = hk.errors.find((e) => e instanceof BacklogError && e.level === 'exceeded');
      expect(exceeded).toMatchObject({ code: 'ERR_GEOSESSION_BACKLOG', region: 'us' });
      expect(hk.transport.state).toBe('degraded');
      // Past the bound the oldest are dropped: what is kept is within the bound and is the newest.
      await eventually(async () => (await hk.client.xlen(outbox)) <= 100, WAIT);
      const kept = await hk.client.xrange(outbox, '-', '+');
      const bodies = kept.map(([, fields]) => fields.join(' '));
      expect(bodies.some((b) => b.includes(sids[0] as string))).toBe(false);
      expect(bodies.some((b) => b.includes(sids.at(-1) as string))).toBe(true);
      expect(Object.keys(hk.store.replicationStats()?.needsResync ?? {})).toEqual(['us']);
      expect(hk.errors.filter((e) => e instanceof ResyncNeededError)).toHaveLength(1);
    });

    it('is bounded by age: entries older than maxBacklog.ageMs are dropped for it', async () => {
      const prefix = uniquePrefix('age');
      const hk = region('hk', prefix, ['hk', 'us'], { maxBacklog: { ageMs: 1500, warnAt: 0.5 } });
      await hk.store.ready();
      const outbox = createKeySpace(prefix).internal('outbox', 'hk');
      for (let i = 0; i < 5; i++) await hk.store.set(hk.store.genid(), session({ n: i }));
      await eventually(() => hk.errors.some((e) => e instanceof BacklogError && e.level === 'warning'), WAIT);
      expect(hk.states).toContain('degraded');
      await eventually(
        () => hk.errors.some((e) => e instanceof BacklogError && e.level === 'exceeded'),
        WAIT,
      );
      await eventually(async () => (await hk.client.xlen(outbox)) === 0, WAIT);
      expect(Object.keys(hk.store.replicationStats()?.needsResync ?? {})).toEqual(['us']);
      // What is written now is kept for us again, within the bound.
      await hk.store.set(hk.store.genid(), session({ n: 'new' }));
      expect(await hk.client.xlen(outbox)).toBe(1);
    });

    it('removing it (docs/replication.md, "Removing a region"): its groups go and the outboxes trim again', async () => {
      const prefix = uniquePrefix('remove');
      const keys = createKeySpace(prefix);
      const outboxOf = (r: string) => keys.internal('outbox', r);
      const three = ['hk', 'kr', 'us'];
      // hk keeps at most 20 entries for a region that does not read them.
      const bound = { maxBacklog: { entries: 20 } };
      let hk = region('hk', prefix, three, bound);
      let kr = region('kr', prefix, three);
      const us = region('us', prefix, three);
      await Promise.all([hk.store.ready(), kr.store.ready(), us.store.ready()]);
      // us ran once (its groups exist on hk's and kr's outboxes), then it is gone for good.
      await us.store.close();
      await us.transport.close();
      const sids = Array.from({ length: 15 }, () => hk.store.genid());
      for (const sid of sids) await hk.store.set(sid, session({ n: sid }));
      await eventually(async () => (await kr.store.get(sids.at(-1) as string)) !== null, WAIT);
      // kr consumed everything, but hk's outbox keeps it all for us.
      await new Promise((r) => setTimeout(r, 600));
      expect(await hk.client.xlen(outboxOf('hk'))).toBe(sids.length);
      // Then past the bound for us: hk flags that it needs a resync with us.
      for (let i = 0; i < 10; i++) await hk.store.set(hk.store.genid(), session({ n: i }));
      await eventually(() => 'us' in (hk.store.replicationStats()?.needsResync ?? {}), WAIT);

      // 1. Every remaining region drops us from `regions` (a redeploy with the new configuration).
      for (const o of opened.splice(0).reverse()) await o.close();
      hk = region('hk', prefix, ['hk', 'kr'], bound);
      kr = region('kr', prefix, ['hk', 'kr']);
      await Promise.all([hk.store.ready(), kr.store.ready()]);
      for (const r of ['hk', 'kr']) {
        const client = r === 'hk' ? hk.client : kr.client;
        // 2. On every remaining region's Redis, us's consumer group goes from the outbox (and from the
        //    sealed `relay` stream when a sealer is used).
        for (const family of ['outbox', 'relay'] as const) {
          const key = keys.internal(family, r);
          if ((await client.exists(key)) === 1 && (await groupNames(client, key)).includes('us')) {
            await client.xgroup('DESTROY', key, 'us');
          }
        }
        // 3. A resync need flagged with us is forgotten (processes read it at start).
        await client.hdel(keys.internal('state', r), 'resync:us');
      }

      for (const r of ['hk', 'kr']) {
        expect(await groupNames(r === 'hk' ? hk.client : kr.client, outboxOf(r))).not.toContain('us');
      }
      // hk's outbox is trimmed to what kr consumed (the last entry read stays), and replication goes on.
      await eventually(async () => (await hk.client.xlen(outboxOf('hk'))) <= 1, WAIT);
      const a = hk.store.genid();
      const b = kr.store.genid();
      await hk.store.set(a, session({ n: 'a' }));
      await kr.store.set(b, session({ n: 'b' }));
      await eventually(
        async () => (await kr.store.get(a)) !== null && (await hk.store.get(b)) !== null,
        WAIT,
      );
      expect((await hk.transport.backlog?.(prefix, 'hk'))?.map((x) => x.region)).not.toContain('us');
      expect(hk.errors.filter((e) => e instanceof BacklogError)).toEqual([]);
      // hk's next process no longer reports a resync with us.
      await hk.store.close();
      await hk.transport.close();
      hk = region('hk', prefix, ['hk', 'kr'], bound);
      await hk.store.ready();
      expect(hk.store.replicationStats()?.needsResync).toEqual({});
    });
  });

  it('removes consumers idle longer than consumerIdleMs with nothing pending, never its own', async () => {
    const prefix = uniquePrefix('idle');
    const keys = createKeySpace(prefix);
    const hk = region('hk', prefix, ['hk', 'kr']);
    await hk.store.ready();
    const outbox = keys.internal('outbox', 'hk');
    for (let i = 0; i < 3; i++) await hk.store.set(hk.store.genid(), session({ n: i }));
    // Two kr processes that died: one with nothing pending, one holding a batch it never acknowledged.
    await hk.client.xgroup('CREATE', outbox, 'kr', '0', 'MKSTREAM').catch(() => {});
    await hk.client.xgroup('CREATECONSUMER', outbox, 'kr', 'kr:dead-host:1:idle');
    await hk.client.xreadgroup('GROUP', 'kr', 'kr:dead-host:2:holding', 'COUNT', 2, 'STREAMS', outbox, '>');
    expect(await consumerNames(hk.client, outbox, 'kr')).toEqual(
      expect.arrayContaining(['kr:dead-host:1:idle', 'kr:dead-host:2:holding']),
    );

    const kr = region('kr', prefix, ['hk', 'kr'], { consumerIdleMs: 500, claimIdleMs: 1000, readers: 2 });
    await kr.store.ready();
    // The idle one goes; the one holding entries goes once they were claimed and applied by a live one.
    await eventually(async () => {
      const names = await consumerNames(hk.client, outbox, 'kr');
      return !names.some((n) => n.startsWith('kr:dead-host'));
    }, WAIT);
    expect(Number(((await hk.client.xpending(outbox, 'kr')) as [number])[0])).toBe(0);
    // kr's own readers stay, though they may be idle between reads.
    await new Promise((r) => setTimeout(r, 1000));
    const live = await consumerNames(hk.client, outbox, 'kr');
    expect(live).toHaveLength(2);
    expect(live.every((n) => n.startsWith('kr:'))).toBe(true);
  });
});
