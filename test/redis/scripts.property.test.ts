/**
 * Property-based tests (fast-check) of the versioned write path: random sequences of set / touch / destroy
 * against one session id, checked against a model after every step, and a property of the version format.
 * Runs against the machine's Redis under a unique prefix.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { GeoSessionStore, type RefusedWrite, type SessionData } from '../../src/index.js';
import { parseMeta } from '../../src/redis/meta.js';
import { metaField, writeMeta } from '../helpers/meta.js';
import { hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const MAX_AGE = 3_600_000; // cookie.originalMaxAge stays fixed, as with express-session's `maxAge`
/** How far past the host-clock expiry the Redis-clock expiry may land (the time a call takes). */
const SLACK_MS = 250;

interface Payload {
  user: string;
  n: number;
}

type Op =
  | { kind: 'set'; payload: Payload | null; lifeMs: number } // null: same content, new expiry only
  | { kind: 'touch'; lifeMs: number }
  | { kind: 'destroy' };

const payloadArb: fc.Arbitrary<Payload> = fc.record({
  user: fc.constantFrom('alice', 'bob', 'carol'),
  n: fc.integer({ min: 0, max: 3 }),
});
/**
 * Lifetimes within the cookie's maxAge, as express-session and fastify make them (expires = now +
 * maxAge); a longer one changes the session's lifetime rule, which makes the write a content write
 * (tested in test/session/store.test.ts).
 */
const lifeArb = fc.integer({ min: 60_000, max: MAX_AGE });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      payload: fc.option(payloadArb, { nil: null, freq: 3 }),
      lifeMs: lifeArb,
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('touch' as const), lifeMs: lifeArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const) }) },
);

/** A session as express-session would hand it over: the payload plus a cookie expiring at `expiresAt`. */
function sessionOf(payload: Payload, expiresAt: number): SessionData {
  return { cookie: { originalMaxAge: MAX_AGE, expires: new Date(expiresAt).toISOString() }, ...payload };
}

/** Parses `<15-digit ms>.<4-digit counter>.<region>`. */
function parseVersion(v: string): { ms: number; counter: number; region: string } {
  const m = /^(\d{15})\.(\d{4})\.([a-z0-9-]{1,32})$/.exec(v);
  if (!m) throw new Error(`malformed version ${JSON.stringify(v)}`);
  return { ms: Number(m[1]), counter: Number(m[2]), region: m[3] as string };
}

/** Orders versions by (ms, counter, region) as numbers and text: the order the strings must agree with. */
function compareTuple(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (x.ms !== y.ms) return Math.sign(x.ms - y.ms);
  if (x.counter !== y.counter) return Math.sign(x.counter - y.counter);
  return x.region < y.region ? -1 : x.region > y.region ? 1 : 0;
}

const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

describe.skipIf(!hasRedis)('set / touch / destroy scripts (property-based)', () => {
  const client = sharedRedis({ lazyConnect: true });
  const prefix = uniquePrefix('prop');
  const store = new GeoSessionStore({ region: 'hk', client, prefix, tombstoneTtl: 600 });
  const refused: RefusedWrite[] = [];
  store.on('refused', (r: RefusedWrite) => refused.push(r));
  let counter = 0;

  afterAll(async () => {
    await store.close();
    const keys = [...(await client.keys(`${prefix}*`)), ...(await client.keys(`{${prefix}*`))];
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  /** What Redis holds for `sid`, read atomically. */
  async function observe(sid: string) {
    const valueKey = prefix + sid;
    const metaKey = `{${valueKey}}:m`;
    const res = await client
      .multi()
      .get(valueKey)
      .get(metaKey)
      .pexpiretime(valueKey)
      .pexpiretime(metaKey)
      .exec();
    if (!res) throw new Error('MULTI aborted');
    const [value, metaText, valueExpiry, metaExpiry] = res.map(([err, out]) => {
      if (err) throw err;
      return out;
    }) as [string | null, string | null, number, number];
    const meta = parseMeta(metaText);
    return {
      value,
      version: meta?.version,
      x: meta?.expiresAt,
      tombstone: meta?.tombstone === true,
      valueExpiry,
      metaExpiry,
    };
  }

  it('destroy is final, versions move forward, a new version brings its own expiry, get returns the last write', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 14 }), async (ops) => {
        const sid = `s${counter++}`;
        // The model.
        let destroyed = false;
        let content: Payload | undefined; // last accepted content; undefined: no session stored
        let stored: SessionData | undefined; // what get must return
        let expiry = 0; // expected absolute expiry while alive
        let written = 0; // the expiry get reports: the last set's, moved by later touches and unchanged sets
        let longest = 0; // the latest expiry ever asked for
        let version: string | undefined; // observed version while alive

        for (const op of ops) {
          const refusedBefore = refused.length;
          const alive = !destroyed && content !== undefined;
          const expiresAt = op.kind === 'destroy' ? 0 : Date.now() + op.lifeMs;
          longest = Math.max(longest, expiresAt);
          let contentWrite = false;
          let expectRefusal: RefusedWrite['op'] | undefined;

          if (op.kind === 'set') {
            const payload = op.payload ?? content ?? { user: 'alice', n: 0 };
            const sess = sessionOf(payload, expiresAt);
            await store.set(sid, sess);
            if (destroyed) expectRefusal = 'set';
            else {
              contentWrite = !alive || JSON.stringify(payload) !== JSON.stringify(content);
              if (contentWrite) {
                content = payload;
                stored = JSON.parse(JSON.stringify(sess)) as SessionData;
                // A new version: its expiry is its own, shorter or longer.
                expiry = expiresAt;
                written = expiresAt;
              } else {
                // The same content: a touch of the stored version, merged to the later expiry.
                expiry = Math.max(expiry, expiresAt);
                written = Math.max(written, expiresAt);
              }
            }
          } else if (op.kind === 'touch') {
            await store.touch(sid, sessionOf(content ?? { user: 'alice', n: 0 }, expiresAt));
            if (destroyed) expectRefusal = 'touch';
            else if (alive) {
              expiry = Math.max(expiry, expiresAt);
              // The metadata's expiry follows the value key's, so get reports the touched date too.
              written = Math.max(written, expiresAt);
            }
          } else {
            await store.destroy(sid);
            destroyed = true;
          }

          // refused events: exactly for writes after a destroy.
          expect(refused.slice(refusedBefore)).toEqual(
            expectRefusal ? [{ op: expectRefusal, sid, reason: 'destroyed' }] : [],
          );

          const seen = await observe(sid);
          const got = await store.get(sid);
          if (destroyed || content === undefined) {
            // (a) gone for good (or never created: touch never creates).
            expect(got).toBeNull();
            expect(seen.value).toBeNull();
            expect(seen.tombstone).toBe(destroyed);
            if (destroyed) expect(seen.metaExpiry).toBeGreaterThanOrEqual(expiry);
            continue;
          }
          // (d) the content of the last accepted content write (the value is never rewritten by a touch or
          // an unchanged write), with the cookie.expires of the last write or touch (the stored date moved
          // by how far later sets and touches moved the expiry, in Redis time: within the time a call takes).
          const { cookie: gotCookie, ...gotRest } = got as SessionData;
          const { cookie: storedCookie, ...storedRest } = stored as SessionData;
          expect(gotRest).toEqual(storedRest);
          expect(gotCookie?.originalMaxAge).toBe(storedCookie?.originalMaxAge);
          const reported = Date.parse(String(gotCookie?.expires));
          expect(Math.abs(reported - written)).toBeLessThan(SLACK_MS);
          // (b) the version moves on a content write, strictly up, and only then.
          expect(seen.version).toBeDefined();
          const next = seen.version as string;
          parseVersion(next);
          if (version === undefined || contentWrite) {
            if (version !== undefined) expect(compareText(next, version)).toBe(1);
          } else {
            expect(next).toBe(version);
          }
          // (c) expiry is the last content write's own, or later if sets of the same content and touches
          // asked for later since. This store does not replicate: a touch moves the value key (PEXPIRE GT)
          // and the metadata's expiry follows; the metadata outlives the value only while an earlier,
          // longer write could (it remembers the version).
          // (Replicating stores keep it exact: see test/replication/properties.test.ts.)
          // Expiries are made from the Redis clock (now + the remaining lifetime the host sent), so they land
          // a few ms after the model's host-clock figure, never before it.
          expect(seen.valueExpiry).toBeGreaterThanOrEqual(expiry);
          expect(seen.valueExpiry).toBeLessThan(expiry + SLACK_MS);
          expect(seen.x).toBeLessThan(expiry + SLACK_MS);
          expect(seen.metaExpiry).toBeLessThan(longest + SLACK_MS);
          expiry = seen.valueExpiry;
          version = next;
        }
      }),
      { numRuns: 150 },
    );
  }, 120_000);

  it('a new version is above the previous one, and text order agrees with (ms, counter) order', async () => {
    const produced: string[] = [];
    const nowMs = Date.now();
    const prevArb = fc.record({
      ms: fc.oneof(
        fc.integer({ min: nowMs - 365 * 86_400_000, max: nowMs + 365 * 86_400_000 }),
        fc.integer({ min: nowMs - 5, max: nowMs + 5_000 }), // close to now: the counter path
      ),
      counter: fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 9998, 9999)),
      region: fc.constantFrom('a', 'hk', 'kr', 'us-east-1', 'zz'),
    });
    const regionArb = fc.constantFrom('a', 'hk', 'kr', 'us-east-1', 'zz');
    const stores = new Map<string, GeoSessionStore>();
    const storeOf = (region: string) => {
      let s = stores.get(region);
      if (!s) {
        s = new GeoSessionStore({ region, client, prefix });
        stores.set(region, s);
      }
      return s;
    };

    await fc.assert(
      fc.asyncProperty(prevArb, regionArb, async (prevParts, region) => {
        const sid = `v${counter++}`;
        const prev = `${String(prevParts.ms).padStart(15, '0')}.${String(prevParts.counter).padStart(4, '0')}.${prevParts.region}`;
        const metaKey = `{${prefix}${sid}}:m`;
        // A previous write (from any region) left this version; no value, so the next set is a content write.
        await writeMeta(client, metaKey, { v: prev, f: 'previous-content', x: String(Date.now() + 60_000) });
        const before = Date.now();
        await storeOf(region).set(sid, sessionOf({ user: 'alice', n: 1 }, Date.now() + 60_000));
        const after = Date.now();
        const next = (await metaField(client, metaKey, 'v')) as string;
        const p = parseVersion(next);
        expect(p.region).toBe(region);
        expect(compareText(next, prev)).toBe(1);
        expect(compareTuple(next, prev)).toBe(1);
        if (prevParts.ms >= after + 1000) {
          // The previous version is ahead of the clock: the counter carries it forward.
          const expected =
            prevParts.counter === 9999
              ? { ms: prevParts.ms + 1, counter: 0 }
              : { ms: prevParts.ms, counter: prevParts.counter + 1 };
          expect({ ms: p.ms, counter: p.counter }).toEqual(expected);
        } else if (prevParts.ms < before - 1000) {
          // Behind the clock: a fresh wall-clock stamp.
          expect(p.counter).toBe(0);
          expect(p.ms).toBeGreaterThanOrEqual(before - 1000);
          expect(p.ms).toBeLessThanOrEqual(after + 1000);
        }
        produced.push(prev, next);
        await client.del(prefix + sid, metaKey);
      }),
      { numRuns: 200 },
    );

    // Bursts of content writes, pipelined on one connection so that many land in the same millisecond:
    // each gets a distinct version above the one before.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 40 }), regionArb, async (burst, region) => {
        const sid = `b${counter++}`;
        const metaKey = `{${prefix}${sid}}:m`;
        const expiresAt = Date.now() + 60_000;
        const reads: Promise<string | null>[] = [];
        const writes: Promise<void>[] = [];
        for (let i = 0; i < burst; i++) {
          // store.set sends its script synchronously, so the HGET that follows runs right after it.
          writes.push(storeOf(region).set(sid, sessionOf({ user: 'alice', n: i }, expiresAt)));
          reads.push(metaField(client, metaKey, 'v'));
        }
        await Promise.all(writes);
        const versions = (await Promise.all(reads)) as string[];
        for (let i = 1; i < versions.length; i++) {
          expect(compareText(versions[i] as string, versions[i - 1] as string)).toBe(1);
          expect(compareTuple(versions[i] as string, versions[i - 1] as string)).toBe(1);
        }
        produced.push(...versions);
        await client.del(prefix + sid, metaKey);
      }),
      { numRuns: 40 },
    );

    for (const s of stores.values()) await s.close();
    // Every pair of versions seen: plain string comparison agrees with (ms, counter, region) order.
    for (let i = 0; i < produced.length; i++) {
      for (let j = i + 1; j < produced.length; j++) {
        const a = produced[i] as string;
        const b = produced[j] as string;
        if (compareText(a, b) !== compareTuple(a, b)) {
          throw new Error(`text order and (ms, counter, region) order disagree on ${a} vs ${b}`);
        }
      }
    }
  }, 120_000);
});
