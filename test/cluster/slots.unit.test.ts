import { describe, expect, it } from 'vitest';
import { clusterSlot, groupBySlot } from '../../src/redis/slots.js';
import { slotOf } from '../helpers/slots.js';

describe('Redis Cluster key slots', () => {
  it('match the slots of the Redis Cluster specification, hash tags included', () => {
    // Values from the specification's example and CLUSTER KEYSLOT on Redis 7.
    expect(clusterSlot('123456789')).toBe(0x31c3 % 16384);
    expect(clusterSlot('foo')).toBe(12182);
    expect(clusterSlot('{user1000}.following')).toBe(clusterSlot('{user1000}.followers'));
    expect(clusterSlot('{user1000}.following')).toBe(3443);
    // An empty tag is no tag: the whole key is hashed.
    expect(clusterSlot('{}foo')).toBe(slotOf('{}foo'));
    expect(clusterSlot('{}foo')).not.toBe(clusterSlot('foo'));
    expect(clusterSlot('{}foo')).not.toBe(clusterSlot(''));
    for (let i = 0; i < 2000; i++) {
      const key = `k${i}:${(i * 7919).toString(36)}${i % 3 === 0 ? `{t${i % 17}}` : ''}`;
      expect(clusterSlot(key)).toBe(slotOf(key));
    }
  });

  it('group items by slot, in first-seen order', () => {
    const groups = groupBySlot(['{a}1', 'b', '{a}2', 'b'], (k) => k);
    expect(groups).toEqual([
      ['{a}1', '{a}2'],
      ['b', 'b'],
    ]);
  });
});
