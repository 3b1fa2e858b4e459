/**
 * The registry's key names: unchanged on a single Redis, and on a Redis Cluster with a transport in the
 * slot of the outbox (and counter) its scripts append to, whatever hash tags the prefix, the channel or
 * the client's keyPrefix hold.
 */
import { describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { clusterSlot } from '../../src/redis/slots.js';
import { registryKeys } from '../../src/registry/keys.js';

describe('registry keys', () => {
  it('keep their single-Redis names without an outbox channel', () => {
    const keys = registryKeys('sess:');
    expect([keys.leases, keys.incs, keys.user('u1')]).toEqual([
      '{sess:|registry}:leases',
      '{sess:|registry}:incs',
      '{sess:|registry}:u:u1',
    ]);
    expect(registryKeys('{app}sess:').leases).toBe('{app}sess:|registry:leases');
  });

  it('take the slot of every region’s outbox and counter on the channel', () => {
    const cases = [
      { channel: 'sess:registry:', keyPrefix: '' },
      { channel: '{app}:sess:registry:', keyPrefix: '' },
      { channel: 'sess:registry:', keyPrefix: '{tenant}:' },
      { channel: 'other:', keyPrefix: 'x:' },
    ];
    for (const { channel, keyPrefix } of cases) {
      const keys = registryKeys('sess:', keyPrefix, channel);
      const space = createKeySpace(channel, keyPrefix);
      const slot = clusterSlot(keyPrefix + space.internal('outbox', 'hk'));
      const names = [keys.leases, keys.incs, keys.user('alice'), keys.user('x:y')];
      for (const key of [...names, space.sequence('hk'), space.internal('outbox', 'kr')]) {
        expect(clusterSlot(keyPrefix + key)).toBe(slot);
      }
      // No region's outbox or counter is a registry key (a region id holds no '|').
      expect(names.every((name) => name.includes('registry|'))).toBe(true);
      expect(new Set(names).size).toBe(names.length);
    }
    expect(registryKeys('sess:', '', 'sess:registry:').leases).toBe(
      '{sess:registry:|outbox}:registry|leases',
    );
  });
});
