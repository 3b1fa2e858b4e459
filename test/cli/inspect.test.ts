import { sign } from 'cookie-signature';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeoSessionStore } from '../../src/index.js';
import { createRedisStreamsTransport } from '../../src/transports/redis-streams.js';
import { eventually, type PrivateRedis, startRedis } from '../helpers/servers.js';
import { regionArgs, runCli } from './run-cli.js';

// `geosession inspect` against two private regions replicating over Redis Streams.
describe('geosession inspect', { timeout: 120_000 }, () => {
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  const prefix = 'insp:';
  const stores: GeoSessionStore[] = [];
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    hk = await startRedis();
    kr = await startRedis();
    for (const name of ['hk', 'kr'] as const) {
      const clients = { hk: hk.client(), kr: kr.client() };
      const transport = createRedisStreamsTransport({ regions: clients });
      const store = new GeoSessionStore({
        region: name,
        client: clients[name],
        prefix,
        transport,
        sealer: 'none',
      });
      store.on('error', () => {});
      await store.ready();
      stores.push(store);
      closers.push(async () => {
        await store.close();
        await transport.close();
      });
    }
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await hk?.stop();
    await kr?.stop();
  });

  const cli = (args: string[]) => runCli([...regionArgs({ hk, kr }), '--prefix', prefix, ...args]);

  it('shows the value, version and expiry in both regions, the same once replicated', async () => {
    const [a, b] = stores as [GeoSessionStore, GeoSessionStore];
    const sid = a.genid();
    await a.set(sid, { cookie: { originalMaxAge: 600_000 }, user: 'ada' } as never);
    await eventually(async () => (await b.get(sid)) !== null);
    const { code, stdout, stderr } = await cli(['--json', 'inspect', sid]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.found).toBe(true);
    expect(report.sid).toBe(`hk.${sid.slice(3, 7)}…`);
    expect(report.regions.map((r: { region: string }) => r.region)).toEqual(['hk', 'kr']);
    const [inHk, inKr] = report.regions;
    for (const view of [inHk, inKr]) {
      expect(view.state).toBe('live');
      expect(view.value.user).toBe('ada');
      expect(view.meta.tombstone).toBe(false);
      expect(view.meta.version).toMatch(/\.hk$/);
      expect(view.meta.expiresAt).toBeGreaterThan(Date.now());
    }
    expect(inKr.meta.version).toBe(inHk.meta.version);
    expect(inKr.meta.expiresAt).toBe(inHk.meta.expiresAt);

    const text = await cli(['inspect', sid]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/state +live +live/);
    expect(text.stdout).toMatch(/value \(hk, kr\):/);
    expect(text.stdout).toContain('"user": "ada"');
  });

  it('shows a tombstone after a logout', async () => {
    const [a, b] = stores as [GeoSessionStore, GeoSessionStore];
    const sid = b.genid();
    await b.set(sid, { cookie: { originalMaxAge: 600_000 } } as never);
    await b.destroy(sid);
    await eventually(async () => {
      const { stdout } = await cli(['--json', 'inspect', sid]);
      return JSON.parse(stdout).regions.every((r: { state: string }) => r.state === 'tombstone');
    }, 20_000);
    expect(await a.get(sid)).toBeNull();
    const text = await cli(['inspect', sid]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/state +tombstone +tombstone/);
  });

  it('unsigns a signed cookie with --secret (URL-encoded or not, whole pair or value)', async () => {
    const [a] = stores as [GeoSessionStore];
    const sid = a.genid();
    await a.set(sid, { cookie: { originalMaxAge: 600_000 }, n: 7 } as never);
    const cookie = `s:${sign(sid, 'new-secret')}`;
    for (const form of [cookie, encodeURIComponent(cookie), `connect.sid=${encodeURIComponent(cookie)}`]) {
      const { code, stdout } = await cli([
        '--json',
        '--show-ids',
        'inspect',
        form,
        '--secret',
        'old',
        '--secret',
        'new-secret',
      ]);
      expect(code, form).toBe(0);
      const report = JSON.parse(stdout);
      expect(report.sid).toBe(sid);
      expect(report.regions[0].value.n).toBe(7);
    }
    const fastify = await cli([
      '--json',
      '--show-ids',
      'inspect',
      sign(sid, 'k'),
      '--secret',
      'k',
      '--cookie-format',
      'fastify',
    ]);
    expect(fastify.code).toBe(0);
    expect(JSON.parse(fastify.stdout).sid).toBe(sid);

    const wrong = await cli(['inspect', cookie, '--secret', 'nope']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/does not verify/);
    const noSecret = await cli(['inspect', cookie]);
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toMatch(/give --secret/);
  });

  it('exits 1 when no region holds the session, 2 for what cannot be an id', async () => {
    const missing = await cli(['--json', 'inspect', 'hk.nothing-here-at-all-000']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ found: false });
    expect(missing.stderr).toMatch(/is in no region/);
    const bad = await cli(['inspect', 'a{b}']);
    expect(bad.code).toBe(2);
  });
});
