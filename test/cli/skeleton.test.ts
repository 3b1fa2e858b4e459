import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateRedis, startRedis } from '../helpers/servers.js';
import { lines, runCli } from './run-cli.js';

// The command line's frame: help, configuration sources, exit codes, error lines.
describe('geosession CLI skeleton', { timeout: 120_000 }, () => {
  let hk: PrivateRedis;
  beforeAll(async () => {
    hk = await startRedis();
  });
  afterAll(async () => {
    await hk?.stop();
  });

  it('--help lists the commands, the configuration and the exit codes, exit 0', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Usage: geosession/);
    expect(stdout).toMatch(/tail/);
    expect(stdout).toMatch(/GEOSESSION_REGIONS/);
    expect(stdout).toMatch(/3 {2}a region could not be reached/);
  });

  it('every command has examples in its --help', async () => {
    const { stdout } = await runCli(['--help']);
    const commands = [
      ...stdout.matchAll(/^ {2}([a-z][a-z-]*(?: [a-z-]+)?)(?: \[options\]| <[^>]+>| \[[^\]]+\])*\s{2,}/gm),
    ]
      .map((m) => m[1] ?? '')
      .filter((name) => name !== 'help');
    expect(commands.length).toBeGreaterThan(0);
    for (const name of commands) {
      const help = await runCli([...name.split(' '), '--help']);
      expect(help.code, name).toBe(0);
      expect(help.stdout, name).toMatch(/Examples:\n {2}\$ geosession /);
    }
  });

  it('usage errors exit 2 with one line on stderr and nothing on stdout', async () => {
    const unknown = await runCli(['no-such-command']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    const noRegions = await runCli(['tail']);
    expect(noRegions.code).toBe(2);
    expect(lines(noRegions.stderr)).toEqual([expect.stringMatching(/^geosession: no regions/)]);
    const badPair = await runCli(['--region', 'hk', 'tail']);
    expect(badPair.code).toBe(2);
    expect(badPair.stderr).toMatch(/--region: "hk" is not id=redis-url/);
    const badUrl = await runCli(['--region', 'hk=http://x', 'tail']);
    expect(badUrl.code).toBe(2);
    const badPrefix = await runCli(['--region', `hk=${hk.url}`, '--prefix', 'a|b', 'tail']);
    expect(badPrefix.code).toBe(2);
    expect(badPrefix.stderr).toMatch(/--prefix "a\|b" must not contain/);
    const badCount = await runCli(['--region', `hk=${hk.url}`, 'tail', '--count', 'x']);
    expect(badCount.code).toBe(2);
    // Arguments are checked before any region is reached: a usage error wins over a region that is down.
    const badId = await runCli(['--region', 'hk=redis://127.0.0.1:1', 'inspect', 'a{b}']);
    expect(badId.code).toBe(2);
  });

  it('an unreachable region exits 3 naming it, with no stack trace and the password redacted', async () => {
    const { code, stdout, stderr } = await runCli([
      '--region',
      `hk=${hk.url}`,
      '--region',
      'kr=redis://user:secret@127.0.0.1:1',
      '--timeout',
      '2000',
      'tail',
      '--count',
      '1',
    ]);
    expect(code).toBe(3);
    expect(stdout).toBe('');
    expect(lines(stderr)).toEqual([
      expect.stringMatching(/^geosession: region kr: cannot reach Redis at redis:\/\/user:\*\*\*@127/),
    ]);
    expect(stderr).not.toMatch(/secret|\n\s+at /);
  });

  it('GEOSESSION_DEBUG=1 adds the stack trace', async () => {
    const { code, stderr } = await runCli(['--region', 'kr=redis://127.0.0.1:1', 'tail'], {
      env: { GEOSESSION_DEBUG: '1' },
    });
    expect(code).toBe(3);
    expect(stderr).toMatch(/\n\s+at /);
  });

  it('reads regions from GEOSESSION_REGIONS and from --config, --region first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'geosession-cli-'));
    const file = join(dir, 'geosession.json');
    writeFileSync(file, JSON.stringify({ prefix: 'app:', regions: { kr: 'redis://127.0.0.1:1' } }));
    // The config names an unreachable kr: reaching kr proves the file was read.
    const fromFile = await runCli(['--config', file, '--timeout', '2000', 'tail']);
    expect(fromFile.code).toBe(3);
    expect(fromFile.stderr).toMatch(/region kr/);
    // GEOSESSION_REGIONS wins over the file, --region over both.
    const fromEnv = await runCli(['--config', file, '--timeout', '2000', 'tail'], {
      env: { GEOSESSION_REGIONS: 'eu=redis://127.0.0.1:1' },
    });
    expect(fromEnv.stderr).toMatch(/region eu/);
    const fromFlag = await runCli(['--config', file, '--region', 'us=redis://127.0.0.1:1', 'tail'], {
      env: { GEOSESSION_REGIONS: 'eu=redis://127.0.0.1:1' },
    });
    expect(fromFlag.stderr).toMatch(/region us/);
    writeFileSync(file, '{ not json');
    const broken = await runCli(['--config', file, 'tail']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/--config: .* is not JSON/);
  });
});
