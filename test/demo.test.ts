import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasRedis, type PrivateRedis, startRedis } from './helpers/servers.js';

const run = promisify(execFile);
const tsx = ['node_modules/.bin/tsx', 'examples/demo/index.ts'];

describe('npm run demo', () => {
  it('runs with no server at all, on the embedded in-memory default', async () => {
    const { stdout } = await run(tsx[0] as string, [tsx[1] as string], { timeout: 60_000 });
    expect(stdout).toContain('embedded in-memory Redis');
    expect(stdout).toMatch(/served by hk/);
    expect(stdout).toMatch(/served by kr/);
    expect(stdout).toContain('"cart":["tea","dumplings","kimchi"]');
    expect(stdout).toContain('logout was final in both regions.');
    expect(stdout).not.toContain('not replicated');
  });

  describe.skipIf(!hasRedis)('given Redis URLs', () => {
    let hk: PrivateRedis;
    let kr: PrivateRedis;
    beforeAll(async () => {
      [hk, kr] = await Promise.all([startRedis(), startRedis()]);
    });
    afterAll(async () => {
      await Promise.all([hk?.stop(), kr?.stop()]);
    });

    it('uses real Redis and the Redis Streams transport', async () => {
      const { stdout } = await run(tsx[0] as string, [tsx[1] as string, '--hk', hk.url, '--kr', kr.url], {
        timeout: 60_000,
      });
      expect(stdout).toContain('Redis Streams transport');
      expect(stdout).toContain('logout was final in both regions.');
      expect(stdout).not.toContain('not replicated');
      // The demo cleans up after itself.
      const client = hk.client();
      expect(await client.keys('demo:*')).toEqual([]);
    });
  });
});
