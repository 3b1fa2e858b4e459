/**
 * apply.lua through the Applier, case by case: version and expiry merges, touches that arrive before
 * their set, tombstones, expired events, touch coalescing, failing batches, and the checks every remote
 * change passes first (stale-event horizon, clock skew, touches beyond the session's lifetime rule).
 * Runs against the machine's Redis under a unique prefix (one region: 'kr').
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { Applier, coalesceTouches } from '../../src/replication/applier.js';
import type { DestroyEvent, SetEvent, TouchEvent } from '../../src/replication/events.js';
import { sessionState, version } from '../helpers/meta.js';
import { dropKeys, hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
let seq = 0;
let sid = '';

function setEv(v: string, expiresAt: number, data: string, origin = 'hk', lifetimeMs = DAY): SetEvent {
  return {
    id: `${origin}:${++seq}-0`,
    origin,
    time: Date.now(),
    sid,
    op: 'set',
    version: v,
    expiresAt,
    lifetimeMs,
    fingerprint: `fp-${data}`,
    data,
  };
}

/** A touch of version `v` ('' for a session whose data its region did not have). */
function touchEv(expiresAt: number, origin = 'hk', lifetimeMs = DAY, v = ''): TouchEvent {
  return {
    id: `${origin}:${++seq}-0`,
    origin,
    time: Date.now(),
    sid,
    op: 'touch',
    version: v,
    expiresAt,
    lifetimeMs,
  };
}

function destroyEv(v: string, expiresAt: number, origin = 'us'): DestroyEvent {
  return { id: `${origin}:${++seq}-0`, origin, time: Date.now(), sid, op: 'destroy', version: v, expiresAt };
}

describe('coalesceTouches', () => {
  it('merges touches of one session from one origin into the latest expiry', () => {
    sid = 'c1';
    const a = touchEv(1000, 'hk');
    const b = touchEv(3000, 'hk');
    const c = touchEv(2000, 'hk');
    const other = touchEv(500, 'us');
    const set = setEv(version(1, 0, 'hk'), 100, 'x');
    const { events, coalesced } = coalesceTouches([a, set, b, other, c]);
    expect(coalesced).toBe(2);
    expect(events).toHaveLength(3);
    expect(events[0]).toBe(set);
    const merged = events.find((e) => e.op === 'touch' && e.origin === 'hk');
    expect(merged?.expiresAt).toBe(3000);
    expect(events.find((e) => e.origin === 'us')).toBe(other);
  });

  it('treats 0 (never) as the latest expiry', () => {
    sid = 'c2';
    const { events } = coalesceTouches([touchEv(5000, 'hk'), touchEv(0, 'hk'), touchEv(9000)]);
    expect(events).toHaveLength(1);
    expect(events[0]?.expiresAt).toBe(0);
  });

  it('never merges touches of different versions: the later expiry of a lower version keeps the metadata alive', () => {
    // Found by the replication property test: merged into the higher version's touch, the lower one's
    // later expiry was lost, and the metadata key outlived the session 1 ms less in that region.
    sid = 'c5';
    const lower = touchEv(2000, 'hk', DAY, '');
    const higher = touchEv(1000, 'hk', DAY, version(1, 0, 'hk'));
    expect(coalesceTouches([lower, higher])).toEqual({ events: [lower, higher], coalesced: 0 });
  });

  it('never merges touches of different sessions', () => {
    sid = 'c3';
    const a = touchEv(1000);
    sid = 'c4';
    const b = touchEv(2000);
    expect(coalesceTouches([a, b])).toEqual({ events: [a, b], coalesced: 0 });
  });
});

describe.skipIf(!hasRedis)('Applier (apply.lua)', () => {
  const client = sharedRedis();
  const prefix = uniquePrefix('applier');
  const keys = createKeySpace(prefix);
  const horizonMs = 10 * MIN;
  const maxSkewMs = MIN;
  const applier = new Applier({ client, keys, horizonMs, maxSkewMs, timeoutMs: 2000 });
  const apply = async (events: (SetEvent | TouchEvent | DestroyEvent)[]) =>
    (await applier.apply(events)).outcome;
  let n = 0;

  beforeEach(() => {
    sid = `s${++n}`;
  });

  afterAll(async () => {
    await dropKeys(client, prefix);
    client.disconnect();
  });

  const state = () => sessionState(client, keys, sid);

  it('stores a set with its version, fingerprint, absolute expiry and cookie expiry', async () => {
    const x = Date.now() + 10 * MIN;
    const v = version(Date.now(), 0, 'hk');
    expect(await apply([setEv(v, x, '{"a":1}')])).toMatchObject({ applied: 1 });
    const s = await state();
    expect(s.value).toBe('{"a":1}');
    expect(s.meta).toEqual({ v, f: 'fp-{"a":1}', x: String(x), r: String(x), l: String(DAY) });
    expect(s.valueAt).toBe(x);
    expect(s.metaAt).toBe(x);
    // The very same event again changes nothing.
    expect(await apply([setEv(v, x, '{"a":1}')])).toMatchObject({ applied: 0, unchanged: 1 });
    expect(await state()).toEqual(s);
  });

  it('an older set arriving after a newer one changes nothing: the newer version wins data and expiry', async () => {
    const t = Date.now();
    const newer = setEv(version(t, 1, 'us'), t + 10 * MIN, 'new', 'us');
    const older = setEv(version(t, 0, 'hk'), t + 30 * MIN, 'old', 'hk');
    await apply([newer]);
    const before = await state();
    expect(await apply([older])).toMatchObject({ applied: 0, unchanged: 1 });
    const s = await state();
    expect({ ...s, metaAt: 0 }).toEqual({ ...before, metaAt: 0 });
    expect(s.value).toBe('new');
    expect(s.meta).toMatchObject({
      v: newer.version,
      f: 'fp-new',
      x: String(t + 10 * MIN),
      r: String(t + 10 * MIN),
    });
    expect(s.valueAt).toBe(t + 10 * MIN);
    // The other order gives the same state; either way the metadata outlives the shorter expiry as long
    // as the older set's could revive the session.
    expect(s.metaAt).toBe(t + 30 * MIN);
    sid = `${sid}-rev`;
    await apply([{ ...older, sid }]);
    await apply([{ ...newer, sid }]);
    const rev = await state();
    expect({ ...rev, metaAt: 0 }).toEqual({ ...s, metaAt: 0 });
    expect(rev.metaAt).toBe(t + 30 * MIN);
    // An older set with an earlier expiry changes nothing at all.
    const stale = setEv(version(t - 5, 0, 'hk'), t + 5 * MIN, 'stale');
    expect(await apply([stale])).toMatchObject({ applied: 0, unchanged: 1 });
    expect(await state()).toEqual(s);
  });

  it('a newer set shortens a session an older one made longer ("remember me" turned off)', async () => {
    const t = Date.now();
    await apply([setEv(version(t, 0, 'hk'), t + 30 * MIN, 'old')]);
    await apply([touchEv(t + 40 * MIN, 'hk', DAY, version(t, 0, 'hk'))]);
    await apply([setEv(version(t, 1, 'hk'), t + 10 * MIN, 'new')]);
    const s = await state();
    expect(s.value).toBe('new');
    expect(s.valueAt).toBe(t + 10 * MIN);
    expect(s.meta.x).toBe(String(t + 10 * MIN));
    // A late touch of the older version changes nothing.
    expect(await apply([touchEv(t + 50 * MIN, 'us', DAY, version(t, 0, 'hk'))])).toMatchObject({
      unchanged: 1,
    });
    expect((await state()).valueAt).toBe(t + 10 * MIN);
  });

  it('a newer set and a longer touch of the older version give the same state in either order', async () => {
    const t = Date.now();
    const v1 = setEv(version(t, 0, 'hk'), t + 30 * MIN, 'v1');
    const v2 = setEv(version(t, 1, 'hk'), t + 10 * MIN, 'v2');
    const touch1 = touchEv(t + 60 * MIN, 'us', DAY, v1.version);
    const touch2 = touchEv(t + 20 * MIN, 'jp', DAY, v2.version);
    const orders = [
      [v1, v2, touch1, touch2],
      [v1, touch1, v2, touch2],
      [touch2, v1, touch1, v2],
      [touch1, touch2, v2, v1],
      [v2, touch1, v1, touch2],
    ];
    const states = [];
    const base = sid;
    for (const [i, order] of orders.entries()) {
      sid = `${base}-${i}`;
      for (const e of order) await apply([{ ...(e as SetEvent | TouchEvent), sid }]);
      const st = await state();
      states.push({ value: st.value, v: st.meta.v, x: st.meta.x, valueAt: st.valueAt, e: st.meta.e });
    }
    for (const st of states)
      expect(st).toEqual({
        value: 'v2',
        v: v2.version,
        x: String(t + 20 * MIN),
        valueAt: t + 20 * MIN,
        e: undefined,
      });
  });

  it('ties on ms and counter break on the region id, the same way in any order', async () => {
    const t = Date.now();
    const a = setEv(version(t, 0, 'hk'), t + MIN, 'from-hk', 'hk');
    const b = setEv(version(t, 0, 'us'), t + MIN, 'from-us', 'us');
    await apply([b]);
    await apply([a]);
    const first = await state();
    sid = `${sid}-rev`;
    await apply([{ ...a, sid }]);
    await apply([{ ...b, sid }]);
    const second = await state();
    expect(first.value).toBe('from-us');
    expect(second).toEqual(first);
  });

  it('a touch that arrives before its set is remembered and merged when the set arrives', async () => {
    const t = Date.now();
    const touch = touchEv(t + 60 * MIN, 'hk', DAY, version(t, 0, 'hk'));
    expect(await apply([touch])).toMatchObject({ applied: 1 });
    let s = await state();
    expect(s.value).toBeNull();
    expect(s.meta).toEqual({
      x: String(t + 60 * MIN),
      r: String(t + 60 * MIN),
      l: String(DAY),
      e: version(t, 0, 'hk'),
    });
    expect(s.metaAt).toBe(t + 60 * MIN);
    await apply([setEv(version(t, 0, 'hk'), t + 10 * MIN, 'data')]);
    s = await state();
    expect(s.value).toBe('data');
    expect(s.valueAt).toBe(t + 60 * MIN);
    expect(s.meta).toMatchObject({ v: version(t, 0, 'hk'), x: String(t + 60 * MIN) });
  });

  it('a touch of the same version moves expiry forward only, never back, and never rewrites the value', async () => {
    const t = Date.now();
    const v = version(t, 0, 'hk');
    await apply([setEv(v, t + 10 * MIN, 'data')]);
    await client.set(keys.session(sid), 'marker', 'KEEPTTL');
    expect(await apply([touchEv(t + 5 * MIN, 'hk', DAY, v)])).toMatchObject({ unchanged: 1 });
    expect((await state()).valueAt).toBe(t + 10 * MIN);
    // A touch of no version (its region had no data) changes nothing once data is here.
    expect(await apply([touchEv(t + 15 * MIN)])).toMatchObject({ unchanged: 1 });
    expect((await state()).valueAt).toBe(t + 10 * MIN);
    expect(await apply([touchEv(t + 20 * MIN, 'hk', DAY, v)])).toMatchObject({ applied: 1 });
    const s = await state();
    expect(s.value).toBe('marker');
    expect(s.valueAt).toBe(t + 20 * MIN);
    expect(s.metaAt).toBe(t + 20 * MIN);
    expect(s.meta.x).toBe(String(t + 20 * MIN));
  });

  it('a destroy removes the session and leaves a tombstone that outlives it', async () => {
    const t = Date.now();
    await apply([setEv(version(t, 0, 'hk'), t + 90 * MIN, 'data')]);
    const d = destroyEv(version(t, 1, 'us'), t + 30 * MIN);
    expect(await apply([d])).toMatchObject({ applied: 1 });
    const s = await state();
    expect(s.value).toBeNull();
    expect(s.meta).toEqual({ t: '1', v: d.version, x: String(t + 90 * MIN) });
    expect(s.metaAt).toBe(t + 90 * MIN);
    expect(await apply([d])).toMatchObject({ unchanged: 1 });
  });

  it('a tombstone absorbs later sets and touches and extends its own expiry to theirs', async () => {
    const t = Date.now();
    const d = destroyEv(version(t, 0, 'us'), t + 30 * MIN);
    await apply([d]);
    // A set with a higher version (a concurrent write elsewhere) never revives the session.
    const late = setEv(version(t + 5, 0, 'hk'), t + 60 * MIN, 'revived?');
    expect(await apply([late])).toMatchObject({ refused: 1 });
    let s = await state();
    expect(s.value).toBeNull();
    expect(s.meta).toMatchObject({ t: '1', x: String(t + 60 * MIN) });
    expect(s.metaAt).toBe(t + 60 * MIN);
    expect(await apply([touchEv(t + 120 * MIN, 'kr2')])).toMatchObject({ refused: 1 });
    s = await state();
    expect(s.value).toBeNull();
    expect(s.meta).toMatchObject({ t: '1', x: String(t + 120 * MIN) });
    expect(s.metaAt).toBe(t + 120 * MIN);
    // Earlier expiries never shorten it.
    await apply([touchEv(t + MIN), setEv(version(t - 1, 0, 'hk'), t + MIN, 'old')]);
    expect((await state()).metaAt).toBe(t + 120 * MIN);
  });

  it('a destroy and a concurrent newer set leave the same tombstone whichever arrives first', async () => {
    const t = Date.now();
    const d = destroyEv(version(t, 0, 'us'), t + 30 * MIN);
    const s = setEv(version(t + 3, 0, 'hk'), t + 20 * MIN, 'concurrent');
    await apply([d]);
    await apply([s]);
    const first = await state();
    sid = `${sid}-rev`;
    await apply([{ ...s, sid }]);
    await apply([{ ...d, sid }]);
    const second = await state();
    expect(first.value).toBeNull();
    expect(second).toEqual(first);
    expect(first.meta).toEqual({ t: '1', v: s.version, x: String(t + 30 * MIN) });
  });

  // Known limitation (pinned, not fixed): when regions disagree on disableTTL, a never-expiring write
  // (x = 0) absorbs an earlier finite expiry in the live state, and a destroy arriving after both then
  // ignores it (0 is not a lifetime a tombstone can copy). A tombstone that arrived first was extended
  // by that finite expiry instead, so the two orders leave tombstones with different expiries.
  it.fails('a tombstone converges when finite and never-expiring writes mix (mixed disableTTL)', async () => {
    const t = Date.now();
    const finite = setEv(version(t, 0, 'hk'), t + 60 * MIN, 'finite');
    const forever = setEv(version(t + 1, 0, 'us'), 0, 'forever', 'us');
    const d = destroyEv(version(t + 2, 0, 'jp'), t + 10 * MIN, 'jp');
    for (const e of [finite, forever, d]) await apply([e]);
    const first = await state();
    sid = `${sid}-rev`;
    for (const e of [d, finite, forever]) await apply([{ ...e, sid }]);
    expect(await state()).toEqual(first);
  });

  it('events already expired on arrival store nothing', async () => {
    const t = Date.now();
    const out = await apply([setEv(version(t, 0, 'hk'), t - 1000, 'gone')]);
    expect(out).toMatchObject({ expired: 1, applied: 0 });
    expect(await state()).toEqual({ value: null, meta: {}, valueAt: -2, metaAt: -2 });
    expect(await apply([touchEv(t - 1000)])).toMatchObject({ expired: 1 });
    expect(await apply([destroyEv(version(t, 1, 'us'), t - 1000)])).toMatchObject({ expired: 1 });
    expect(await state()).toEqual({ value: null, meta: {}, valueAt: -2, metaAt: -2 });
  });

  it('a newer set whose own expiry passed ends the session; a same-version touch that passed changes nothing', async () => {
    const t = Date.now();
    const v = version(t, 0, 'hk');
    await apply([setEv(v, t + MIN, 'live')]);
    expect(await apply([touchEv(t - 1, 'hk', DAY, v)])).toMatchObject({ unchanged: 1 });
    expect((await state()).valueAt).toBe(t + MIN);
    expect(await apply([setEv(version(t, 1, 'hk'), t - 1, 'late')])).toMatchObject({ expired: 1 });
    const s = await state();
    expect(s.value).toBeNull();
    // The metadata remembers the newer version while the older set could revive the session.
    expect(s.meta.v).toBe(version(t, 1, 'hk'));
    expect(await apply([setEv(v, t + MIN, 'live')])).toMatchObject({ unchanged: 1 });
    expect((await state()).value).toBeNull();
  });

  it('coalesces the touches of a batch to the latest expiry', async () => {
    const t = Date.now();
    await apply([setEv(version(t, 0, 'hk'), t + MIN, 'data')]);
    const v = version(t, 0, 'hk');
    const out = await apply([
      touchEv(t + 5 * MIN, 'hk', DAY, v),
      touchEv(t + 9 * MIN, 'hk', DAY, v),
      touchEv(t + 7 * MIN, 'hk', DAY, v),
    ]);
    expect(out).toMatchObject({ coalesced: 2, applied: 1 });
    const s = await state();
    expect(s.valueAt).toBe(t + 9 * MIN);
    expect(s.meta).toMatchObject({ x: String(t + 9 * MIN), r: String(t + 9 * MIN) });
  });

  it('a batch with one failing call rejects, and applying it again completes it', async () => {
    const t = Date.now();
    const good = setEv(version(t, 0, 'hk'), t + MIN, 'good');
    const badSid = `${sid}-bad`;
    const bad: SetEvent = { ...setEv(version(t, 0, 'hk'), t + MIN, 'bad'), sid: badSid };
    // The metadata key of one session is not a string: GET fails with WRONGTYPE inside the script.
    await client.hset(keys.meta(badSid), 'not', 'a string');
    await expect(applier.apply([good, bad])).rejects.toThrow(/WRONGTYPE/);
    await client.del(keys.meta(badSid));
    // The transport redelivers the whole batch: what was applied before is a harmless duplicate.
    const out = await apply([good, bad]);
    expect(out.applied + out.unchanged).toBe(2);
    expect((await state()).value).toBe('good');
    expect(await client.get(keys.session(badSid))).toBe('bad');
  });

  it('refuses a set or touch older than the stale-event horizon, but still applies a late destroy', async () => {
    const t = Date.now();
    await apply([setEv(version(t, 0, 'hk'), t + 60 * MIN, 'live')]);
    const before = await state();
    const oldSet = {
      ...setEv(version(t - 20 * MIN, 0, 'us'), t + 90 * MIN, 'revived', 'us'),
      time: t - 20 * MIN,
    };
    const oldTouch = { ...touchEv(t + 120 * MIN, 'us'), time: t - 11 * MIN };
    const { outcome, oldFrom } = await applier.apply([oldSet, oldTouch]);
    expect(outcome).toMatchObject({ stale: 2, applied: 0 });
    expect([...oldFrom]).toEqual(['us']);
    expect(await state()).toEqual(before);
    // A destroy made long ago still ends the session (ending one can never revive one) and is flagged.
    const lateDestroy = {
      ...destroyEv(version(t - 30 * MIN, 0, 'jp'), t + 30 * MIN, 'jp'),
      time: t - 30 * MIN,
    };
    const late = await applier.apply([lateDestroy]);
    expect(late.outcome).toMatchObject({ applied: 1 });
    expect([...late.oldFrom]).toEqual(['jp']);
    expect((await state()).meta.t).toBe('1');
  });

  it('refuses a version or event time too far ahead of its clock (a forged or broken origin cannot pin a session)', async () => {
    const t = Date.now();
    await apply([setEv(version(t, 0, 'hk'), t + 30 * MIN, 'genuine')]);
    const before = await state();
    const pinned = setEv('999999999999999.9999.hk', t + 30 * MIN, 'pinned');
    const ahead = {
      ...setEv(version(t + 10 * MIN, 0, 'us'), t + 40 * MIN, 'ahead', 'us'),
      time: t + 10 * MIN,
    };
    const forgedDestroy = destroyEv(version(t + 10 * MIN, 0, 'us'), t + 30 * MIN);
    expect(await apply([pinned, ahead, forgedDestroy])).toMatchObject({ skewed: 3, applied: 0 });
    expect(await state()).toEqual(before);
    // A later genuine write still wins, and its version has the normal width.
    const next = setEv(version(t + 1, 0, 'us'), t + 30 * MIN, 'next', 'us');
    expect(await apply([next])).toMatchObject({ applied: 1 });
    expect((await state()).value).toBe('next');
  });

  it('refuses a touch that would remove the expiry or reach past the session’s lifetime rule', async () => {
    const t = Date.now();
    await apply([setEv(version(t, 0, 'hk'), t + 10 * MIN, 'data', 'hk', 30 * MIN)]);
    const before = await state();
    expect(await apply([touchEv(0)])).toMatchObject({ invalid: 1 });
    expect(await apply([touchEv(t + 5 * DAY, 'hk', 5 * DAY)])).toMatchObject({ invalid: 1 });
    expect(await state()).toEqual(before);
    expect(await apply([touchEv(t + 25 * MIN, 'hk', 30 * MIN, version(t, 0, 'hk'))])).toMatchObject({
      applied: 1,
    });
    expect((await state()).valueAt).toBe(t + 25 * MIN);
    // A touch that arrives before its set is held to its own rule, and a set ignores an earlier
    // expiry that reaches past the set's own rule.
    sid = `${sid}-early`;
    expect(await apply([touchEv(t + 3 * DAY, 'us', 5 * DAY)])).toMatchObject({ applied: 1 });
    await apply([setEv(version(t, 0, 'hk'), t + 10 * MIN, 'data', 'hk', 30 * MIN)]);
    expect((await state()).valueAt).toBe(t + 10 * MIN);
  });

  it('a touch that arrives before its set cannot make the session immortal (expiry 0, lifetime 0)', async () => {
    const t = Date.now();
    // A forged touch that claims "never expires" under its own rule of "no lifetime": accepted, since
    // nothing is known of the session yet, and remembered as metadata only.
    expect(await apply([touchEv(0, 'us', 0)])).toMatchObject({ applied: 1 });
    expect((await state()).value).toBeNull();
    // The genuine set arrives: its own rule holds, the touch's "never" is ignored.
    await apply([setEv(version(t, 0, 'hk'), t + 10 * MIN, 'data', 'hk', 30 * MIN)]);
    const s = await state();
    expect(s.value).toBe('data');
    expect(s.valueAt).toBe(t + 10 * MIN);
    expect(s.meta).toMatchObject({ x: String(t + 10 * MIN), r: String(t + 10 * MIN), l: String(30 * MIN) });
    // And later touches of the session are held to that rule.
    expect(await apply([touchEv(0, 'us', 0)])).toMatchObject({ invalid: 1 });
  });
});
