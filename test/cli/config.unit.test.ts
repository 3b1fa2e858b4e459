import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRegionPair, redactUrl, resolveConfig } from '../../src/cli/config.js';
import { ExitCode, UsageError } from '../../src/cli/errors.js';

describe('CLI configuration', () => {
  it('parses id=url pairs and refuses bad ids and URLs as usage errors', () => {
    expect(parseRegionPair('hk=redis://127.0.0.1:6379', '--region')).toEqual([
      'hk',
      'redis://127.0.0.1:6379',
    ]);
    expect(parseRegionPair('kr = rediss://u:p@h:6380/2', '--region')).toEqual([
      'kr',
      'rediss://u:p@h:6380/2',
    ]);
    for (const bad of ['hk', 'HK=redis://h', 'hk=', 'hk=http://h', 'hk=not a url']) {
      expect(() => parseRegionPair(bad, '--region'), bad).toThrow(UsageError);
    }
    try {
      parseRegionPair('hk', '--region');
    } catch (error) {
      expect((error as UsageError).exitCode).toBe(ExitCode.usage);
    }
  });

  it('takes --region first, then GEOSESSION_REGIONS; the prefix defaults to the store default', () => {
    const env = { GEOSESSION_REGIONS: 'eu=redis://e:1, us=redis://u:2' };
    expect([...resolveConfig({ region: ['hk=redis://h:1'] }, env).regions.keys()]).toEqual(['hk']);
    const fromEnv = resolveConfig({}, env);
    expect([...fromEnv.regions]).toEqual([
      ['eu', 'redis://e:1'],
      ['us', 'redis://u:2'],
    ]);
    expect(fromEnv.prefix).toBe('sess:');
    expect(fromEnv.json).toBe(false);
    expect(() => resolveConfig({ region: ['hk=redis://a:1', 'hk=redis://b:1'] }, {})).toThrow(/given twice/);
    expect(() => resolveConfig({ prefix: '{a' }, {})).toThrow(UsageError);
    expect(() => resolveConfig({ timeout: '0' }, {})).toThrow(/--timeout/);
    expect(resolveConfig({ prefix: '' }, {}).prefix).toBe('');
  });

  it('takes outboxShards from --outbox-shards, then the config file; 1 by default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'geosession-config-'));
    const file = join(dir, 'regions.json');
    writeFileSync(file, JSON.stringify({ outboxShards: 8, regions: { hk: 'redis://h:1' } }));
    try {
      expect(resolveConfig({}, {}).outboxShards).toBe(1);
      expect(resolveConfig({ config: file }, {}).outboxShards).toBe(8);
      expect(resolveConfig({ config: file, outboxShards: 4 }, {}).outboxShards).toBe(4);
      writeFileSync(file, JSON.stringify({ outboxShards: '8' }));
      expect(() => resolveConfig({ config: file }, {})).toThrow(/"outboxShards" must be a number/);
      expect(() => resolveConfig({ outboxShards: 257 }, {})).toThrow(/1 to 256/);
      expect(() => resolveConfig({ outboxShards: 4, prefix: '{a}s:' }, {})).toThrow(/hash tag/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('redacts passwords in URLs', () => {
    expect(redactUrl('redis://user:secret@h:6379')).toBe('redis://user:***@h:6379');
    expect(redactUrl('rediss://secret@h:6379/0')).toBe('rediss://***@h:6379/0');
    expect(redactUrl('redis://h:6379')).toBe('redis://h:6379');
  });
});
