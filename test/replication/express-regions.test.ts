import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegionApp } from '../../examples/demo/app.js';
import { type Balancer, startBalancer } from '../../examples/demo/balancer.js';
import type { ReplicationTransport } from '../../src/contracts/transport.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { metaField } from '../helpers/meta.js';
import { eventually, hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/** A browser: keeps the session cookie between requests. */
class Browser {
  cookie: string | undefined;
  constructor(private readonly port: number) {}

  async request(method: string, path: string, body?: unknown) {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(this.cookie ? { cookie: this.cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) this.cookie = setCookie.split(';')[0];
    return {
      status: res.status,
      region: res.headers.get('x-region'),
      json: (await res.json()) as Record<string, unknown>,
    };
  }
}

describe.skipIf(!hasRedis)('two regions behind a round-robin balancer (express)', () => {
  let hkRedis: PrivateRedis;
  let krRedis: PrivateRedis;
  let transport: ReplicationTransport;
  let stores: GeoSessionStore[];
  let apps: { port: number; close(): Promise<void> }[];
  let balancer: Balancer;

  beforeAll(async () => {
    [hkRedis, krRedis] = await Promise.all([startRedis(), startRedis()]);
    const hk = hkRedis.client();
    const kr = krRedis.client();
    transport = createRedisStreamsTransport({ regions: { hk, kr }, blockMs: 200 });
    stores = [
      new GeoSessionStore({ region: 'hk', client: hk, transport, sealer: 'none', remotes: { kr } }),
      new GeoSessionStore({ region: 'kr', client: kr, transport, sealer: 'none', remotes: { hk } }),
    ];
    await Promise.all(stores.map((s) => s.ready()));
    apps = await Promise.all(stores.map((s) => startRegionApp(s)));
    balancer = await startBalancer(apps.map((a) => a.port));
  });

  afterAll(async () => {
    await balancer?.close();
    await Promise.all((apps ?? []).map((a) => a.close()));
    await Promise.all((stores ?? []).map((s) => s.close()));
    await transport?.close();
    await Promise.all([hkRedis?.stop(), krRedis?.stop()]);
  });

  it('keeps a user logged in across regions, with the cart, and logs out everywhere', async () => {
    const user = new Browser(balancer.port);
    const login = await user.request('POST', '/login', { user: 'alice' });
    expect(login.status).toBe(200);
    const served = new Set<string>([login.region as string]);

    for (let i = 0; i < 6; i++) {
      const me = await user.request('GET', '/me');
      expect(me.status).toBe(200);
      expect(me.json.user).toBe('alice');
      served.add(me.region as string);
    }
    expect(served).toEqual(new Set(['hk', 'kr']));

    const items = ['tea', 'dumplings', 'kimchi', 'bibimbap'];
    const sidOf = () =>
      decodeURIComponent(user.cookie?.split('=')[1] ?? '')
        .slice(2)
        .replace(/\.[^.]+$/, '');
    for (const [i, item] of items.entries()) {
      const added = await user.request('POST', '/cart', { item });
      expect(added.status).toBe(200);
      // Replication is asynchronous: a request that reaches the other region within the lag (about a
      // millisecond here) reads the cart as it was, and the later write wins (README, "Limits"). A user
      // takes longer than that between two clicks; so does this one.
      await eventually(async () => {
        const carts = await Promise.all(stores.map((s) => s.get(sidOf())));
        return carts.every((c) => (c as { cart?: string[] } | null)?.cart?.length === i + 1);
      }, 10_000);
    }
    // Every region, in turn, sees the whole cart.
    for (let i = 0; i < 4; i++) {
      const me = await user.request('GET', '/me');
      expect(me.json.cart).toEqual(items);
    }

    const logout = await user.request('POST', '/logout');
    expect(logout.status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await user.request('GET', '/me')).status).toBe(401);

    // Both regions converge: no value, a tombstone, in each region's own Redis.
    const sid = decodeURIComponent(user.cookie?.split('=')[1] ?? '')
      .slice(2)
      .replace(/\.[^.]+$/, '');
    for (const store of stores) {
      await eventually(async () => (await metaField(store.client, `{sess:${sid}}:m`, 't')) === '1');
      expect(await store.client.get(`sess:${sid}`)).toBeNull();
    }
  });

  it('serves many users at once, each request on either region', async () => {
    const users = Array.from({ length: 20 }, () => new Browser(balancer.port));
    await Promise.all(users.map((u, i) => u.request('POST', '/login', { user: `u${i}` })));
    await Promise.all(users.map((u, i) => u.request('POST', '/cart', { item: `item-${i}` })));
    const reads = await Promise.all(users.map((u) => u.request('GET', '/me')));
    reads.forEach((read, i) => {
      expect(read.status).toBe(200);
      expect(read.json).toEqual({ user: `u${i}`, cart: [`item-${i}`] });
    });
  });
});

describe.skipIf(!hasRedis)('a cut link between regions', () => {
  let hkRedis: PrivateRedis;
  let krRedis: PrivateRedis;
  let proxy: TcpProxy;
  let hkStore: GeoSessionStore;
  let krStore: GeoSessionStore;
  let transports: ReplicationTransport[];
  let hkViaLink: Redis;

  beforeAll(async () => {
    [hkRedis, krRedis] = await Promise.all([startRedis(), startRedis()]);
    // kr reaches hk's Redis only through the proxy: that is the inter-region link.
    proxy = await startTcpProxy(hkRedis.port);
    const hkLocal = hkRedis.client();
    const krLocal = krRedis.client();
    hkViaLink = hkRedis.client({ port: proxy.port, maxRetriesPerRequest: 1 });
    // Each region's process has its own transport: hk's reads kr's outbox directly (not cut), kr's
    // reads hk's outbox through the proxy.
    const hkTransport = createRedisStreamsTransport({ regions: { hk: hkLocal, kr: krLocal }, blockMs: 200 });
    const krTransport = createRedisStreamsTransport({
      regions: { hk: hkViaLink, kr: krLocal },
      blockMs: 200,
      watchdogMs: 1000,
    });
    transports = [hkTransport, krTransport];
    hkStore = new GeoSessionStore({ region: 'hk', client: hkLocal, transport: hkTransport, sealer: 'none' });
    krStore = new GeoSessionStore({ region: 'kr', client: krLocal, transport: krTransport, sealer: 'none' });
    for (const t of transports) t.on('error', () => {});
    await Promise.all([hkStore.ready(), krStore.ready()]);
  });

  afterAll(async () => {
    await Promise.all([hkStore?.close(), krStore?.close()]);
    await Promise.all((transports ?? []).map((t) => t.close()));
    await proxy?.close();
    await Promise.all([hkRedis?.stop(), krRedis?.stop()]);
  });

  it('delivers the writes made while the link was down once it heals', async () => {
    const session = (n: number) => ({
      cookie: { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000) },
      n,
    });
    const before = hkStore.genid();
    await hkStore.set(before, session(0));
    await eventually(async () => (await krStore.get(before)) !== null);

    proxy.cut();
    const during: string[] = [];
    for (let i = 0; i < 50; i++) {
      const sid = hkStore.genid();
      during.push(sid);
      await hkStore.set(sid, session(i));
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 100));
    }
    await hkStore.destroy(before);
    // Nothing crosses a cut link.
    await new Promise((r) => setTimeout(r, 500));
    expect(await krStore.client.get(`sess:${during[49]}`)).toBeNull();
    expect(await krStore.get(before)).not.toBeNull();

    proxy.heal();
    await eventually(
      async () => (await krStore.client.exists(...during.map((sid) => `sess:${sid}`))) === 50,
      30_000,
    );
    await eventually(async () => (await krStore.get(before)) === null, 30_000);
    for (const [i, sid] of during.entries()) expect(await krStore.get(sid)).toMatchObject({ n: i });
    expect(krStore.replicationStats()?.received.applied).toBeGreaterThanOrEqual(52);
  });
});
