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

  it('redacts passwords in URLs', () => {
    expect(redactUrl('redis://user:secret@h:6379')).toBe('redis://user:***@h:6379');
    expect(redactUrl('rediss://secret@h:6379/0')).toBe('rediss://***@h:6379/0');
    expect(redactUrl('redis://h:6379')).toBe('redis://h:6379');
  });
});
