/**
 * The session change codec: the body of a `session` envelope. Every malformed part is refused with an
 * EventError, and valid changes survive a round trip unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import { EventError } from '../../src/errors.js';
import type { ChangeEvent } from '../../src/replication/events.js';
import {
  decodeSessionChange,
  encodeSessionChange,
  SESSION_KIND,
  sessionEnvelope,
} from '../../src/replication/session-codec.js';

const NOW = 1_700_000_000_000;
const V = `00${NOW}.0003.hk`;

const setEvent: ChangeEvent = {
  id: 'hk:1700000000000-0',
  origin: 'hk',
  time: NOW,
  sid: 'hk.abcdefghijklmnopqrstuvwx',
  op: 'set',
  version: V,
  expiresAt: NOW + 60_000,
  lifetimeMs: 60_000,
  fingerprint: 'f00d',
  data: '{"cookie":{"originalMaxAge":60000},"user":"ünïcødé \\"quoted\\"","lines":"a\\nb"}\nand a raw line break',
};
const touchEvent: ChangeEvent = {
  id: 'kr:1700000000001-3',
  origin: 'kr',
  time: NOW + 1,
  sid: 'legacy-sid',
  op: 'touch',
  version: `00${NOW}.0000.hk`,
  expiresAt: NOW + 120_000,
  lifetimeMs: 120_000,
};
const bareTouch: ChangeEvent = {
  id: 'us:5-0',
  origin: 'us',
  time: 5,
  sid: 's',
  op: 'touch',
  version: '',
  expiresAt: 0,
  lifetimeMs: 0,
};
const destroyEvent: ChangeEvent = {
  id: 'us:1700000000002-0',
  origin: 'us',
  time: NOW + 2,
  sid: 'hk.abcdefghijklmnopqrstuvwx',
  op: 'destroy',
  version: `00${NOW}.0001.us`,
  expiresAt: NOW + 86_400_000,
};
const samples = [setEvent, touchEvent, bareTouch, destroyEvent];

function envelope(body: string, id = 'hk:1-0'): Envelope {
  return { id, origin: 'hk', kind: SESSION_KIND, time: NOW, body };
}

/** The body of a valid set with one header part replaced. */
function spoil(part: number, value: string): string {
  const body = encodeSessionChange(setEvent);
  const eol = body.indexOf('\n');
  const parts = body.slice(0, eol).split('|');
  parts[part] = value;
  return `${parts.join('|')}${body.slice(eol)}`;
}

describe('decodeSessionChange: malformed bodies', () => {
  it.each([
    ['unknown op', spoil(0, 'x')],
    ['empty op', spoil(0, '')],
    ['long op name', spoil(0, 'set')],
    ['empty version of a set', spoil(1, '')],
    ['version without region', spoil(1, `00${NOW}.0003`)],
    ['version with a 13-digit ms', spoil(1, `${NOW}.0003.hk`)],
    ['version with short counter', spoil(1, `00${NOW}.03.hk`)],
    ['version with bad region', spoil(1, `00${NOW}.0003.HK`)],
    ['non-numeric expiry', spoil(2, 'soon')],
    ['negative expiry', spoil(2, '-5')],
    ['fractional expiry', spoil(2, '1.5')],
    ['unsafe expiry', spoil(2, '9'.repeat(20))],
    ['empty expiry', spoil(2, '')],
    ['hex expiry', spoil(2, '0x10')],
    ['empty lifetime of a set', spoil(3, '')],
    ['non-numeric lifetime', spoil(3, 'long')],
    ['empty fingerprint of a set', spoil(4, '')],
    ['empty sid', spoil(5, '')],
    ['sid with a brace', spoil(5, '{outbox}:kr')],
    ['sid too long', spoil(5, 'x'.repeat(257))],
    ['sid with a space', spoil(5, 'a b')],
    ['too few parts', 's|v|1|2|sid\n{}'],
    ['too many parts', `s|${V}|1|2|fp|sid|extra\n{}`],
    ['a set without data', `s|${V}|1|2|fp|sid`],
    ['a touch with data', `t|${V}|1|2||sid\n{}`],
    ['a destroy with data', `d|${V}|1|||sid\n{}`],
    ['an empty body', ''],
    ['a JSON body', JSON.stringify({ o: 's' })],
  ])('%s is an EventError', (_why, body) => {
    expect(() => decodeSessionChange(envelope(body))).toThrow(EventError);
  });

  it('a destroy needs a well-formed version too, a touch may have none but not a malformed one', () => {
    expect(() => decodeSessionChange(envelope('d||1|||sid'))).toThrow(EventError);
    expect(decodeSessionChange(envelope('t||1|2||sid')).version).toBe('');
    expect(() => decodeSessionChange(envelope('t|v1|1|2||sid'))).toThrow(EventError);
  });
});

describe('round trips', () => {
  it.each(samples.map((e) => [e.op, e] as const))(
    'sessionEnvelope / decodeSessionChange keep a %s',
    (_op, e) => {
      const env = sessionEnvelope(e);
      expect(env).toMatchObject({ id: e.id, origin: e.origin, kind: SESSION_KIND, time: e.time });
      expect(decodeSessionChange(env)).toEqual(e);
    },
  );

  it('reads a body exactly as set.lua writes it', () => {
    const body = `s|${V}|${NOW}|60000|fp|sid1\n{}`;
    expect(decodeSessionChange({ id: 'hk:5-1', origin: 'hk', kind: SESSION_KIND, time: NOW, body })).toEqual({
      id: 'hk:5-1',
      origin: 'hk',
      time: NOW,
      sid: 'sid1',
      op: 'set',
      version: V,
      expiresAt: NOW,
      lifetimeMs: 60_000,
      fingerprint: 'fp',
      data: '{}',
    });
  });

  it('refuses a set or destroy whose version was made by another region than its origin', () => {
    // hk's envelope carrying a set versioned by kr: a forged or corrupt change, refused as malformed.
    const set = encodeSessionChange({ ...setEvent, version: `00${NOW}.0003.kr` });
    expect(() => decodeSessionChange(envelope(set))).toThrow(/not made by its origin "hk"/);
    const destroy = encodeSessionChange({ ...destroyEvent, version: `00${NOW}.0001.kr` });
    expect(() => decodeSessionChange(envelope(destroy))).toThrow(EventError);
    // A region whose id ends another's is not that region.
    const suffix = encodeSessionChange({ ...setEvent, version: `00${NOW}.0003.xhk` });
    expect(() => decodeSessionChange(envelope(suffix))).toThrow(EventError);
    // Its own tag passes.
    expect(decodeSessionChange(envelope(encodeSessionChange({ ...destroyEvent, version: V }))).op).toBe(
      'destroy',
    );
  });

  it('accepts a touch carrying a version made in another region (the data version its origin held)', () => {
    const touch = encodeSessionChange({ ...touchEvent, version: `00${NOW}.0000.kr` });
    expect(decodeSessionChange(envelope(touch))).toMatchObject({ op: 'touch', version: `00${NOW}.0000.kr` });
  });

  it('keeps an empty session body (data "") as data', () => {
    const e = decodeSessionChange(envelope(`s|${V}|${NOW}|1|fp|sid\n`));
    expect(e.op === 'set' && e.data).toBe('');
  });

  it('property: any data and any valid id survive', () => {
    const sid = fc.string({
      unit: fc.constantFrom(...'abcXYZ019._-~!:=+/'.split('')),
      minLength: 1,
      maxLength: 40,
    });
    fc.assert(
      fc.property(sid, fc.string({ unit: 'binary', maxLength: 200 }), (id, data) => {
        const e: ChangeEvent = { ...setEvent, sid: id, data };
        expect(decodeSessionChange(sessionEnvelope(e))).toEqual(e);
      }),
    );
  });

  it('property: arbitrary bodies never throw anything but an EventError', () => {
    const parts = fc.constantFrom('s', 't', 'd', '|', '\n', '0', '1', 'x', '.', 'hk', V);
    fc.assert(
      fc.property(fc.array(parts, { maxLength: 30 }), (pieces) => {
        try {
          decodeSessionChange(envelope(pieces.join('')));
        } catch (error) {
          expect(error).toBeInstanceOf(EventError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
