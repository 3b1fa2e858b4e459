/**
 * A set that a user's "revoked before" mark refuses still counts towards the version of the tombstone
 * that ends the session, as it does when it arrives after that tombstone (a tombstone keeps the highest
 * version it saw). Before, a region that got the set before the tombstone ended with the tombstone's own
 * version and a region that got it after with the set's: two tombstones of one session that disagree
 * (AMQP fault-suite seed 1816583885: a logout everywhere asked in a region whose host clock ran ahead, so
 * its later write had a version above the destroy's).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { Applier } from '../../src/replication/applier.js';
import type { ChangeEvent } from '../../src/replication/events.js';
import { sessionState, version } from '../helpers/meta.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const DAY = 86_400_000;
let seq = 0;

describe.skipIf(!hasRedis)('a set refused by a "revoked before" mark', () => {
  const client = sharedRedis();
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const prefix of prefixes) await dropKeys(client, prefix);
    client.disconnect();
  });

  function region() {
    const prefix = uniquePrefix('markref');
    prefixes.push(prefix);
    const keys = createKeySpace(prefix);
    const applier = new Applier({
      client,
      keys,
      horizonMs: 10 * 60_000,
      maxSkewMs: 60_000,
      timeoutMs: 2000,
      userOf: (data) => (JSON.parse(data) as { user?: string }).user,
    });
    return { keys, apply: (events: ChangeEvent[]) => applier.apply(events) };
  }

  it('leaves the same tombstone whether it arrives before or after the destroy', async () => {
    const sid = 'sess-marked';
    const now = Date.now();
    const base = { sid, time: now };
    const data = JSON.stringify({ cookie: { originalMaxAge: DAY }, user: 'u1' });
    const set = (v: string, origin: string): ChangeEvent => ({
      ...base,
      id: `${origin}:${++seq}-0`,
      origin,
      op: 'set',
      version: v,
      expiresAt: now + DAY,
      lifetimeMs: DAY,
      fingerprint: `fp-${v}`,
      data,
    });
    const first = set(version(now - 5000, 0, 'hk'), 'hk');
    // kr's logout everywhere of u1, made after the session began, then kr's write of it with a version
    // above the destroy's below (kr's host clock ran ahead).
    const mark: ChangeEvent = {
      id: `kr:${++seq}-0`,
      origin: 'kr',
      time: now,
      sid: 'u1',
      op: 'revoke',
      version: version(now - 1000, 0, 'kr'),
      expiresAt: now + DAY,
      except: '',
    };
    const late = set(version(now + 20_000, 0, 'kr'), 'kr');
    const destroy: ChangeEvent = {
      ...base,
      id: `hk:${++seq}-0`,
      origin: 'hk',
      op: 'destroy',
      version: version(now - 500, 0, 'hk'),
      expiresAt: now + DAY,
      reason: 'revoked-before',
      userId: 'u1',
    };

    const before = region();
    await before.apply([first, mark]);
    const refused = await before.apply([late]);
    expect(refused.outcome.refused).toBe(1);
    await before.apply([destroy]);

    const after = region();
    await after.apply([first, mark]);
    await after.apply([destroy]);
    await after.apply([late]);

    const a = await sessionState(client, before.keys, sid);
    const b = await sessionState(client, after.keys, sid);
    expect(b.meta.t).toBe('1');
    expect(b.meta.v).toBe(late.version);
    expect(a.meta.t).toBe('1');
    expect(a.meta.v).toBe(b.meta.v);
    expect(a.value).toBeNull();
  });
});
