/**
 * Least privilege for the Redis Streams transport (docs/security.md, "Redis ACL"): two regions, each its
 * own private redis-server, where each region reads the other's streams only through an ACL user that
 * may read its own consumer group, acknowledge, claim (XAUTOCLAIM), create the group, remove its idle
 * consumers and inspect the streams (XINFO), on the outbox and relay streams only. Replication works
 * unsealed (the others read the outbox) and sealed (the others read the relay stream), nothing the
 * transport does is refused by the ACL, and the ACL user can write no session and append to no stream.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployment, type Deployment } from '../helpers/deployment.js';
import { generatePasetoKey, localSealer, session } from '../helpers/forgery.js';
import { eventually, hasRedis } from '../helpers/servers.js';

const WAIT = 20_000;
const PASSWORD = 'reader-secret-for-tests';

/**
 * The ACL a region (`reader`) gets on another region's (`owner`'s) Redis, for a store with key prefix
 * `prefix` (the internal keys are `{<prefix>|outbox}:<owner>` and `{<prefix>|relay}:<owner>`, see
 * docs/security.md for prefixes with a hash tag or an ioredis keyPrefix).
 */
function readerAcl(prefix: string, owner: string, reader: string): string[] {
  return [
    `geosession-${reader}`,
    'reset',
    'on',
    `>${PASSWORD}`,
    `~{${prefix}|outbox}:${owner}`,
    `~{${prefix}|relay}:${owner}`,
    'resetchannels',
    '-@all',
    '+xreadgroup',
    '+xack',
    '+xautoclaim',
    '+xpending',
    '+xclaim',
    '+xgroup|create',
    '+xgroup|delconsumer',
    '+xinfo|stream',
    '+xinfo|groups',
    '+xinfo|consumers',
  ];
}

describe.skipIf(!hasRedis)('Redis Streams through a least-privilege ACL user per region', () => {
  let d: Deployment;
  const readers: Record<string, Redis> = {};
  const other = (region: string) => (region === 'hk' ? 'kr' : 'hk');

  beforeAll(async () => {
    d = await createDeployment('redis-streams', ['hk', 'kr'], {
      // Consumers idle for a second are removed (XGROUP DELCONSUMER), so the tests exercise it. A consumer
      // is removed only once nothing is pending under it: entries a restarted process could not hand over
      // (its stop is bounded; a loaded CI machine once ran past it) are claimed after 2 s, not the
      // default 30 s, so that the removal still happens inside the test's wait. XAUTOCLAIM goes through
      // the ACL user too.
      transport: { 'redis-streams': { consumerIdleMs: 1000, claimIdleMs: 2000 } },
      // Each region's transport: full access to its own Redis, the ACL user on the other's.
      transportClients: (region, clients) => ({
        [region]: clients[region] as Redis,
        [other(region)]: readers[region] as Redis,
      }),
    });
    for (const reader of ['hk', 'kr']) {
      const owner = other(reader);
      await (d.clients[owner] as Redis).call('ACL', 'SETUSER', ...readerAcl(d.prefix, owner, reader));
      readers[reader] = (d.servers[owner] as NonNullable<Deployment['servers'][string]>).client({
        username: `geosession-${reader}`,
        password: PASSWORD,
        // The ready check sends INFO, which the ACL does not grant.
        enableReadyCheck: false,
      });
    }
  });
  afterAll(async () => {
    await d?.close();
  });

  /** Writes in each region and waits until the other has it; then a logout in each direction. */
  async function replicatesBothWays(): Promise<void> {
    for (const [from, to] of [
      ['hk', 'kr'],
      ['kr', 'hk'],
    ] as const) {
      const sid = d.store(from).genid();
      await d.store(from).set(sid, session({ user: `from-${from}` }));
      await eventually(async () => (await d.store(to).get(sid))?.user === `from-${from}`, WAIT);
      await d.store(to).destroy(sid);
      await eventually(() => d.store(from).isDestroyed(sid), WAIT);
    }
  }

  /** No error of either store mentions a refused command (NOPERM), after a few tending rounds. */
  async function nothingRefusedByTheAcl(): Promise<void> {
    await new Promise((r) => setTimeout(r, 1500));
    for (const region of ['hk', 'kr']) {
      const messages = (d.errors[region] ?? []).map((e) => `${e.message} ${String((e as Error).cause)}`);
      expect(
        messages.filter((m) => /NOPERM|permission/i.test(m)),
        region,
      ).toEqual([]);
    }
  }

  it('unsealed: each region reads the other region’s outbox through its ACL user', async () => {
    await d.start('hk');
    await d.start('kr');
    await replicatesBothWays();
    // hk restarts: the consumers its earlier store left in its group on kr's outbox are removed, once
    // idle, through the ACL user (XINFO CONSUMERS, XGROUP DELCONSUMER).
    // The consumer names of hk's group on kr's outbox. How many readers a store runs follows the round
    // trip it measures ('auto'), so the counts before and after may differ: the names tell.
    const consumers = async () =>
      (
        (await (d.clients.kr as Redis).xinfo(
          'CONSUMERS',
          d.keys.internal('outbox', 'kr'),
          'hk',
        )) as unknown[][]
      ).map((row) => String(row[1]));
    const before = await consumers();
    expect(before.length).toBeGreaterThan(0);
    await d.restart('hk');
    await replicatesBothWays();
    expect((await consumers()).some((name) => !before.includes(name))).toBe(true);
    await eventually(async () => (await consumers()).every((name) => !before.includes(name)), WAIT);
    await nothingRefusedByTheAcl();
  });

  it('sealed: each region reads the other region’s relay stream through its ACL user', async () => {
    const { key } = generatePasetoKey();
    await d.restart('hk', { sealer: localSealer([key]) });
    await d.restart('kr', { sealer: localSealer([key]) });
    await replicatesBothWays();
    await nothingRefusedByTheAcl();
  });

  it('the ACL user can write no session and append to no stream', async () => {
    const acl = readers.kr as Redis; // kr's user on hk's Redis
    const sid = d.store('hk').genid();
    await d.store('hk').set(sid, session({ user: 'victim', role: 'user' }));
    const outbox = d.keys.internal('outbox', 'hk');
    const relay = d.keys.internal('relay', 'hk');
    const refused: [string, () => Promise<unknown>][] = [
      ['SET a session', () => acl.set(d.prefix + sid, '{"role":"admin"}')],
      ['GET a session', () => acl.get(d.prefix + sid)],
      ['DEL a session', () => acl.del(d.prefix + sid)],
      ['SET its metadata', () => acl.set(d.keys.meta(sid), 'x')],
      ['SET the outbox key', () => acl.set(outbox, 'x')],
      ['XADD to the outbox', () => acl.xadd(outbox, '*', 'b', 'x')],
      ['XADD to the relay stream', () => acl.xadd(relay, '*', 'e', 'sealed 1 hk:1-0\nx')],
      ['XTRIM the outbox', () => acl.xtrim(outbox, 'MAXLEN', 0)],
      ['XDEL from the outbox', () => acl.xdel(outbox, '0-1')],
      ['XRANGE the outbox', () => acl.xrange(outbox, '-', '+')],
      ['XGROUP SETID', () => acl.xgroup('SETID', outbox, 'kr', '$')],
      ['XGROUP DESTROY', () => acl.xgroup('DESTROY', outbox, 'kr')],
      ['DEL the outbox', () => acl.del(outbox)],
      ['EVAL', () => acl.eval("return redis.call('SET', KEYS[1], 'x')", 1, d.prefix + sid)],
      ['XREADGROUP on another key', () => acl.xreadgroup('GROUP', 'kr', 'c', 'STREAMS', 'other', '>')],
      ['KEYS', () => acl.keys('*')],
      ['FLUSHALL', () => acl.flushall()],
      ['CONFIG SET', () => acl.config('SET', 'appendonly', 'no')],
      ['ACL SETUSER', () => acl.call('ACL', 'SETUSER', 'geosession-kr', '+@all')],
    ];
    for (const [what, command] of refused) {
      await expect(command(), what).rejects.toThrow(/NOPERM/);
    }
    expect(JSON.parse((await (d.clients.hk as Redis).get(d.prefix + sid)) ?? '{}').role).toBe('user');
    // What it is for still works: reading its own group.
    await expect(acl.xinfo('GROUPS', outbox)).resolves.toBeDefined();
  });
});
