/**
 * migrateKeyspace on a client with an ioredis `keyPrefix`: SCAN's MATCH is not prefixed by ioredis and
 * its replies carry the prefix, so the scan must add it to the pattern and take it off the names, as the
 * store's own scans do (src/session/bulk.ts). Both layouts: in place, and moved into the shards.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateKeyspace } from '../../src/admin/migrate.js';
import { GeoSessionStore } from '../../src/session/store.js';
import { hasRedis, type PrivateRedis, startRedis } from '../helpers/servers.js';

function legacy(user: string): string {
  return JSON.stringify({
    cookie: { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000).toISOString() },
    user,
  });
}

describe.skipIf(!hasRedis)('migrateKeyspace with an ioredis keyPrefix', { timeout: 60_000 }, () => {
  let server: PrivateRedis;
  let plain: Redis;
  let prefixed: Redis;
  beforeAll(async () => {
    server = await startRedis();
    plain = server.client();
    prefixed = server.client({ keyPrefix: 'app:' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  for (const outboxShards of [undefined, 4]) {
    it(`finds and migrates connect-redis's sessions (${outboxShards ? 'into 4 shards' : 'in place'})`, async () => {
      const prefix = outboxShards ? 'kp4:' : 'kp1:';
      const sids = ['a1', 'b2', 'c3', 'd4', 'e5', 'f6'];
      // connect-redis on the same prefixed client: the keys are `app:<prefix><sid>`.
      for (const sid of sids) await prefixed.set(`${prefix}${sid}`, legacy(sid), 'PX', 600_000);
      expect(await plain.exists(`app:${prefix}a1`)).toBe(1);

      const report = await migrateKeyspace({ client: prefixed, region: 'hk', prefix, outboxShards });
      expect(report.migrated).toBe(sids.length);
      expect(report.complete).toBe(true);
      // Nothing is written outside the client's keyPrefix.
      for (const key of await plain.keys('*')) {
        if (key.includes(prefix)) expect(key.startsWith('app:')).toBe(true);
      }

      const store = new GeoSessionStore({ region: 'hk', client: prefixed, prefix, outboxShards });
      await store.ready();
      for (const sid of sids) expect(await store.get(sid)).toMatchObject({ user: sid });
      // Migrated: an unchanged save is a touch of the migrated version, not a first version.
      expect(await store.length()).toBe(sids.length);
      const again = await migrateKeyspace({ client: prefixed, region: 'hk', prefix, outboxShards });
      expect(again.migrated).toBe(0);
      await store.close();
    });
  }
});
