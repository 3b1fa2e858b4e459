/**
 * Remote registry events that a broker delivers out of order (docs/replication.md, "Delivery": a batch
 * that met a transient failure comes again after newer ones): a connection's register applied after its
 * unregister must not list it again. Drives registry-apply.lua directly on the shared Redis, as the
 * registry's replication does, and reads the result through a real registry's `podsOf`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type ConnectionRegistry, createConnectionRegistry } from '../../src/index.js';
import {
  applyRegistryEvents,
  RegistryApplyResult,
  type RemoteRegistryEvent,
} from '../../src/redis/registry-commands.js';
import { registryKeys } from '../../src/registry/keys.js';
import { orderOf } from '../../src/registry/replication.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const client = sharedRedis({ lazyConnect: true });
const prefixes: string[] = [];
const registries: ConnectionRegistry[] = [];
afterAll(async () => {
  for (const registry of registries) await registry.close().catch(() => {});
  for (const prefix of hasRedis ? prefixes : []) await dropKeys(client, `${prefix}|`);
  client.disconnect();
});

const INC = `${String(Date.now()).padStart(15, '0')}.00112233aabbccdd`;
const EPOCH = '1796597483616378';
const order = (n: number) => orderOf(`hk:${EPOCH}.${n}`);

describe('orderOf', () => {
  it("makes an envelope's number comparable as text, across epochs", () => {
    expect(order(9) < order(10)).toBe(true);
    expect(order(999) < orderOf(`hk:${Number(EPOCH) + 1}.1`)).toBe(true);
    expect(orderOf('hk:1796597483616378.12')).toBe('1796597483616378.000000000000012');
    expect(orderOf('hk#3:1796597483616378.12')).toBe('1796597483616378.000000000000012');
    expect(orderOf('hk:1-0')).toBe('');
  });
});

describe.skipIf(!hasRedis)('registry events out of order', () => {
  function setup(name: string) {
    const prefix = uniquePrefix(name);
    prefixes.push(prefix);
    const keys = registryKeys(prefix);
    const reader = createConnectionRegistry({ client, region: 'kr', pod: 'k1', prefix });
    registries.push(reader);
    const user = keys.user('u1');
    const base = { origin: 'hk', pod: 'p1', inc: INC } as const;
    const lease: RemoteRegistryEvent = { op: 'l', ...base, expiresAt: Date.now() + 60_000 };
    const r = (n: number, connectionId = 'c1'): RemoteRegistryEvent => ({
      op: 'r',
      ...base,
      user,
      connectionId,
      sid: 'hk.s1',
      order: n === 0 ? '' : order(n),
    });
    const u = (n: number, connectionId = 'c1'): RemoteRegistryEvent => ({
      op: 'u',
      ...base,
      user,
      connectionId,
      sid: '',
      order: n === 0 ? '' : order(n),
    });
    const apply = (events: RemoteRegistryEvent[], rememberMs = 60_000) =>
      applyRegistryEvents(client, keys, events, 86_460_000, rememberMs);
    const listed = async () =>
      (await reader.podsOf('u1')).flatMap((p) =>
        p.connections.map((c) => `${p.region}|${p.pod}|${c.connectionId}`),
      );
    return { keys, user, lease, r, u, apply, listed };
  }

  it('a register delivered after its unregister stays unregistered; a later register lists it again', async () => {
    const t = setup('rord1');
    expect(await t.apply([t.lease, t.r(2, 'c2')])).toEqual([
      RegistryApplyResult.Applied,
      RegistryApplyResult.Applied,
    ]);
    // c1's unregister (number 4) arrives before its register (number 3).
    expect(await t.apply([t.u(4)])).toEqual([RegistryApplyResult.Unchanged]);
    expect(await t.apply([t.r(3)])).toEqual([RegistryApplyResult.Unchanged]);
    expect(await t.listed()).toEqual(['hk|p1|c2']);
    // The same batch again (a redelivery) changes nothing.
    expect(await t.apply([t.r(3), t.u(4)])).toEqual([
      RegistryApplyResult.Unchanged,
      RegistryApplyResult.Unchanged,
    ]);
    expect(await t.listed()).toEqual(['hk|p1|c2']);
    // Registered again later in the origin (number 5): listed.
    expect(await t.apply([t.r(5)])).toEqual([RegistryApplyResult.Applied]);
    expect((await t.listed()).sort()).toEqual(['hk|p1|c1', 'hk|p1|c2']);
    // c2's register redelivered after its unregister was applied in order: still gone.
    expect(await t.apply([t.u(6, 'c2')])).toEqual([RegistryApplyResult.Applied]);
    expect(await t.apply([t.r(2, 'c2')])).toEqual([RegistryApplyResult.Unchanged]);
    expect(await t.listed()).toEqual(['hk|p1|c1']);
  });

  it('forgets an unregistered connection after rememberMs, and at once when its pod restarts', async () => {
    const t = setup('rord2');
    await t.apply([t.lease, t.r(1), t.r(2, 'c2')]);
    await t.apply([t.u(3), t.u(4, 'c2')], 150);
    expect(await client.hlen(t.user)).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await t.listed()).toEqual([]);
    expect(await client.hlen(t.user)).toBe(0);

    await t.apply([t.r(5)]);
    await t.apply([t.u(6)]);
    expect(await client.hlen(t.user)).toBe(1);
    const newer = `${String(Date.now() + 1).padStart(15, '0')}.ffeeddccbbaa9988`;
    await t.apply([{ op: 'l', origin: 'hk', pod: 'p1', inc: newer, expiresAt: Date.now() + 60_000 }]);
    expect(await t.listed()).toEqual([]);
    expect(await client.hlen(t.user)).toBe(0);
  });

  it('events without a number (an older sender) keep the old rule: unregister deletes', async () => {
    const t = setup('rord3');
    await t.apply([t.lease, t.r(0)]);
    expect(await t.listed()).toEqual(['hk|p1|c1']);
    expect(await t.apply([t.u(0)])).toEqual([RegistryApplyResult.Applied]);
    expect(await client.hlen(t.user)).toBe(0);
  });
});
