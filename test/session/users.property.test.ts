/**
 * Property tests (fast-check) of the per-user index against real Redis: under random churn (set, touch,
 * destroy, regenerate, expire, logout everywhere) `sessionsOf` never lists an ended session, never
 * misses a live one, and the index holds no more than the live sessions once read (it never grows
 * without bound). On the unsharded layout and on the sharded one (`outboxShards: 4`, one index per user
 * and shard).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { GeoSessionStore, type SessionData } from '../../src/index.js';
import { createKeySpace } from '../../src/keys.js';
import { hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const client = sharedRedis({ lazyConnect: true });
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of hasRedis ? prefixes : []) {
    const keys = [...(await client.keys(`${prefix}*`)), ...(await client.keys(`{${prefix}*`))];
    if (keys.length > 0) await client.del(...keys);
  }
  client.disconnect();
});

const USERS = ['u0', 'u1', 'u2'];
const SIDS = ['s0', 's1', 's2', 's3', 's4', 's5'];
type Cmd =
  | { op: 'set' | 'touch' | 'destroy' | 'expire'; sid: string; user: string }
  | { op: 'regenerate'; sid: string; to: string; user: string }
  | { op: 'logout'; user: string; except: string | undefined };

const user = fc.constantFrom(...USERS);
const sid = fc.constantFrom(...SIDS);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constantFrom('set', 'touch', 'destroy', 'expire' as const),
    sid,
    user,
  }) as fc.Arbitrary<Cmd>,
  fc.record({ op: fc.constant('regenerate' as const), sid, to: sid, user }),
  fc.record({ op: fc.constant('logout' as const), user, except: fc.option(sid, { nil: undefined }) }),
);

const life = (ms: number, u: string): SessionData =>
  ({ cookie: { originalMaxAge: ms, expires: new Date(Date.now() + ms) }, user: u }) as never;

const LAYOUTS = [
  { layout: 'unsharded', outboxShards: undefined },
  { layout: 'sharded (outboxShards: 4)', outboxShards: 4 },
];

describe.runIf(hasRedis || process.env.CI === 'true').each(LAYOUTS)(
  'per-user index properties, $layout',
  ({ outboxShards }) => {
    it('lists exactly the live sessions of each user, and holds no more once read', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 25 }), async (cmds) => {
          const prefix = uniquePrefix('uprop');
          prefixes.push(prefix);
          const keys = createKeySpace(prefix, '', outboxShards ?? 0);
          const store = new GeoSessionStore({
            region: 'aa',
            client,
            prefix,
            outboxShards,
            userId: (s) => (s as { user?: string }).user,
          });
          // The model: live sid -> user; ended ids never come back (a destroy's tombstone is final).
          const live = new Map<string, string>();
          const ended = new Set<string>();
          try {
            for (const c of cmds) {
              if (c.op === 'logout') {
                await store.logoutEverywhere(c.user, c.except === undefined ? {} : { except: c.except });
                for (const [s, u] of [...live]) {
                  if (u === c.user && s !== c.except) {
                    live.delete(s);
                    ended.add(s);
                  }
                }
                // Any later save of this user's sessions created before now is refused: model it as ended.
                await new Promise((r) => setTimeout(r, 2));
                continue;
              }
              if (c.op === 'set' && !ended.has(c.sid)) {
                const owner = live.get(c.sid) ?? c.user;
                await store.set(c.sid, life(60_000, owner));
                if ((await store.get(c.sid)) !== null) live.set(c.sid, owner);
                else {
                  live.delete(c.sid);
                  ended.add(c.sid);
                }
              } else if (c.op === 'touch' && live.has(c.sid)) {
                await store.touch(c.sid, life(60_000, live.get(c.sid) as string));
              } else if (c.op === 'destroy') {
                await store.destroy(c.sid);
                live.delete(c.sid);
                ended.add(c.sid);
              } else if (c.op === 'expire' && !ended.has(c.sid) && !live.has(c.sid)) {
                await store.set(c.sid, life(20, c.user));
                await new Promise((r) => setTimeout(r, 40));
              } else if (
                c.op === 'regenerate' &&
                live.has(c.sid) &&
                c.to !== c.sid &&
                !ended.has(c.to) &&
                !live.has(c.to)
              ) {
                const owner = live.get(c.sid) as string;
                await store.destroy(c.sid);
                live.delete(c.sid);
                ended.add(c.sid);
                await store.set(c.to, life(60_000, owner));
                if ((await store.get(c.to)) !== null) live.set(c.to, owner);
              }
              for (const u of USERS) {
                const listed = (await store.sessionsOf(u)).map((s) => s.sid).sort();
                const want = [...live]
                  .filter(([, o]) => o === u)
                  .map(([s]) => s)
                  .sort();
                expect(listed).toEqual(want);
                let fields = 0;
                for (const { key } of keys.userIndexes(u)) {
                  fields += (await client.hkeys(key)).filter((f) => f !== '|before').length;
                }
                expect(fields).toBe(want.length);
              }
            }
          } finally {
            await store.close();
          }
        }),
        { numRuns: 25 },
      );
    });
  },
);
