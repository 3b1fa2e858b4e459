import { describe, expect, it } from 'vitest';
import { maskSessionId } from '../../src/admin/mask-id.js';

describe('maskSessionId', () => {
  it('keeps the region and four characters of a generated id', () => {
    expect(maskSessionId('hk.vJ0q3GJxk6yq3cW8sQm0fD1p')).toBe('hk.vJ0q…');
    expect(maskSessionId('us-east-1.abcdefghijklmnopqrstuvwx')).toBe('us-east-1.abcd…');
  });

  it('keeps four characters of any other long id, none of a short one', () => {
    expect(maskSessionId('Xq9vJ0q3GJxk6yq3cW8sQm0f')).toBe('Xq9v…');
    expect(maskSessionId('short')).toBe('…');
    expect(maskSessionId('hk.short')).toBe('hk.…');
  });

  it('never shows more than a fraction of the id', () => {
    const sid = 'hk.vJ0q3GJxk6yq3cW8sQm0fD1p';
    expect(maskSessionId(sid).length).toBeLessThan(sid.length / 2);
  });
});
