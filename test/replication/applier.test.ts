/**
 * apply.lua through the Applier, case by case: version and expiry merges, touches that arrive before
 * their set, tombstones, expired events, own-region events, touch coalescing and failing batches.
 * Runs against the machine's Redis under a unique prefix (one region: 'kr').
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeySpace } from '../../src/keys.js';
import { Applier, coalesceTouches } from '../../src/replication/applier.js';
import type { DestroyEvent, SetEvent, TouchEvent } from '../../src/replication/events.js';
import { sessionState } from '../helpers/meta.js';
import { hasRedis, sharedRedis, uniquePrefix } from '../helpers/servers.js';

const MIN = 60_000;
let seq = 0;
let sid = '';

function version(ms: number, counter: number, region: string): string {
  return `${String(ms).padStart(13, '0')}.${String(counter).padStart(4, '0')}.${region}`;
}

function setEv(v: string, expiresAt: number, data: string, origin = 'hk'): SetEvent {
  return {
    id: `${origin}:${++seq}-0`,
    origin,
    sid,
    op: 'set',
    version: v,
    expiresAt,
    cookieExpires: expiresAt,
    fingerprint: `fp-${data}`,
    data,
  };
}

function touchEv(
  expiresAt: number,
  origin = 'hk',
  cookieExpires: number | undefined = expiresAt,
): TouchEvent {
  return {
    id: `${origin}:${++seq}-0`,
    origin,
    sid,
    op: 'touch',
    version: '',
    expiresAt,
    ...(cookieExpires === undefined ? {} : { cookieExpires }),
  };
}

function destroyEv(v: string, expiresAt: number, origin = 'us'): DestroyEvent {
  return { id: `${origin}:${++seq}-0`, origin, sid, op: 'destroy', version: v, expiresAt };
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
    expect(merged?.op === 'touch' && merged.cookieExpires).toBe(3000);
    expect(events.find((e) => e.origin === 'us')).toBe(other);
  });

  it('treats 0 (never) as the latest expiry and keeps a cookie expiry from either side', () => {
    sid = 'c2';
    const { events } = coalesceTouches([
      touchEv(5000, 'hk', undefined),
      touchEv(0, 'hk', 7000),
      touchEv(9000),
    ]);
    expect(events).toHaveLength(1);
    expect(events[0]?.expiresAt).toBe(0);
    expect(events[0]?.op === 'touch' && events[0].cookieExpires).toBe(9000);
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
  const applier = new Applier(client, keys, 'kr');
  let n = 0;

  beforeEach(() => {
    sid = `s${++n}`;
  });

  afterAll(async () => {
    const found = [...(await client.keys(`${prefix}*`)), ...(await client.keys(`{${prefix}*`))];
    if (found.length > 0) await client.del(...found);
    client.disconnect();
  });

  const state = () => sessionState(client, keys, sid);

  it('stores a set with its version, fingerprint, absolute expiry and cookie expiry', async () => {
    const x = Date.now() + 10 * MIN;
    const v = version(Date.now(), 0, 'hk');
    expect(await applier.apply([setEv(v, x, '{"a":1}')])).toMatchObject({ applied: 1 });
    const s = await state();
    expect(s.value).toBe('{"a":1}');
    expect(s.meta).toEqual({ v, f: 'fp-{"a":1}', x: String(x), e: String(x) });
    expect(s.valueAt).toBe(x);
    expect(s.metaAt).toBe(x);
    // The very same event again changes nothing.
    expect(await applier.apply([setEv(v, x, '{"a":1}')])).toMatchObject({ applied: 0, unchanged: 1 });
    expect(await state()).toEqual(s);
  });

  it('an older set arriving after a newer one keeps the newer data but takes its later expiry', async () => {
    const t = Date.now();
    const newer = setEv(version(t, 1, 'us'), t + 10 * MIN, 'new', 'us');
    const older = setEv(version(t, 0, 'hk'), t + 30 * MIN, 'old', 'hk');
    await applier.apply([newer]);
    expect(await applier.apply([older])).toMatchObject({ applied: 1 });
    const s = await state();
    expect(s.value).toBe('new');
    expect(s.meta).toMatchObject({
      v: newer.version,
      f: 'fp-new',
      x: String(t + 30 * MIN),
      e: String(t + 30 * MIN),
    });
    expect(s.valueAt).toBe(t + 30 * MIN);
    expect(s.metaAt).toBe(t + 30 * MIN);
    // An older set with an earlier expiry changes nothing at all.
    const stale = setEv(version(t - 5, 0, 'hk'), t + 5 * MIN, 'stale');
    expect(await applier.apply([stale])).toMatchObject({ applied: 0, unchanged: 1 });
    expect(await state()).toEqual(s);
  });

  it('a newer set keeps an expiry that an older one already pushed further', async () => {
    const t = Date.now();
    await applier.apply([setEv(version(t, 0, 'hk'), t + 30 * MIN, 'old')]);
    await applier.apply([setEv(version(t, 1, 'hk'), t + 10 * MIN, 'new')]);
    const s = await state();
    expect(s.value).toBe('new');
    expect(s.valueAt).toBe(t + 30 * MIN);
    expect(s.meta.x).toBe(String(t + 30 * MIN));
  });

  it('ties on ms and counter break on the region id, the same way in any order', async () => {
    const t = Date.now();
    const a = setEv(version(t, 0, 'hk'), t + MIN, 'from-hk', 'hk');
    const b = setEv(version(t, 0, 'us'), t + MIN, 'from-us', 'us');
    await applier.apply([b]);
    await applier.apply([a]);
    const first = await state();
    sid = `${sid}-rev`;
    await applier.apply([{ ...a, sid }]);
    await applier.apply([{ ...b, sid }]);
    const second = await state();
    expect(first.value).toBe('from-us');
    expect(second).toEqual(first);
  });

  it('a touch that arrives before its set is remembered and merged when the set arrives', async () => {
    const t = Date.now();
    const touch = touchEv(t + 60 * MIN, 'hk');
    expect(await applier.apply([touch])).toMatchObject({ applied: 1 });
    let s = await state();
    expect(s.value).toBeNull();
    expect(s.meta).toEqual({ x: String(t + 60 * MIN), e: String(t + 60 * MIN) });
    expect(s.metaAt).toBe(t + 60 * MIN);
    await applier.apply([setEv(version(t, 0, 'hk'), t + 10 * MIN, 'data')]);
    s = await state();
    expect(s.value).toBe('data');
    expect(s.valueAt).toBe(t + 60 * MIN);
    expect(s.meta).toMatchObject({
      v: version(t, 0, 'hk'),
      x: String(t + 60 * MIN),
      e: String(t + 60 * MIN),
    });
  });

  it('a touch moves expiry forward only, never back, and never rewrites the value', async () => {
    const t = Date.now();
    await applier.apply([setEv(version(t, 0, 'hk'), t + 10 * MIN, 'data')]);
    await client.set(keys.session(sid), 'marker', 'KEEPTTL');
    expect(await applier.apply([touchEv(t + 5 * MIN)])).toMatchObject({ unchanged: 1 });
    expect((await state()).valueAt).toBe(t + 10 * MIN);
    expect(await applier.apply([touchEv(t + 20 * MIN)])).toMatchObject({ applied: 1 });
    const s = await state();
    expect(s.value).toBe('marker');
    expect(s.valueAt).toBe(t + 20 * MIN);
    expect(s.metaAt).toBe(t + 20 * MIN);
    expect(s.meta.x).toBe(String(t + 20 * MIN));
  });

  it('a destroy removes the session and leaves a tombstone that outlives it', async () => {
    const t = Date.now();
    await applier.apply([setEv(version(t, 0, 'hk'), t + 90 * MIN, 'data')]);
    const d = destroyEv(version(t, 1, 'us'), t + 30 * MIN);
    expect(await applier.apply([d])).toMatchObject({ applied: 1 });
    const s = await state();
    expect(s.value).toBeNull();
    expect(s.meta).toEqual({ t: '1', v: d.version, x: String(t + 90 * MIN) });
    expect(s.metaAt).toBe(t + 90 * MIN);
    expect(await applier.apply([d])).toMatchObject({ unchanged: 1 });
  });

  it('a tombstone absorbs later sets and touches and extends its own expiry to theirs', async () => {
    const t = Date.now();
    const d = destroyEv(version(t, 0, 'us'), t + 30 * MIN);
    await applier.apply([d]);
    // A set with a higher version (a concurrent write elsewhere) never revives the session.
    const late = setEv(version(t + 5, 0, 'hk'), t + 60 * MIN, 'revived?');
    expect(await applier.apply([late])).toMatchObject({ refused: 1 });
    let s = await state();
    expect(s.value).toBeNull();
    expect(s.meta).toMatchObject({ t: '1', x: String(t + 60 * MIN) });
    expect(s.metaAt).toBe(t + 60 * MIN);
    expect(await applier.apply([touchEv(t + 120 * MIN, 'kr2')])).toMatchObject({ refused: 1 });
    s = await state();
    expect(s.value).toBeNull();
    expect(s.meta).toMatchObject({ t: '1', x: String(t + 120 * MIN) });
    expect(s.metaAt).toBe(t + 120 * MIN);
    // Earlier expiries never shorten it.
    await applier.apply([touchEv(t + MIN), setEv(version(t - 1, 0, 'hk'), t + MIN, 'old')]);
    expect((await state()).metaAt).toBe(t + 120 * MIN);
  });

  it('a destroy and a concurrent newer set leave the same tombstone whichever arrives first', async () => {
    const t = Date.now();
    const d = destroyEv(version(t, 0, 'us'), t + 30 * MIN);
    const s = setEv(version(t + 3, 0, 'hk'), t + 20 * MIN, 'concurrent');
    await applier.apply([d]);
    await applier.apply([s]);
    const first = await state();
    sid = `${sid}-rev`;
    await applier.apply([{ ...s, sid }]);
    await applier.apply([{ ...d, sid }]);
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
    for (const e of [finite, forever, d]) await applier.apply([e]);
    const first = await state();
    sid = `${sid}-rev`;
    for (const e of [d, finite, forever]) await applier.apply([{ ...e, sid }]);
    expect(await state()).toEqual(first);
  });

  it('events already expired on arrival store nothing', async () => {
    const t = Date.now();
    const out = await applier.apply([setEv(version(t, 0, 'hk'), t - 1000, 'gone')]);
    expect(out).toMatchObject({ expired: 1, applied: 0 });
    expect(await state()).toEqual({ value: null, meta: {}, valueAt: -2, metaAt: -2 });
    expect(await applier.apply([touchEv(t - 1000)])).toMatchObject({ expired: 1 });
    expect(await applier.apply([destroyEv(version(t, 1, 'us'), t - 1000)])).toMatchObject({ expired: 1 });
    expect(await state()).toEqual({ value: null, meta: {}, valueAt: -2, metaAt: -2 });
  });

  it('an event whose own expiry passed still merges into a live session: expiry is the later one', async () => {
    const t = Date.now();
    // A live session whose later expiry keeps a late-arriving but expired event harmless.
    await applier.apply([setEv(version(t, 0, 'hk'), t + MIN, 'live')]);
    expect(await applier.apply([setEv(version(t, 1, 'hk'), t - 1, 'late')])).toMatchObject({ applied: 1 });
    expect((await state()).value).toBe('late');
    expect((await state()).valueAt).toBe(t + MIN);
  });

  it('ignores events of its own region', async () => {
    const t = Date.now();
    const own = [
      setEv(version(t, 0, 'kr'), t + MIN, 'mine', 'kr'),
      touchEv(t + 2 * MIN, 'kr'),
      destroyEv(version(t, 1, 'kr'), t + MIN, 'kr'),
    ];
    expect(await applier.apply(own)).toEqual({
      applied: 0,
      unchanged: 0,
      expired: 0,
      refused: 0,
      coalesced: 0,
    });
    expect(await state()).toEqual({ value: null, meta: {}, valueAt: -2, metaAt: -2 });
  });

  it('coalesces the touches of a batch to the latest expiry', async () => {
    const t = Date.now();
    await applier.apply([setEv(version(t, 0, 'hk'), t + MIN, 'data')]);
    const out = await applier.apply([touchEv(t + 5 * MIN), touchEv(t + 9 * MIN), touchEv(t + 7 * MIN)]);
    expect(out).toMatchObject({ coalesced: 2, applied: 1 });
    const s = await state();
    expect(s.valueAt).toBe(t + 9 * MIN);
    expect(s.meta).toMatchObject({ x: String(t + 9 * MIN), e: String(t + 9 * MIN) });
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
    const out = await applier.apply([good, bad]);
    expect(out.applied + out.unchanged).toBe(2);
    expect((await state()).value).toBe('good');
    expect(await client.get(keys.session(badSid))).toBe('bad');
  });
});
