/**
 * The key layout the copies of resync give each region (src/admin/region-layout.ts): sharded on a
 * Cluster by default (as a replicating store is), unsharded on a single Redis, never with a tagged
 * prefix; and the groups a batch is split into are one slot and one digest key each.
 */
import type { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { regionLayout } from '../../src/admin/region-layout.js';
import { ConfigError } from '../../src/errors.js';
import { clusterSlot } from '../../src/redis/slots.js';
import { DEFAULT_CLUSTER_OUTBOX_SHARDS } from '../../src/session/outbox-shards-option.js';

const cluster = (keyPrefix?: string) => ({ isCluster: true, options: { keyPrefix } }) as unknown as Cluster;
const single = { options: {} } as unknown as Redis;
const sids = Array.from({ length: 400 }, (_, i) => `hk.session${i}x`);

describe('regionLayout', () => {
  it("names a Cluster's sessions in the sharded layout by default, a single Redis's unsharded", () => {
    expect(regionLayout(cluster(), 'sess:', undefined, 'o').keys.shards).toBe(DEFAULT_CLUSTER_OUTBOX_SHARDS);
    expect(regionLayout(cluster(), 'sess:', 1, 'o').keys.shards).toBe(1);
    expect(regionLayout(single, 'sess:', undefined, 'o').keys.shards).toBe(0);
    expect(regionLayout(single, 'sess:', 1, 'o').keys.shards).toBe(0);
    expect(regionLayout(single, 'sess:', 4, 'o').keys.shards).toBe(4);
    // A prefix with its own hash tag never shards (every key in one slot already).
    expect(regionLayout(cluster(), '{app}sess:', undefined, 'o').keys.shards).toBe(0);
    expect(regionLayout(cluster('{app}'), 'sess:', undefined, 'o').keys.shards).toBe(0);
  });

  it('refuses a shard count the stores would refuse, naming the option', () => {
    for (const bad of [0, 257, 1.5, Number.NaN]) {
      expect(() => regionLayout(cluster(), 'sess:', bad, 'target.outboxShards')).toThrow(ConfigError);
    }
    expect(() => regionLayout(cluster(), '{app}sess:', 8, 'source.outboxShards')).toThrow(
      /source\.outboxShards/,
    );
  });

  it('groups sessions so that each group is one slot with one digest key', () => {
    for (const [client, prefix] of [
      [cluster(), 'sess:'],
      [cluster('kp:'), 'sess:'],
      [cluster(), '{app}sess:'],
    ] as const) {
      const layout = regionLayout(client, prefix, undefined, 'o');
      const slots = new Map<string, Set<number>>();
      const digests = new Map<string, Set<string>>();
      for (const sid of sids) {
        const group = layout.groupOf(sid);
        const full = [layout.keys.session(sid), layout.keys.meta(sid)].map((k) => layout.keyPrefix + k);
        const digest = layout.digestOf(sid, 'hk');
        full.push(layout.keyPrefix + digest);
        for (const key of full) slots.set(group, (slots.get(group) ?? new Set()).add(clusterSlot(key)));
        digests.set(group, (digests.get(group) ?? new Set()).add(digest));
      }
      for (const set of slots.values()) expect(set.size).toBe(1);
      for (const set of digests.values()) expect(set.size).toBe(1);
    }
    const single4 = regionLayout(single, 'sess:', 4, 'o');
    expect(new Set(sids.map((sid) => single4.groupOf(sid))).size).toBe(4);
    const plain = regionLayout(single, 'sess:', undefined, 'o');
    expect(new Set(sids.map((sid) => plain.groupOf(sid)))).toEqual(new Set(['']));
    expect(plain.digestOf('hk.a', 'hk')).toBe(plain.keys.digest('hk'));
  });
});
