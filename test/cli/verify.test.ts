import { describe, expect, it } from 'vitest';
import { maskSessionId } from '../../src/admin/mask-id.js';
import { generateSessionId } from '../../src/index.js';
import { DAY_MS, metaOf, plantDifferences, replicatedTraffic, session } from '../helpers/diverged.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';
import { regionArgs, runCli } from './run-cli.js';

// `geosession verify` and `geosession repair` as real child processes against two private regions
// that replicated the same traffic, then had one difference of each kind planted.
describe.skipIf(!hasRedis)('geosession verify and repair', () => {
  const servers = usePrivateRedisPair();

  it('verify exits 0 on agreeing regions, lists every planted difference with exit 1, repair fixes them', async () => {
    const prefix = uniquePrefix('cli-verify');
    const options = { readers: 1, blockMs: 100 };
    const hk = servers.streamsRegion('hk', prefix, options, {});
    const kr = servers.streamsRegion('kr', prefix, options, {});
    const stores = { hk: hk.store, kr: kr.store };
    const clients = { hk: servers.hk.client(), kr: servers.kr.client() };
    const sids = await replicatedTraffic(stores, clients, prefix, 12);
    const drift = generateSessionId('kr');
    await stores.kr.set(drift, session({ drift: true }, DAY_MS / 2, DAY_MS));
    await eventually(async () => (await metaOf(clients.hk, prefix, drift))?.version !== undefined);
    await Promise.all([stores.hk.close(), stores.kr.close()]);
    const cli = (...args: string[]) =>
      runCli([...regionArgs({ hk: servers.hk, kr: servers.kr }), '--prefix', prefix, ...args]);

    const clean = await cli('verify');
    expect(clean.stdout).toMatch(
      /^verify hk, kr: 0 difference\(s\) \(digests: \d+ windows, 0 buckets differ/,
    );
    expect(clean.code).toBe(0);
    expect((await cli('verify', '--full')).code).toBe(0);

    const planted = await plantDifferences(clients, prefix, {
      older: sids[0] as string,
      drift,
      tombstone: sids[1] as string,
      deleted: sids[3] as string,
    });
    const text = await cli('verify', '--full', '--settle', '1');
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^verify hk, kr: 6 difference\(s\) \(full: key by key/);
    expect(text.stdout).toContain(maskSessionId(planted.tombstone));
    expect(text.stdout).not.toContain(planted.tombstone);
    expect(text.stdout).toMatch(/tombstone-vs-live\s+\S+\s+hk\s+live .* tombstone /);

    const json = await cli('--json', '--show-ids', 'verify');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.mode).toBe('digests');
    const kinds = Object.fromEntries(
      report.differences.map((d: { sid: string; kind: string }) => [d.sid, d.kind]),
    );
    expect(kinds).toMatchObject({
      [planted.missing]: 'missing',
      [planted.older]: 'older-version',
      [planted.drift]: 'expiry-drift',
      [planted.tombstone]: 'tombstone-vs-live',
      [planted.missingTombstone]: 'missing',
    });

    const dry = await cli('--json', '--show-ids', 'repair', '--full', '--dry-run');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.dryRun).toBe(true);
    expect(
      plan.actions
        .map((a: { sid: string; region: string; op: string }) => `${a.sid} ${a.region} ${a.op}`)
        .sort(),
    ).toEqual(
      [
        `${planted.missing} kr set`,
        `${planted.older} kr set`,
        `${planted.drift} hk touch`,
        `${planted.tombstone} hk destroy`,
        `${planted.missingTombstone} kr destroy`,
        `${planted.deleted} kr set`,
      ].sort(),
    );
    expect((await cli('verify', '--full')).code).toBe(1);

    const fixed = await cli('repair', '--full');
    expect(fixed.stdout).toMatch(/^repair: 6 difference\(s\); made 6 fix\(es\)/);
    expect(fixed.code).toBe(0);
    expect((await cli('verify', '--full')).code).toBe(0);
    expect((await cli('verify')).code).toBe(0);
    expect((await metaOf(clients.hk, prefix, planted.tombstone))?.tombstone).toBe(true);
  });

  it('needs two regions (exit 2) and shows examples in --help', async () => {
    const one = await runCli(['--region', `hk=${servers.hk.url}`, 'verify']);
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/at least 2 regions/);
    const help = await runCli(['repair', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--dry-run/);
    expect(help.stdout).toMatch(/\$ geosession repair --dry-run/);
  });
});
