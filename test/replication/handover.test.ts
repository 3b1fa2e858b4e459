/**
 * An orderly restart does not delay replication by `claimIdleMs` (issue 14, item 6): entries a region's
 * reader was given and had not applied when its store closed in order (here: its Redis stalls, so the
 * apply fails and the batch stays pending) are taken up by the next process at once. Before, they
 * waited for the next reader, whose consumer name is new, to claim them as a dead consumer's after
 * `claimIdleMs` (30 s by default; 60 s here, past the test's wait, so the old path cannot pass it).
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { usePrivateRedisPair } from '../helpers/private-pair.js';
import { eventually, hasRedis, uniquePrefix } from '../helpers/servers.js';

const CLAIM_IDLE_MS = 60_000;
/** Well below CLAIM_IDLE_MS: what arrives within it did not wait for a claim of a dead consumer. */
const WAIT_MS = 20_000;

function session(data: Record<string, unknown>): SessionData {
  return {
    cookie: { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() },
    ...data,
  };
}

/** Entries of `key` delivered to `group` and not acknowledged. */
const pendingOf = async (client: Redis, key: string, group: string) =>
  Number(((await client.xpending(key, group)) as [number])[0]);

describe.skipIf(!hasRedis)(
  'an orderly close hands pending entries over (Redis Streams, private servers)',
  () => {
    const servers = usePrivateRedisPair();

    /** Its store and transport report errors while kr's Redis stalls. */
    function region(name: 'hk' | 'kr', prefix: string) {
      const r = servers.streamsRegion(
        name,
        prefix,
        { readers: 1, blockMs: 200, claimIdleMs: CLAIM_IDLE_MS },
        { operationTimeoutMs: 500 },
      );
      r.transport.on('error', () => {});
      return r;
    }

    it('entries a closed reader left pending (its applies failed) are applied by the next process at once', async () => {
      const prefix = uniquePrefix('handover');
      const outbox = createKeySpace(prefix).internal('outbox', 'hk');
      const hk = region('hk', prefix);
      const kr = region('kr', prefix);
      await Promise.all([hk.store.ready(), kr.store.ready()]);

      servers.kr.pause();
      const sids = Array.from({ length: 10 }, () => hk.store.genid());
      for (const sid of sids) await hk.store.set(sid, session({ n: sid }));
      // kr's reader has them (read from hk) and fails to apply them to its stalled Redis.
      await eventually(async () => (await pendingOf(hk.clients.hk, outbox, 'kr')) > 0, WAIT_MS);
      await kr.store.close();
      await kr.transport.close();
      expect(await pendingOf(hk.clients.hk, outbox, 'kr')).toBeGreaterThan(0);

      servers.kr.resume();
      const next = region('kr', prefix);
      await next.store.ready();
      await eventually(async () => {
        const got = await Promise.all(sids.map((sid) => next.store.get(sid)));
        return got.every((s) => s !== null);
      }, WAIT_MS);
      // The sessions can show before the batch is acknowledged (kr's queued applies ran when it
      // resumed); the pending entries go well within claimIdleMs (60 s), so they were handed over.
      await eventually(async () => (await pendingOf(hk.clients.hk, outbox, 'kr')) === 0, WAIT_MS);
    }, 60_000);
  },
);
