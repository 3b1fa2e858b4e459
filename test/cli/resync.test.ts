import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { differences } from '../helpers/compare-regions.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, freePort, type PrivateRedis } from '../helpers/servers.js';
import { lines, regionArgs, runCli } from './run-cli.js';

// `geosession resync` as a child process against two private regions replicating over Redis Streams.
describe('geosession resync', () => {
  // The pair starts both servers and closes what each test opened (test/helpers/private-pair.ts).
  const pair = usePrivateRedisPair();
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  beforeAll(() => {
    hk = pair.hk;
    kr = pair.kr;
  });

  function region(name: 'hk' | 'kr', prefix: string) {
    const { store, transport } = pair.streamsRegion(name, prefix, { blockMs: 200, watchdogMs: 1000 }, {});
    return {
      store,
      close: async () => {
        await store.close();
        await transport.close();
      },
    };
  }

  const cookie = () => ({ originalMaxAge: 600_000, expires: new Date(Date.now() + 600_000) });

  it('brings an emptied region back, prints one JSON report, clears needsResync and exits 0', async () => {
    const prefix = 'cliresync1:';
    const a = region('hk', prefix);
    const b = region('kr', prefix);
    try {
      await Promise.all([a.store.ready(), b.store.ready()]);
      const sids = Array.from({ length: 120 }, () => a.store.genid());
      await Promise.all(sids.map((sid, i) => a.store.set(sid, { cookie: cookie(), n: i } as never)));
      for (const sid of sids.slice(0, 20)) await a.store.destroy(sid);
      await eventually(
        async () => (await differences(hk.client(), kr.client(), prefix)).length === 0,
        20_000,
        100,
      );

      await kr.restart();
      await eventually(() => 'kr' in (b.store.replicationStats()?.needsResync ?? {}), 20_000, 100);
      const run = await runCli([
        ...regionArgs({ hk, kr }),
        '--prefix',
        prefix,
        '--json',
        'resync',
        'kr',
        '--from',
        'hk',
        '--both-ways',
      ]);
      expect(run.code, run.stderr).toBe(0);
      const docs = lines(run.stdout).map((line) => JSON.parse(line));
      expect(docs).toHaveLength(1);
      expect(docs[0]).toMatchObject({ target: 'kr', source: 'hk', phase: 'done', resumed: false });
      expect(docs[0].counts).toMatchObject({ changed: 120, skewed: 0, malformed: 0 });
      expect(docs[0].cleared.target).toContain('kr');
      expect(docs[0].remaining).toEqual({ kr: [], hk: [] });
      expect(docs[0].rate).toBeGreaterThan(0);
      expect(await differences(hk.client(), kr.client(), prefix)).toEqual([]);
      for (const sid of sids.slice(0, 20)) expect(await b.store.get(sid)).toBeNull();
      for (const sid of sids.slice(20)) expect(await b.store.get(sid)).not.toBeNull();
      await eventually(
        () => Object.keys(b.store.replicationStats()?.needsResync ?? {}).length === 0,
        20_000,
        100,
      );

      // Text output for people, run again: nothing left to change.
      const again = await runCli([
        ...regionArgs({ hk, kr }),
        '--prefix',
        prefix,
        'resync',
        'kr',
        '--from',
        'hk',
      ]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(
        /^resync of kr from hk: done in [\d.]+ s, 120 sessions \(\d+\/s\), \d+ keys walked/m,
      );
      expect(again.stdout).toMatch(/sessions: 0 changed, 120 already there, 0 expired or gone/);
      expect(again.stdout).toMatch(/needsResync cleared: none/);
    } finally {
      await a.close();
      await b.close();
    }
  }, 90_000);

  it('exit 1 while another resync holds the region, 2 for bad arguments, 3 for a region it cannot reach', async () => {
    const prefix = 'cliresync2:';
    await kr.client().set(createKeySpace(prefix).resync('kr', 'lock'), 'someone', 'PX', 30_000);
    const busy = await runCli([
      ...regionArgs({ hk, kr }),
      '--prefix',
      prefix,
      'resync',
      'kr',
      '--from',
      'hk',
    ]);
    expect(busy.code).toBe(1);
    expect(busy.stdout).toBe('');
    expect(lines(busy.stderr).at(-1)).toMatch(/another resync of this region is running/);

    const same = await runCli([...regionArgs({ hk, kr }), 'resync', 'kr', '--from', 'kr']);
    expect(same.code).toBe(2);
    expect(lines(same.stderr).at(-1)).toMatch(/--from must name another region/);
    const noFrom = await runCli([...regionArgs({ hk, kr }), 'resync', 'kr']);
    expect(noFrom.code).toBe(2);
    const retries = await runCli([
      ...regionArgs({ hk, kr }),
      'resync',
      'kr',
      '--from',
      'hk',
      '--retries',
      '-1',
    ]);
    expect(retries.code).toBe(2);
    expect(retries.stderr).toMatch(/--retries must be a whole number ≥ 0/);
    const unknown = await runCli([...regionArgs({ hk, kr }), 'resync', 'us', '--from', 'hk']);
    expect(unknown.code).toBe(2);

    const down = { url: `redis://127.0.0.1:${await freePort()}` };
    const away = await runCli([...regionArgs({ hk, us: down }), 'resync', 'us', '--from', 'hk']);
    expect(away.code).toBe(3);
    expect(away.stderr).toMatch(/region us/);
  }, 60_000);
});
