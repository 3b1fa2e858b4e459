/**
 * An invalidator without a transport on the machine's Redis: tags (their lifetime follows their
 * longest-lived key), the client's key prefix, and the local event.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createInvalidator, type InvalidatedEvent } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { dropKeys, eventually, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

describe.skipIf(!hasRedis)('an invalidator without a transport', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('inv-tags');
  const channel = `${prefix}c:`;
  const opened: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const o of opened) await o.close();
    await dropKeys(client, prefix);
    await dropKeys(client, `${channel}`);
    client.disconnect();
  });

  it('keeps a tag as long as its longest-lived key, forever with a key that never expires', async () => {
    const inv = createInvalidator({ client, region: 'hk', channel, tagLifetimeMs: 60_000 });
    opened.push(inv);
    const keys = createKeySpace(channel);
    const [a, b, forever] = [`${prefix}a`, `${prefix}b`, `${prefix}forever`];
    await client.set(a, '1', 'PX', 10_000);
    await client.set(b, '1', 'PX', 3_600_000);
    await client.set(forever, '1');

    // Keys not written yet: the shortest lifetime.
    expect(await inv.tag('fresh', [`${prefix}later`])).toBe(1);
    const fresh = Number(await client.pttl(keys.tag('fresh')));
    expect(fresh).toBeGreaterThan(50_000);
    expect(fresh).toBeLessThanOrEqual(60_000);

    expect(await inv.tag('t', [a, b])).toBe(2);
    expect(await inv.tag('t', a)).toBe(0);
    const bAt = Number(await client.call('PEXPIRETIME', b));
    expect(Number(await client.call('PEXPIRETIME', keys.tag('t')))).toBe(bAt);

    await inv.tag('t', forever);
    expect(Number(await client.pttl(keys.tag('t')))).toBe(-1);
    // A tag that never expires stays so.
    await inv.tag('t', a);
    expect(Number(await client.pttl(keys.tag('t')))).toBe(-1);
  });

  it('deletes keys and tagged keys here, and this process hears it', async () => {
    const inv = createInvalidator({ client, region: 'hk', channel });
    opened.push(inv);
    const heard: InvalidatedEvent[] = [];
    inv.on('invalidated', (e) => heard.push(e));
    await inv.ready();
    const [x, y, z] = [`${prefix}x`, `${prefix}y`, `${prefix}z`];
    await client.mset(x, '1', y, '1', z, '1');
    await inv.tag('group', [y, z]);
    expect(await inv.invalidate(x, { tags: ['group', 'never-used'] })).toEqual({ deleted: 3, steps: 1 });
    expect(await client.exists(x, y, z, createKeySpace(channel).tag('group'))).toBe(0);
    await eventually(() => heard.length === 1);
    expect(heard[0]).toEqual({ keys: [x], tags: ['group', 'never-used'], origin: 'hk', lagMs: 0 });
    expect(inv.stats()).toMatchObject({ sent: 1, heard: 1, replication: undefined });
  });

  it('works through a client key prefix: tags and the event use the names the app gave', async () => {
    const prefixed = sharedRedis({ keyPrefix: `${prefix}kp:` });
    const inv = createInvalidator({ client: prefixed, region: 'hk', channel });
    opened.push(inv, { close: async () => prefixed.disconnect() });
    const heard: InvalidatedEvent[] = [];
    inv.on('invalidated', (e) => heard.push(e));
    await inv.ready();
    await prefixed.set('item', '1');
    await inv.tag('items', 'item');
    expect(await client.sismember(`${prefix}kp:{${channel}|tag}:items`, `${prefix}kp:item`)).toBe(1);
    expect(await inv.invalidate([], { tags: ['items'] })).toEqual({ deleted: 1, steps: 1 });
    expect(await client.exists(`${prefix}kp:item`)).toBe(0);
    await eventually(() => heard.length === 1);
    expect(heard[0]?.tags).toEqual(['items']);
  });
});
