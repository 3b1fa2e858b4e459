import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { type PrivateRedis, startRedis } from '../helpers/servers.js';
import { lines, regionArgs, startCli } from './run-cli.js';

// `geosession tail` against two private regions replicating over Redis Streams.
describe('geosession tail', { timeout: 120_000 }, () => {
  // The pair starts both servers and closes what each test opened (test/helpers/private-pair.ts).
  const pair = usePrivateRedisPair();
  let hk: PrivateRedis;
  let kr: PrivateRedis;
  beforeAll(() => {
    hk = pair.hk;
    kr = pair.kr;
  });

  function region(name: 'hk' | 'kr', prefix: string) {
    const { store, transport } = pair.streamsRegion(name, prefix, {}, {});
    return {
      store,
      close: async () => {
        await store.close();
        await transport.close();
      },
    };
  }

  it('prints set and destroy from every region as JSON lines, ids masked, and stops at --count', async () => {
    const prefix = 'tail1:';
    const a = region('hk', prefix);
    const b = region('kr', prefix);
    try {
      const cli = startCli([...regionArgs({ hk, kr }), '--prefix', prefix, '--json', 'tail', '--count', '3']);
      await cli.waitForStderr(/tailing hk, kr/);
      const sid = a.store.genid();
      const cookie = { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) };
      await a.store.set(sid, { cookie } as never);
      await a.store.destroy(sid);
      const other = b.store.genid();
      await b.store.set(other, { cookie } as never);
      const { code, stdout } = await cli.result;
      expect(code).toBe(0);
      const events = lines(stdout).map((line) => JSON.parse(line));
      expect(events).toHaveLength(3);
      const hkEvents = events.filter((e) => e.region === 'hk');
      expect(hkEvents.map((e) => e.op)).toEqual(['set', 'destroy']);
      expect(events.find((e) => e.region === 'kr')).toMatchObject({ kind: 'session', op: 'set' });
      for (const event of events) {
        expect(event.sid).toMatch(/^(hk|kr)\.[A-Za-z0-9_-]{4}…$/);
        expect(event.sid).not.toBe(sid);
        expect(event.lagMs).toBeGreaterThanOrEqual(0);
        expect(Number.isNaN(Date.parse(event.time))).toBe(false);
      }
      expect(hkEvents[0].sid).toBe(`hk.${sid.slice(3, 7)}…`);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('shows an entry that does not decode as poison, with the reason', async () => {
    const prefix = 'tail3:';
    const cli = startCli([...regionArgs({ hk }), '--prefix', prefix, '--json', 'tail', '--count', '1']);
    await cli.waitForStderr(/tailing hk/);
    await hk.client().xadd(createKeySpace(prefix).internal('outbox', 'hk'), '*', 'zz', 'garbage');
    const { code, stdout } = await cli.result;
    expect(code).toBe(0);
    const [event] = lines(stdout).map((line) => JSON.parse(line));
    expect(event).toMatchObject({ region: 'hk', kind: 'poison', op: '-', sid: null });
    expect(event.problem).toMatch(/unknown field/);
  });

  it('exits 3 naming the region when its Redis goes away while tailing', async () => {
    const doomed = await startRedis();
    try {
      const cli = startCli([...regionArgs({ hk, eu: doomed }), 'tail']);
      await cli.waitForStderr(/tailing hk, eu/);
      await doomed.kill();
      const { code, stdout, stderr } = await cli.result;
      expect(code).toBe(3);
      expect(stdout).toBe('');
      expect(lines(stderr).at(-1)).toMatch(
        /^geosession: region eu: (Redis stopped answering|cannot reach Redis at )/,
      );
    } finally {
      await doomed.stop();
    }
  });

  it('never consumes: the replication consumer groups see the same entries whether tail runs or not', async () => {
    const prefix = 'tail2:';
    const a = region('hk', prefix);
    const b = region('kr', prefix);
    try {
      const cli = startCli([
        ...regionArgs({ hk, kr }),
        '--prefix',
        prefix,
        'tail',
        '--count',
        '1',
        '--show-ids',
      ]);
      await cli.waitForStderr(/tailing/);
      const sid = a.store.genid();
      await a.store.set(sid, { cookie: { originalMaxAge: 60_000 } } as never);
      const { code, stdout } = await cli.result;
      expect(code).toBe(0);
      expect(stdout).toContain(sid);
      expect(stdout).toMatch(/ hk +session +set /);
      // kr still receives the change through its own consumer group.
      const deadline = Date.now() + 20_000;
      let seen = null;
      while (Date.now() < deadline && !seen) {
        seen = await b.store.get(sid);
        if (!seen) await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).not.toBeNull();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
