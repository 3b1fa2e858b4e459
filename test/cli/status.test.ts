/**
 * `geosession status` as a real child process against two private redis-servers, while a replicating
 * pair (Redis Streams) writes sessions: the report read from Redis alone, exit 1 on a needed resync or
 * an alert, `--watch` with its chart.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { GeoSessionStore } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, type PrivateRedis } from '../helpers/servers.js';
import { lines, regionArgs, runCli } from './run-cli.js';

describe.skipIf(!hasRedis)('geosession status', () => {
  // The pair starts both servers and closes what each test opened (test/helpers/private-pair.ts).
  const pair = usePrivateRedisPair();
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  beforeAll(() => {
    hk = pair.hk;
    kr = pair.kr;
  });

  function region(name: 'hk' | 'kr', prefix: string) {
    const { store, transport } = pair.streamsRegion(
      name,
      prefix,
      {},
      {
        statusIntervalMs: 200,
        // No heartbeats: the tests count the changes whose lag was measured.
        heartbeatMs: 0,
      },
    );
    return {
      store,
      close: async () => {
        await store.close();
        await transport.close();
      },
    };
  }

  async function writeSessions(store: GeoSessionStore, count: number) {
    for (let i = 0; i < count; i++)
      await store.set(store.genid(), { cookie: { originalMaxAge: 60_000 }, n: i });
  }

  it('prints every region read from Redis alone; exit 0 when healthy, 1 when a region needs a resync', async () => {
    const prefix = 'cli-status1:';
    const a = region('hk', prefix);
    const b = region('kr', prefix);
    try {
      await Promise.all([a.store.ready(), b.store.ready()]);
      await writeSessions(a.store, 12);
      await writeSessions(b.store, 5);
      await eventually(async () => (await b.store.status()).peers[0]?.lag?.count === 12);
      await eventually(async () => (await a.store.status()).peers[0]?.lag?.count === 5);
      await new Promise((r) => setTimeout(r, 500)); // both processes wrote a record since

      const json = await runCli([...regionArgs({ hk, kr }), '--prefix', prefix, '--json', 'status']);
      expect(json.stderr).toBe('');
      expect(json.code).toBe(0);
      const { regions } = JSON.parse(json.stdout);
      expect(regions.map((r: { region: string }) => r.region)).toEqual(['hk', 'kr']);
      const [hkStatus, krStatus] = regions;
      expect(krStatus).toMatchObject({
        reachable: true,
        transport: { name: 'redis-streams', state: 'ready' },
      });
      expect(krStatus.processes).toHaveLength(1);
      expect(krStatus.peers[0]).toMatchObject({
        region: 'hk',
        received: { applied: 12 },
        lag: { count: 12 },
      });
      expect(krStatus.peers[0].consumers).toBeGreaterThan(0); // hk reads kr's outbox
      expect(hkStatus.peers[0]).toMatchObject({
        region: 'kr',
        received: { applied: 5 },
        backlog: { entries: 0 },
      });

      const text = await runCli([...regionArgs({ hk, kr }), '--prefix', prefix, 'status']);
      expect(text.code).toBe(0);
      const out = lines(text.stdout);
      expect(out.find((l) => l.startsWith('kr:'))).toMatch(
        /^kr: transport redis-streams ready {2}1 process\(es\)/,
      );
      expect(out.some((l) => /^\s+peer\s+lag p50\s+lag p99/.test(l))).toBe(true);
      expect(out.some((l) => /^\s+hk\s+\d+ ms\s+\d+ ms\s+12\s/.test(l))).toBe(true);

      // kr needs a resync with hk: the command says so and exits 1.
      await kr
        .client()
        .hset(
          createKeySpace(prefix).internal('state', 'kr'),
          'resync:hk',
          JSON.stringify({ reason: 'planted', cause: 'gap', since: Date.now() }),
        );
      const failing = await runCli([...regionArgs({ hk, kr }), '--prefix', prefix, 'status']);
      expect(failing.code).toBe(1);
      expect(failing.stdout).toMatch(/YES \(gap\)/);
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);

  it('without any app running: no process reports, what Redis knows still shows', async () => {
    const prefix = 'cli-status2:';
    const a = region('hk', prefix);
    const b = region('kr', prefix);
    await Promise.all([a.store.ready(), b.store.ready()]);
    await b.close(); // kr's reader stops: what hk writes waits for it
    await writeSessions(a.store, 4);
    await a.close();
    await eventually(async () => {
      const r = await runCli([...regionArgs({ hk, kr }), '--prefix', prefix, '--json', 'status']);
      return JSON.parse(r.stdout).regions.every((x: { processes: unknown[] }) => x.processes.length === 0);
    }, 10_000);
    const { code, stdout } = await runCli([
      ...regionArgs({ hk, kr }),
      '--prefix',
      prefix,
      '--json',
      'status',
    ]);
    expect(code).toBe(0);
    const hkStatus = JSON.parse(stdout).regions[0];
    expect(hkStatus.peers[0]).toMatchObject({ region: 'kr', backlog: { entries: 4 } });
    expect(hkStatus.outbox).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it('--watch refreshes n times and charts the lag per region', async () => {
    const prefix = 'cli-status3:';
    const a = region('hk', prefix);
    const b = region('kr', prefix);
    try {
      await Promise.all([a.store.ready(), b.store.ready()]);
      await writeSessions(a.store, 10);
      await eventually(async () => (await b.store.status()).peers[0]?.lag?.count === 10);
      await new Promise((r) => setTimeout(r, 500));
      const watch = await runCli([
        ...regionArgs({ hk, kr }),
        '--prefix',
        prefix,
        'status',
        '--watch',
        '0.2',
        '--count',
        '2',
      ]);
      expect(watch.code).toBe(0);
      expect(watch.stdout.match(/refreshing every 0.2 s/g)).toHaveLength(2);
      expect(watch.stdout).toMatch(/lag p99 per minute into kr, from: hk/);
      expect(watch.stdout).toMatch(/ms [┤┼]/); // the chart's axis

      const json = await runCli([
        ...regionArgs({ hk, kr }),
        '--prefix',
        prefix,
        '--json',
        'status',
        '-w',
        '0.2',
        '-n',
        '2',
      ]);
      expect(lines(json.stdout)).toHaveLength(2);
      for (const line of lines(json.stdout)) expect(JSON.parse(line).regions).toHaveLength(2);

      const bad = await runCli([...regionArgs({ hk, kr }), '--prefix', prefix, 'status', '--watch', 'soon']);
      expect(bad.code).toBe(2);
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);
});
