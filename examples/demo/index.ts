/**
 * geosession two-region demo: regions "hk" and "kr", one express app each, behind a plain round-robin
 * load balancer. A scripted user logs in, browses, fills a cart and logs out; every request prints the
 * region that served it, and every write prints how long it took to reach the other region.
 *
 *   npm run demo                                                     # embedded in-memory Redis, no server
 *   npm run demo -- --hk redis://127.0.0.1:6379/1 --kr redis://127.0.0.1:6379/2   # real Redis + Streams
 *
 * (The REDIS_HK_URL / REDIS_KR_URL environment variables work too.)
 */
import { Redis } from 'ioredis';
import { createMemoryTransport, GeoSessionStore, type ReplicationTransport } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/redis-streams.js';
import { startRegionApp } from './app.js';
import { startBalancer } from './balancer.js';
import { createEmbeddedRedis } from './embedded-redis.js';

const PREFIX = 'demo:';

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : process.env[`REDIS_${name.toUpperCase()}_URL`];
}

interface Region {
  name: string;
  client: Redis;
  store: GeoSessionStore;
}

async function setUp(): Promise<{
  regions: [Region, Region];
  transport: ReplicationTransport;
  mode: string;
}> {
  const hkUrl = argument('hk');
  const krUrl = argument('kr');
  let hk: Redis;
  let kr: Redis;
  let transport: ReplicationTransport;
  let mode: string;
  if (hkUrl && krUrl) {
    hk = new Redis(hkUrl, { maxRetriesPerRequest: 1 });
    kr = new Redis(krUrl, { maxRetriesPerRequest: 1 });
    await Promise.all([hk.ping(), kr.ping()]);
    transport = createRedisStreamsTransport({ regions: { hk, kr } });
    mode = `real Redis (hk ${hkUrl}, kr ${krUrl}) with the Redis Streams transport`;
  } else {
    hk = createEmbeddedRedis();
    kr = createEmbeddedRedis();
    transport = createMemoryTransport({ regions: ['hk', 'kr'] });
    mode = 'embedded in-memory Redis with the memory transport (pass --hk/--kr Redis URLs for real Redis)';
  }
  const make = (name: string, client: Redis, other: Redis, otherName: string) => {
    const store = new GeoSessionStore({
      region: name,
      client,
      prefix: PREFIX,
      transport,
      // Read-through: a session born in the other region is read from there if it has not arrived yet.
      remotes: { [otherName]: other },
    });
    store.on('error', (error) => console.error(`[${name}] replication error:`, error.message));
    return { name, client, store };
  };
  const regions: [Region, Region] = [make('hk', hk, kr, 'kr'), make('kr', kr, hk, 'hk')];
  await Promise.all(regions.map((r) => r.store.ready()));
  return { regions, transport, mode };
}

/** Session id inside express-session's signed cookie value `s:<sid>.<signature>`. */
function sidOf(cookie: string | undefined): string | undefined {
  const value = cookie?.match(/connect\.sid=([^;]+)/)?.[1];
  if (!value) return undefined;
  const decoded = decodeURIComponent(value);
  return decoded.slice(2, decoded.lastIndexOf('.'));
}

/** How long until `to` holds exactly what `from` holds for the session (ms), or -1 after 2 s. */
async function replicationLag(from: Region, to: Region, sid: string): Promise<number> {
  const start = performance.now();
  const want = await from.client.get(PREFIX + sid);
  while (performance.now() - start < 2000) {
    if ((await to.client.get(PREFIX + sid)) === want) return performance.now() - start;
    await new Promise((r) => setImmediate(r));
  }
  return -1;
}

async function main(): Promise<void> {
  const { regions, transport, mode } = await setUp();
  const apps = await Promise.all(regions.map((r) => startRegionApp(r.store)));
  const balancer = await startBalancer(apps.map((a) => a.port));
  console.log(`geosession demo: ${mode}`);
  console.log(`regions hk and kr behind a round-robin balancer on http://127.0.0.1:${balancer.port}\n`);

  let cookie: string | undefined;
  const byName = (name: string) => regions.find((r) => r.name === name) as Region;
  const step = async (label: string, method: string, path: string, body?: unknown, write = false) => {
    const res = await fetch(`http://127.0.0.1:${balancer.port}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) cookie = setCookie.split(';')[0];
    const served = res.headers.get('x-region') ?? '?';
    const text = await res.text();
    let line = `${label.padEnd(22)} served by ${served}  ${res.status}  ${text}`;
    const sid = sidOf(cookie);
    if (write && sid) {
      const other = served === 'hk' ? byName('kr') : byName('hk');
      const lag = await replicationLag(byName(served), other, sid);
      line +=
        lag < 0
          ? '   (not replicated within 2 s!)'
          : `   → in ${other.name} ${lag < 0.05 ? 'before the response arrived' : `${lag.toFixed(1)} ms after the response`}`;
    }
    console.log(line);
    return res.status;
  };

  await step('log in as alice', 'POST', '/login', { user: 'alice' }, true);
  for (let i = 1; i <= 3; i++) await step(`browse ${i}`, 'GET', '/me');
  for (const item of ['tea', 'dumplings', 'kimchi'])
    await step(`add ${item} to cart`, 'POST', '/cart', { item }, true);
  await step('view cart', 'GET', '/me');
  await step('log out', 'POST', '/logout', undefined, true);
  const after = [await step('after logout', 'GET', '/me'), await step('after logout', 'GET', '/me')];

  console.log('\nreplication counters:');
  for (const r of regions) {
    const stats = r.store.replicationStats();
    const lag = Object.entries(stats?.lagMs ?? {}).map(([from, ms]) => `, last lag from ${from} ${ms} ms`);
    console.log(
      `  ${r.name}: applied ${stats?.received.applied} events from the other region${lag.join('')}`,
    );
  }
  const ok = after.every((status) => status === 401);
  console.log(
    ok ? '\nlogout was final in both regions.' : '\nUNEXPECTED: a region still served the session.',
  );

  await balancer.close();
  await Promise.all(apps.map((a) => a.close()));
  for (const r of regions) {
    await r.store.clear();
    await r.store.close();
  }
  await transport.close();
  for (const r of regions) r.client.disconnect();
  process.exitCode = ok ? 0 : 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
