/**
 * geosession two-region demo: regions "hk" and "kr", one express app each, behind a plain round-robin
 * load balancer. A scripted user logs in, browses, fills a cart and logs out; every request prints the
 * region that served it, and every write prints how long it took to arrive in the other region's Redis.
 * A last scene pushes to a user's sockets in both regions and logs her out everywhere (push-scene.ts).
 *
 *   npm run demo                                 # embedded: a private redis-server per region, or in-memory
 *   npm run demo -- --hk redis://127.0.0.1:6379/1 --kr redis://127.0.0.1:6379/2   # your Redis servers
 *   npm run demo -- --pause 1000                 # one step a second
 *
 * (The REDIS_HK_URL / REDIS_KR_URL environment variables work too; backends.ts has the details.) The demo
 * keeps its sessions under the key prefix `demo:` and removes every key it wrote when it ends, also on
 * Ctrl-C.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { GeoSessionStore } from '../../src/index.js';
import { createPasetoSealer, generatePasetoKey } from '../../src/paseto.js';
import { userOfSession } from '../push-gateway/integrations.js';
import { startRegionApp } from './app.js';
import { openBackends } from './backends.js';
import { startBalancer } from './balancer.js';
import { counterAgrees, LagMeter, type Meta, readMeta } from './lag.js';
import { pushScene } from './push-scene.js';
import { Interrupted, Interruption, Teardown } from './teardown.js';

const PREFIX = 'demo:';
const LAG_TIMEOUT_MS = 2000;

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const redisUrl = (region: string) => option(region) ?? process.env[`REDIS_${region.toUpperCase()}_URL`];

interface Region {
  name: string;
  client: Redis;
  store: GeoSessionStore;
}

/** Session id inside express-session's signed cookie value `s:<sid>.<signature>`. */
function sidOf(cookie: string | undefined): string | undefined {
  const value = cookie?.match(/connect\.sid=([^;]+)/)?.[1];
  if (!value) return undefined;
  const decoded = decodeURIComponent(value);
  return decoded.slice(2, decoded.lastIndexOf('.'));
}

async function run(teardown: Teardown, interruption: Interruption): Promise<boolean> {
  const pauseMs = Number(option('pause') ?? 0);
  if (!(pauseMs >= 0)) throw new Error(`--pause takes a number of milliseconds, not "${option('pause')}"`);
  const backends = await openBackends({ hk: redisUrl('hk'), kr: redisUrl('kr') }, PREFIX, teardown);
  const meter = new LagMeter(PREFIX);
  // Replication is sealed (PASETO v4.local): both regions hold the same key, made here for this run; a
  // deployment makes one once with generatePasetoKey() and gives it to every region.
  const sealer = createPasetoSealer({
    purpose: 'local',
    deployment: 'demo',
    keys: [generatePasetoKey().key],
  });
  const make = (name: string, client: Redis, other: Redis, otherName: string): Region => {
    const store = new GeoSessionStore({
      region: name,
      client,
      prefix: PREFIX,
      transport: backends.transport,
      sealer,
      // Read-through: a session born in the other region is read from there if it has not arrived yet.
      remotes: { [otherName]: other },
      // Each user's sessions, for the push scene's logout everywhere (the apps keep it in session.user).
      userId: userOfSession,
    });
    store.on('error', (error) => console.error(`[${name}] replication error:`, error.message));
    teardown.add(`closing the ${name} store`, () => store.close());
    meter.watch(store);
    return { name, client, store };
  };
  const regions = [make('hk', backends.hk, backends.kr, 'kr'), make('kr', backends.kr, backends.hk, 'hk')];
  await Promise.all(regions.map((r) => r.store.ready()));
  const apps = await Promise.all(regions.map((r) => startRegionApp(r.store)));
  for (const app of apps) teardown.add('stopping a region app', () => app.close());
  const balancer = await startBalancer(apps.map((a) => a.port));
  teardown.add('stopping the balancer', () => balancer.close());
  interruption.check();
  console.log(`geosession demo: ${backends.description}, sealed with PASETO v4.local`);
  console.log(`regions hk and kr behind a round-robin balancer on http://127.0.0.1:${balancer.port}\n`);

  let cookie: string | undefined;
  let writes = 0;
  let measured = 0;
  let failures = 0;
  const disagreements: string[] = [];
  // How long the event loop stood still, at most: a busy machine's share of the counters' error.
  const loopStall = monitorEventLoopDelay({ resolution: 10 });
  loopStall.enable();
  const byName = (name: string) => regions.find((r) => r.name === name) as Region;
  const step = async (label: string, method: string, path: string, body?: unknown, write = false) => {
    await interruption.sleep(pauseMs);
    const sidBefore = sidOf(cookie);
    const before = new Map<string, Meta | undefined>();
    if (write && sidBefore) {
      for (const r of regions) before.set(r.name, await readMeta(r.client, PREFIX, sidBefore));
    }
    const since = performance.now();
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
      writes++;
      const from = byName(served);
      const to = regions.find((r) => r.name !== served) as Region;
      const result = await meter.measure({
        from,
        to,
        sid,
        since,
        before: sid === sidBefore ? before.get(served) : undefined,
        timeoutMs: LAG_TIMEOUT_MS,
      });
      if ('ms' in result) {
        measured++;
        line += `   → in ${to.name} ${result.ms.toFixed(1)} ms after the write`;
        if (!counterAgrees(result, loopStall.max / 1e6)) {
          const counter = result.counterMs === undefined ? 'nothing' : `${result.counterMs} ms`;
          disagreements.push(
            `${to.name}'s lag counter said ${counter} for "${label}", measured at ${result.ms.toFixed(1)} ms ` +
              `after the write completed and ${result.sentMs.toFixed(1)} ms after it was sent`,
          );
        }
      } else {
        if (result.failure) failures++;
        line += `   (${result.problem})`;
      }
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
  let silent = 0;
  for (const r of regions) {
    const stats = r.store.replicationStats();
    const applied = stats?.received.applied ?? 0;
    if (applied === 0) silent++;
    const other = regions.find((o) => o !== r)?.name;
    const lag = Object.entries(stats?.lagMs ?? {}).map(([from, ms]) => `, last lag from ${from} ${ms} ms`);
    console.log(`  ${r.name}: applied ${applied} events from ${other}${lag.join('')}`);
  }
  console.log(`lag measured for ${measured} of ${writes} writes`);
  loopStall.disable();
  if (disagreements.length === 0) {
    console.log('the lag counters agree with the lag measured for every write');
  } else {
    for (const text of disagreements) console.log(`UNEXPECTED: ${text}`);
  }
  const final = after.every((status) => status === 401);
  console.log(
    final ? '\nlogout was final in both regions.' : '\nUNEXPECTED: a region still served the session.',
  );
  if (silent > 0) console.log('UNEXPECTED: a region applied nothing from the other.');
  await interruption.sleep(pauseMs);
  const pushed = await pushScene(byName('hk'), byName('kr'), backends.transport, sealer, teardown);
  return (
    pushed && final && silent === 0 && failures === 0 && measured === writes && disagreements.length === 0
  );
}

async function main(): Promise<void> {
  const teardown = new Teardown();
  const interruption = new Interruption();
  try {
    process.exitCode = (await run(teardown, interruption)) ? 0 : 1;
  } catch (error) {
    if (!(error instanceof Interrupted)) {
      console.error('demo failed:', error instanceof Error ? error.message : error);
      process.exitCode = 1;
    }
  } finally {
    await teardown.run();
    if (interruption.signal) {
      console.log('cleaned up.');
      process.exitCode = interruption.exitCode;
    }
    interruption.dispose();
  }
}

await main();
