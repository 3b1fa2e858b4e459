/**
 * Property-based tests (fast-check) of the conflict rules of DESIGN.md section 3, on real Redis: the
 * model of test/helpers/replication-model.ts with 2 or 3 regions, each a GeoSessionStore on its own
 * database of the machine's Redis (db 1..3, same unique prefix, so no region ever sees another's keys).
 * Each region's changes are read from its outbox stream (XRANGE) and delivered by the model. The same
 * model runs on two Redis Clusters with sharded outboxes in test/cluster/properties-on-cluster.test.ts.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { GeoSessionStore } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { Applier } from '../../src/replication/applier.js';
import { changeOfEntry } from '../helpers/meta.js';
import { ManualTransport, type ModelRegion, runScenario, scenarioArb } from '../helpers/replication-model.js';
import { hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const REGIONS = ['hk', 'kr', 'us'] as const;

describe.skipIf(!hasRedis)('replication invariants (property-based, real Redis)', () => {
  const base = uniquePrefix('repl-props');
  const prefix = `${base}g:`;
  const keys = createKeySpace(prefix);
  const clients = REGIONS.map((_, i) => sharedRedis({ db: i + 1, lazyConnect: true }));
  const errors: Error[] = [];
  const applierOf = (client: Redis, k: typeof keys) =>
    new Applier({ client, keys: k, horizonMs: 600_000, maxSkewMs: 60_000, timeoutMs: 5000 });
  /** Last outbox entry read, per region (streams outlive runs; each run reads only what is new). */
  const cursors = REGIONS.map(() => '0-0');
  const regions: ModelRegion[] = REGIONS.map((name, i) => {
    const client = clients[i] as Redis;
    const store = new GeoSessionStore({
      region: name,
      client,
      prefix,
      tombstoneTtl: 600,
      replicateTouchAfter: 0,
      transport: new ManualTransport(),
      sealer: 'none',
    });
    store.on('error', (e: Error) => errors.push(e));
    return {
      name,
      store,
      client,
      keys,
      applier: applierOf(client, keys),
      async newEvents() {
        const entries = await client.xrange(keys.internal('outbox', name), `(${cursors[i]}`, '+');
        const last = entries.at(-1);
        if (last) cursors[i] = last[0];
        return entries.map(([id, fields]) => changeOfEntry(name, id, fields));
      },
    };
  });
  const observerClient = clients[0] as Redis;
  const observers = [createKeySpace(`${base}o1:`), createKeySpace(`${base}o2:`)].map((k) => ({
    client: observerClient,
    keys: k,
    applier: applierOf(observerClient, k),
  }));
  let run = 0;

  afterAll(async () => {
    await Promise.all(regions.map((r) => r.store.close()));
    for (const c of clients) {
      const found = [...(await c.keys(`${base}*`)), ...(await c.keys(`{${base}*`))];
      if (found.length > 0) await c.del(...found);
      c.disconnect();
    }
  });

  it('converge, keep logouts final, let the last writer win, let expiry travel with the version, and are idempotent', async () => {
    await Promise.all(clients.map((c) => (c.status === 'wait' ? c.connect() : undefined)));
    await fc.assert(
      fc.asyncProperty(scenarioArb(), fc.gen(), async (scenario, g) => {
        run++;
        const sids = Array.from({ length: scenario.sids }, (_, i) => `r${run}-s${i}`);
        await runScenario({ regions, observers }, scenario, g, sids);
      }),
      { numRuns: 100 },
    );
    expect(errors).toEqual([]);
  }, 120_000);
});
