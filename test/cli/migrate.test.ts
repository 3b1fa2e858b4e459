import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisStore } from 'connect-redis-8';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATE_STATE_FIELD, migrateKeyspace } from '../../src/admin/migrate.js';
import { GeoSessionStore } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { parseMeta } from '../../src/redis/meta.js';
import type { SessionData } from '../../src/types.js';
import { CookieJar } from '../helpers/http.js';
import { type PrivateRedis, startRedis } from '../helpers/servers.js';
import { startExpressApp } from '../helpers/session-apps.js';
import { regionArgs, runCli } from './run-cli.js';

// `geosession migrate` on keyspaces written by the real connect-redis 8 through express-session.
describe('geosession migrate', { timeout: 120_000 }, () => {
  let hk: PrivateRedis;
  beforeAll(async () => {
    hk = await startRedis();
  });
  afterAll(async () => {
    await hk?.stop();
  });

  const secret = 'migrate-secret';

  it('gives every session metadata without touching values or expiries, and every user stays logged in', async () => {
    const prefix = 'app1:';
    const redis = hk.client();
    const keys = createKeySpace(prefix);
    // Before: the app on connect-redis 8.
    const legacy = new RedisStore({ client: redis, prefix });
    const oldApp = await startExpressApp({ store: legacy as never, secret });
    const users = Array.from({ length: 25 }, (_, i) => `user${i}`);
    const jars = new Map<string, CookieJar>();
    const sids = new Map<string, string>();
    for (const user of users) {
      const jar = new CookieJar();
      sids.set(user, await oldApp.login(jar, user, `n-${user}`));
      jars.set(user, jar);
    }
    await oldApp.close();
    // A session without maxAge (connect-redis' own ttl), a value that is no session, a non-string key.
    await legacy.set('nomaxage', { cookie: { originalMaxAge: null }, user: 'plain' } as never);
    await redis.set(`${prefix}junk`, 'not json', 'PX', 600_000);
    await redis.hset(`${prefix}ahash`, 'a', '1');
    const allSids = [...sids.values(), 'nomaxage'];
    const before = new Map<string, { value: string | null; expiry: number }>();
    for (const sid of allSids) {
      before.set(sid, {
        value: await redis.get(keys.session(sid)),
        expiry: await redis.pexpiretime(keys.session(sid)),
      });
    }
    const cli = (args: string[]) =>
      runCli([...regionArgs({ hk }), '--prefix', prefix, '--json', 'migrate', ...args]);

    // Dry run: counts, writes nothing.
    const dry = await cli(['--dry-run']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).regions[0]).toMatchObject({
      region: 'hk',
      dryRun: true,
      migrated: 26,
      unreadable: 1,
    });
    for (const sid of allSids) expect(await redis.exists(keys.meta(sid))).toBe(0);

    const run = await cli([]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).regions[0]).toMatchObject({
      region: 'hk',
      complete: true,
      resumed: false,
      scanned: 27,
      migrated: 26,
      alreadyMigrated: 0,
      unreadable: 1,
    });
    for (const sid of allSids) {
      const was = before.get(sid);
      expect(await redis.get(keys.session(sid))).toBe(was?.value);
      expect(await redis.pexpiretime(keys.session(sid))).toBe(was?.expiry);
      const meta = parseMeta(await redis.get(keys.meta(sid)));
      expect(meta?.tombstone).toBe(false);
      expect(meta?.version).toMatch(/^\d{15}\.\d{4}\.hk$/);
      expect(meta?.expiresAt).toBe(was?.expiry);
      expect(meta?.writtenExpiry).toBe(was?.expiry);
      expect(meta?.fingerprint).toBeTruthy();
      // express-session computes originalMaxAge from Date.now() twice, so it is 60000 or 59999:
      // the rule is whatever the stored cookie says.
      const cookieMaxAge = JSON.parse(was?.value ?? '{}').cookie?.originalMaxAge;
      expect(meta?.lifetimeMs).toBe(sid === 'nomaxage' ? 86_400_000 : cookieMaxAge);
      if (sid !== 'nomaxage') expect(cookieMaxAge).toBeGreaterThanOrEqual(59_990);
    }
    expect(await redis.exists(`{${prefix}|state}:hk`)).toBe(0); // no cursor left behind

    // Again: nothing to do.
    const again = await cli([]);
    expect(JSON.parse(again.stdout).regions[0]).toMatchObject({ migrated: 0, alreadyMigrated: 26 });

    // After: the app on geosession, same Redis, prefix and secret. Every old cookie still logs in.
    const store = new GeoSessionStore({ region: 'hk', client: redis, prefix });
    const newApp = await startExpressApp({ store, secret });
    try {
      for (const user of users) {
        const me = await newApp.me(jars.get(user)?.header());
        expect(me).toEqual({ sid: sids.get(user), user });
      }
      expect((await store.get('nomaxage'))?.user).toBe('plain');
      // The fingerprint is the store's own: saving the same session again changes no version.
      const sid = sids.get('user0') as string;
      const versionBefore = parseMeta(await redis.get(keys.meta(sid)))?.version;
      await store.set(sid, (await store.get(sid)) as SessionData);
      expect(parseMeta(await redis.get(keys.meta(sid)))?.version).toBe(versionBefore);
    } finally {
      await newApp.close();
      await store.close();
    }
  });

  it('resumes an interrupted run from the cursor kept in Redis; --restart starts over', async () => {
    const prefix = 'app2:';
    const redis = hk.client();
    const legacy = new RedisStore({ client: redis, prefix });
    for (let i = 0; i < 300; i++) {
      await legacy.set(`s${i}`, {
        cookie: { originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000) },
        i,
      } as never);
    }
    // Interrupted after its first batch.
    const abort = new AbortController();
    const first = await migrateKeyspace({
      client: redis,
      region: 'hk',
      prefix,
      scanCount: 20,
      signal: abort.signal,
      onProgress: () => abort.abort(),
    });
    expect(first.complete).toBe(false);
    expect(first.migrated).toBeGreaterThan(0);
    expect(first.migrated).toBeLessThan(300);
    expect(await redis.hget(`{${prefix}|state}:hk`, MIGRATE_STATE_FIELD)).toMatch(/"cursor":"\d+"/);

    const resumed = await runCli([
      ...regionArgs({ hk }),
      '--prefix',
      prefix,
      '--json',
      'migrate',
      '--batch',
      '20',
    ]);
    expect(resumed.code).toBe(0);
    const report = JSON.parse(resumed.stdout).regions[0];
    expect(report).toMatchObject({ resumed: true, complete: true, migrated: 300, alreadyMigrated: 0 });
    expect(await redis.hget(`{${prefix}|state}:hk`, MIGRATE_STATE_FIELD)).toBeNull();

    const restarted = await runCli([...regionArgs({ hk }), '--prefix', prefix, 'migrate', '--restart']);
    expect(restarted.code).toBe(0);
    expect(restarted.stdout).toMatch(/hk: migrated 0 of 300 sessions, 300 had metadata already/);
  });

  it('--outbox-shards (or the config file) moves every session into its shard; every user stays logged in', async () => {
    const prefix = 'app3:';
    const SHARDS = 4;
    const redis = hk.client();
    const flat = createKeySpace(prefix);
    const sharded = createKeySpace(prefix, '', SHARDS);
    const legacy = new RedisStore({ client: redis, prefix });
    const oldApp = await startExpressApp({ store: legacy as never, secret });
    const users = Array.from({ length: 12 }, (_, i) => `user${i}`);
    const jars = new Map<string, CookieJar>();
    const sids = new Map<string, string>();
    for (const user of users) {
      const jar = new CookieJar();
      sids.set(user, await oldApp.login(jar, user, `n-${user}`));
      jars.set(user, jar);
    }
    await oldApp.close();
    const expiries = new Map<string, number>();
    for (const sid of sids.values()) expiries.set(sid, await redis.pexpiretime(flat.session(sid)));
    // A session the sharded layout holds already, with an old copy: skipped, the copy dropped.
    const store = new GeoSessionStore({ region: 'hk', client: redis, prefix, outboxShards: SHARDS });
    await store.set('both', { cookie: { originalMaxAge: 600_000 }, user: 'new' } as never);
    await legacy.set('both', { cookie: { originalMaxAge: 600_000 }, user: 'old' } as never);

    // The config file's outboxShards, here for a dry run: counts (in the sharded layout), moves nothing.
    const dir = mkdtempSync(join(tmpdir(), 'geosession-migrate-'));
    const file = join(dir, 'geosession.json');
    writeFileSync(file, JSON.stringify({ prefix, outboxShards: SHARDS, regions: { hk: hk.url } }));
    const dry = await runCli(['--config', file, '--json', 'migrate', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).regions[0]).toMatchObject({
      dryRun: true,
      migrated: 12,
      alreadyMigrated: 1,
    });
    for (const sid of sids.values()) expect(await redis.exists(sharded.session(sid))).toBe(0);

    const args = [...regionArgs({ hk }), '--prefix', prefix, '--outbox-shards', String(SHARDS)];
    const run = await runCli([...args, '--json', 'migrate']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).regions[0]).toMatchObject({
      complete: true,
      scanned: 13,
      migrated: 12,
      alreadyMigrated: 1,
    });
    expect(await redis.exists(flat.session('both'))).toBe(0);
    for (const sid of sids.values()) {
      expect(await redis.exists(flat.session(sid))).toBe(0);
      expect(await redis.pexpiretime(sharded.session(sid))).toBe(expiries.get(sid));
      expect(parseMeta(await redis.get(sharded.meta(sid)))?.version).toMatch(/\.hk$/);
    }
    const again = await runCli([...args, 'migrate']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/hk: migrated 0 of 0 sessions/);

    const newApp = await startExpressApp({ store, secret });
    try {
      expect((await store.get('both'))?.user).toBe('new');
      for (const user of users) {
        expect(await newApp.me(jars.get(user)?.header())).toEqual({ sid: sids.get(user), user });
      }
    } finally {
      await newApp.close();
      await store.close();
    }
  });

  it('refuses bad options with exit 2 and an unknown region by name', async () => {
    const bad = await runCli([...regionArgs({ hk }), 'migrate', '--ttl', '0']);
    expect(bad.code).toBe(2);
    const unknown = await runCli([...regionArgs({ hk }), 'migrate', 'kr']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown region kr/);
  });
});
