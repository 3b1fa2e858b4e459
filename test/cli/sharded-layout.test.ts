import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, type PrivateRedis } from '../helpers/servers.js';
import { lines, regionArgs, runCli, startCli } from './run-cli.js';

// The CLI on stores with the sharded key layout (`outboxShards` above 1 on one Redis per region):
// `--outbox-shards` (or the config file's `outboxShards`) tells inspect, verify and tail where the
// sessions and their outboxes are.
describe('geosession on the sharded layout (--outbox-shards)', { timeout: 120_000 }, () => {
  const pair = usePrivateRedisPair();
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  beforeAll(() => {
    hk = pair.hk;
    kr = pair.kr;
  });
  const SHARDS = 4;
  const cookie = () => ({ originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000) });

  it('inspect, verify and tail find the sessions and every shard of the outbox', async () => {
    const prefix = 'cshard1:';
    const a = pair.streamsRegion('hk', prefix, {}, { outboxShards: SHARDS }).store;
    const b = pair.streamsRegion('kr', prefix, {}, { outboxShards: SHARDS }).store;
    const args = [...regionArgs({ hk, kr }), '--prefix', prefix];
    const sharded = [...args, '--outbox-shards', String(SHARDS)];

    const tail = startCli([...sharded, '--json', 'tail', '--count', '6']);
    await tail.waitForStderr(/tailing hk, kr/);
    // Sessions on several shards: their changes go to several outboxes.
    const sids = Array.from({ length: 4 }, () => a.genid());
    const keys = createKeySpace(prefix, '', SHARDS);
    expect(new Set(sids.map((sid) => keys.shardOf(sid))).size).toBeGreaterThan(1);
    for (const sid of sids) await a.set(sid, { cookie: cookie(), user: 'ada' } as never);
    const gone = sids[0] as string;
    await a.destroy(gone);
    const theirs = b.genid();
    await b.set(theirs, { cookie: cookie(), user: 'bo' } as never);
    const tailed = await tail.result;
    expect(tailed.code).toBe(0);
    const events = lines(tailed.stdout).map((line) => JSON.parse(line));
    expect(events.filter((e) => e.region === 'hk').map((e) => e.op)).toEqual([
      'set',
      'set',
      'set',
      'set',
      'destroy',
    ]);
    expect(events.find((e) => e.region === 'kr')).toMatchObject({ kind: 'session', op: 'set' });
    expect(events.every((e) => e.kind === 'session')).toBe(true);

    await eventually(async () => (await b.get(sids[1] as string)) !== null && (await a.get(theirs)) !== null);
    const live = sids[1] as string;
    const seen = await runCli([...sharded, '--json', '--show-ids', 'inspect', live]);
    expect(seen.code).toBe(0);
    const report = JSON.parse(seen.stdout);
    expect(report.regions.map((r: { state: string }) => r.state)).toEqual(['live', 'live']);
    // Without it, the CLI looks where the unsharded layout keeps sessions and finds nothing.
    const blind = await runCli([...args, '--json', '--show-ids', 'inspect', live]);
    expect(JSON.parse(blind.stdout).found).toBe(false);
    const dead = await runCli([...sharded, '--json', '--show-ids', 'inspect', gone]);
    expect(JSON.parse(dead.stdout).regions.map((r: { state: string }) => r.state)).toEqual([
      'tombstone',
      'tombstone',
    ]);

    await eventually(async () => (await runCli([...sharded, 'verify', '--full'])).code === 0);
    // A session only kr holds (written behind replication's back) is a difference verify reports.
    await kr.client().set(keys.session('stray'), '{"cookie":{}}', 'EX', 600);
    await kr.client().set(keys.meta('stray'), `${Date.now()}|kr:1|0`, 'EX', 600);
    const diff = await runCli([...sharded, '--json', 'verify', '--full']);
    expect(diff.code).toBe(1);
  });

  it('refuses a shard count it cannot use (exit 2)', async () => {
    const args = [...regionArgs({ hk, kr })];
    const zero = await runCli([...args, '--outbox-shards', '0', 'inspect', 'hk.x']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--outbox-shards must be a positive whole number/);
    const many = await runCli([...args, '--outbox-shards', '1000', 'inspect', 'hk.x']);
    expect(many.code).toBe(2);
    expect(many.stderr).toMatch(/--outbox-shards must be the stores' outboxShards, 1 to 256/);
    const tagged = await runCli([...args, '--prefix', '{app}s:', '--outbox-shards', '4', 'inspect', 'hk.x']);
    expect(tagged.code).toBe(2);
    expect(tagged.stderr).toMatch(/a prefix with a hash tag/);
  });
});
