import fc from 'fast-check';
import type { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { resolveRegions } from '../src/admin/region-state.js';
import type { ReplicationTransport } from '../src/contracts/transport.js';
import { ConfigError } from '../src/errors.js';
import { createKeySpace, prefixProblem } from '../src/keys.js';
import { DEFAULT_CLUSTER_OUTBOX_SHARDS, resolveOutboxShards } from '../src/session/outbox-shards-option.js';
import { isValidSessionId } from '../src/validation/ids.js';
import { sequenceKey } from '../src/wire/internal-keys.js';
import { CLUSTER_SLOTS, shardOfSession, shardTags, streamName } from '../src/wire/outbox-shards.js';
import { crc16, slotOf } from './helpers/slots.js';

const REGIONS = ['hk', 'kr', 'us-east-1'];

describe('outbox shards: hash tags and the sharded key layout', () => {
  it('CRC16 matches the Redis Cluster specification’s test vector, and the tags spread evenly', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    for (const count of [1, 2, 3, 8, 16, 100, 256]) {
      const tags = shardTags(count);
      expect(new Set(tags).size).toBe(count);
      tags.forEach((tag, i) => {
        expect(tag).toMatch(/^s\d+\.\d+$/);
        const slot = slotOf(`{${tag}}`);
        expect(slot).toBeGreaterThanOrEqual(Math.floor((i * CLUSTER_SLOTS) / count));
        expect(slot).toBeLessThan(Math.floor(((i + 1) * CLUSTER_SLOTS) / count));
      });
    }
    // Three masters of an evenly created cluster (0-5460, 5461-10922, 10923-16383) each own shards.
    const owners = shardTags(8).map((tag) => Math.min(2, Math.floor(slotOf(`{${tag}}`) / 5461)));
    expect(new Set(owners).size).toBe(3);
  });

  it('names the keys as documented (README "Redis Cluster")', () => {
    const keys = createKeySpace('sess:', '', 8);
    const sid = 'abc';
    const shard = keys.shardOf(sid) as number;
    const tag = shardTags(8)[shard];
    expect(keys.session(sid)).toBe(`sess:{${tag}}abc`);
    expect(keys.meta(sid)).toBe(`{${tag}}:m:sess:{${tag}}abc`);
    expect(keys.outboxOf(sid, 'hk')).toBe(`sess:{${tag}}|outbox:hk`);
    expect(sequenceKey(keys.outboxOf(sid, 'hk'))).toBe(`sess:{${tag}}|outbox:hk:seq`);
    expect(keys.digestOf(sid, 'hk')).toBe(`sess:{${tag}}|digest:hk`);
    // The user's index of the session's shard, in its slot; one per shard, none without a shard.
    expect(keys.user('ann', shard)).toBe(`sess:{${tag}}|user:ann`);
    expect(keys.userIndexes('ann').map((i) => i.key)).toEqual(
      shardTags(8).map((t) => `sess:{${t}}|user:ann`),
    );
    expect(keys.userIndexOf(`sess:{${tag}}|user:ann`)).toEqual({ uid: 'ann', shard });
    expect(() => keys.user('ann')).toThrow(RangeError);
    // The other families stay as they are, each in its own slot.
    expect(keys.internal('outbox', 'hk')).toBe('{sess:|outbox}:hk');
    expect(keys.seen('kr', streamName('hk', 3))).toBe('{sess:|seen}:kr:hk#3');
    expect(keys.sessionOutboxes('hk').map((o) => o.stream)).toEqual(
      Array.from({ length: 8 }, (_, i) => `hk#${i}`),
    );
    // Unsharded: byte-identical to the single-node layout.
    const plain = createKeySpace('sess:');
    expect(plain.shards).toBe(0);
    expect(plain.session(sid)).toBe('sess:abc');
    expect(plain.meta(sid)).toBe('{sess:abc}:m');
    expect(plain.outboxOf(sid, 'hk')).toBe('{sess:|outbox}:hk');
    expect(plain.digestOf(sid, 'hk')).toBe('{sess:|digest}:hk');
    expect(plain.user('ann')).toBe('{sess:|user}:ann');
    expect(plain.userIndexes('ann')).toEqual([{ key: '{sess:|user}:ann', shard: undefined }]);
    expect(plain.userIndexOf('{sess:|user}:ann')).toEqual({ uid: 'ann', shard: undefined });
    expect(plain.sessionOutboxes('hk')).toEqual([
      { key: '{sess:|outbox}:hk', shard: undefined, stream: 'hk' },
    ]);
    expect(() => createKeySpace('{app}sess:', '', 4)).toThrow(RangeError);
  });

  it('property: sharded keys are distinct, a session’s keys share its shard’s slot, sidOf finds only values', () => {
    const tricky = fc.string({
      unit: fc.oneof(
        fc.constantFrom('{', '}', '|', ':', 'm', 's', '.', '#'),
        fc.string({ minLength: 1, maxLength: 1 }),
      ),
      maxLength: 10,
    });
    fc.assert(
      fc.property(
        tricky,
        fc.array(tricky, { maxLength: 10 }),
        fc.integer({ min: 1, max: 16 }),
        fc.constantFrom('', 'kp:'),
        (prefix, ids, shards, kp) => {
          fc.pre(prefixProblem(prefix) === undefined && !prefix.includes('{'));
          const keys = createKeySpace(prefix, kp, shards);
          const sids = [...new Set(ids.filter(isValidSessionId))];
          const all = new Map<string, string>();
          const add = (key: string, what: string) => {
            const seen = all.get(key);
            if (seen !== undefined && seen !== what) throw new Error(`${key} is ${seen} and ${what}`);
            all.set(key, what);
          };
          for (const sid of sids) {
            add(keys.session(sid), `value ${sid}`);
            add(keys.meta(sid), `meta ${sid}`);
            const slot = slotOf(kp + keys.session(sid));
            expect(slotOf(kp + keys.meta(sid))).toBe(slot);
            for (const region of REGIONS) {
              expect(slotOf(kp + keys.outboxOf(sid, region))).toBe(slot);
              expect(slotOf(kp + keys.digestOf(sid, region))).toBe(slot);
            }
            expect(keys.sidOf(keys.session(sid))).toBe(sid);
            expect(keys.sidOf(keys.meta(sid))).toBeUndefined();
            // The index of a user of this session (any valid id is a valid user id) is in its slot.
            expect(slotOf(kp + keys.user(sid, keys.shardOf(sid)))).toBe(slot);
            for (const index of keys.userIndexes(sid)) {
              add(index.key, `user ${sid} ${index.shard}`);
              expect(keys.userIndexOf(index.key)).toEqual({ uid: sid, shard: index.shard });
            }
          }
          for (const region of REGIONS) {
            for (const o of keys.sessionOutboxes(region)) add(o.key, `outbox ${o.stream}`);
            for (const d of keys.digests(region)) add(d, `digest ${region} ${d}`);
            for (const f of ['outbox', 'seen', 'state', 'dead'] as const)
              add(keys.internal(f, region), f + region);
          }
          for (const [key, what] of all) {
            const sid = keys.sidOf(key);
            if (sid !== undefined) expect(what).toBe(`value ${sid}`);
            const user = keys.userIndexOf(key);
            if (user !== undefined) expect(what).toBe(`user ${user.uid} ${user.shard}`);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('the shard of a session is stable and spreads', () => {
    expect(shardOfSession('abc', 1)).toBe(0);
    expect(shardOfSession('abc', 8)).toBe(shardOfSession('abc', 8));
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[shardOfSession(`hk.${i.toString(36)}x${i}`, 8)]++;
    for (const n of counts) expect(n).toBeGreaterThan(700);
  });
});

describe('the outboxShards option', () => {
  const single = { isCluster: undefined } as unknown as Cluster;
  const cluster = { isCluster: true, options: {} } as unknown as Cluster;
  const memory = { name: 'memory', readsOutbox: false } as unknown as ReplicationTransport;
  const streams = { name: 'redis-streams', readsOutbox: true } as unknown as ReplicationTransport;
  const resolve = (o: Partial<Parameters<typeof resolveOutboxShards>[0]>) =>
    resolveOutboxShards({
      outboxShards: undefined,
      client: single,
      prefix: 'sess:',
      transport: memory,
      ...o,
    });

  it('keeps the single-node layout by default, shards a replicating Cluster by default', () => {
    expect(resolve({})).toBe(0);
    expect(resolve({ outboxShards: 1 })).toBe(0);
    expect(resolve({ outboxShards: 4 })).toBe(4);
    expect(resolve({ client: cluster })).toBe(DEFAULT_CLUSTER_OUTBOX_SHARDS);
    expect(resolve({ client: cluster, outboxShards: 1 })).toBe(1);
    expect(resolve({ client: cluster, transport: undefined })).toBe(0);
    expect(resolve({ client: cluster, prefix: '{app}sess:' })).toBe(0);
  });

  it('refuses what cannot work, naming the option', () => {
    for (const bad of [0, -1, 1.5, 257, '8', Number.NaN]) {
      expect(() => resolve({ outboxShards: bad })).toThrow(ConfigError);
      expect(() => resolve({ outboxShards: bad })).toThrow(/outboxShards/);
    }
    expect(() => resolve({ client: cluster, prefix: '{app}sess:', outboxShards: 4 })).toThrow(
      /outboxShards.*hash tag/,
    );
    // Redis Streams reads every shard's outbox (or the one, when the prefix holds a tag).
    expect(resolve({ client: cluster, transport: streams })).toBe(DEFAULT_CLUSTER_OUTBOX_SHARDS);
    expect(resolve({ client: cluster, prefix: '{app}sess:', transport: streams })).toBe(0);
  });
});

describe('the admin regions’ outboxShards', () => {
  const fake = { mget() {}, options: {} } as never;
  const clusterFake = { mget() {}, options: {}, isCluster: true } as never;
  it('binds each region to its layout, and refuses a count that cannot be', () => {
    const [hk, kr] = resolveRegions([
      { id: 'hk', client: fake, outboxShards: 4 },
      { id: 'kr', client: clusterFake, outboxShards: 1 },
    ]);
    expect(hk?.keys.shards).toBe(4);
    // A replicating Cluster with one shard still keeps the sharded names.
    expect(kr?.keys.shards).toBe(1);
    expect(
      resolveRegions([
        { id: 'hk', client: fake, outboxShards: 1 },
        { id: 'kr', client: fake },
      ])[0]?.keys.shards,
    ).toBe(0);
    for (const bad of [0, 1.5, 300]) {
      expect(() =>
        resolveRegions([
          { id: 'hk', client: fake, outboxShards: bad },
          { id: 'kr', client: fake },
        ]),
      ).toThrow(/outboxShards/);
    }
    expect(() =>
      resolveRegions([
        { id: 'hk', client: fake, prefix: '{a}s:', outboxShards: 2 },
        { id: 'kr', client: fake },
      ]),
    ).toThrow(ConfigError);
  });
});
