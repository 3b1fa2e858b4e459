/**
 * The change-event codec: every malformed field is refused with an EventError, and valid events survive
 * both encodings (broker JSON body and outbox field list) unchanged.
 */
import { describe, expect, it } from 'vitest';
import { EventError } from '../../src/errors.js';
import {
  decodeEvent,
  encodeEvent,
  eventFromOutbox,
  eventToFields,
  eventToFlat,
  type OutboxFields,
} from '../../src/replication/codec.js';
import type { ChangeEvent } from '../../src/replication/events.js';

const NOW = 1_700_000_000_000;
const V = `${NOW}.0003.hk`;

const setEvent: ChangeEvent = {
  id: 'hk:1700000000000-0',
  origin: 'hk',
  sid: 'hk.abcdefghijklmnopqrstuvwx',
  op: 'set',
  version: V,
  expiresAt: NOW + 60_000,
  cookieExpires: NOW + 60_000,
  fingerprint: 'f00d',
  data: '{"cookie":{"originalMaxAge":60000},"user":"ünïcødé \\"quoted\\""}',
};
const touchEvent: ChangeEvent = {
  id: 'kr:1700000000001-3',
  origin: 'kr',
  sid: 'legacy-sid',
  op: 'touch',
  version: `${NOW}.0000.hk`,
  expiresAt: NOW + 120_000,
  cookieExpires: NOW + 120_000,
};
const bareTouch: ChangeEvent = {
  id: 'us:5-0',
  origin: 'us',
  sid: 's',
  op: 'touch',
  version: '',
  expiresAt: 0,
};
const destroyEvent: ChangeEvent = {
  id: 'us:1700000000002-0',
  origin: 'us',
  sid: 'hk.abcdefghijklmnopqrstuvwx',
  op: 'destroy',
  version: `${NOW}.0001.us`,
  expiresAt: NOW + 86_400_000,
};
const samples = [setEvent, touchEvent, bareTouch, destroyEvent];

/**
 * The outbox entry (XADD field list) of a short-field object, as the write scripts append it: the header
 * `o|r|v|x|e|f|s`, then `d` and `i` when present. A missing part is empty in the header.
 */
function flat(fields: Record<string, string | undefined>): string[] {
  const { o = '', r = '', v = '', x = '', e = '', f = '', s = '', d, i } = fields;
  const out = ['h', `${o}|${r}|${v}|${x}|${e}|${f}|${s}`];
  if (d !== undefined) out.push('d', d);
  if (i !== undefined) out.push('i', i);
  return out;
}

const validSet: OutboxFields = eventToFields(setEvent);

/** Each case: a valid set event's fields with one field spoiled. `undefined` removes the field. */
const spoiled: [string, Record<string, string | undefined>][] = [
  ['unknown op', { o: 'x' }],
  ['empty op', { o: '' }],
  ['missing op', { o: undefined }],
  ['long op name', { o: 'set' }],
  ['missing region', { r: undefined }],
  ['upper-case region', { r: 'HK' }],
  ['region with a dot', { r: 'h.k' }],
  ['region too long', { r: 'a'.repeat(33) }],
  ['missing sid', { s: undefined }],
  ['empty sid', { s: '' }],
  ['sid too long', { s: 'x'.repeat(513) }],
  ['missing version', { v: undefined }],
  ['empty version of a set', { v: '' }],
  ['version without region', { v: `${NOW}.0003` }],
  ['version with short ms', { v: '170000000000.0003.hk' }],
  ['version with short counter', { v: `${NOW}.03.hk` }],
  ['version with bad region', { v: `${NOW}.0003.HK` }],
  ['missing expiry', { x: undefined }],
  ['non-numeric expiry', { x: 'soon' }],
  ['negative expiry', { x: '-5' }],
  ['fractional expiry', { x: '1.5' }],
  ['unsafe expiry', { x: '9'.repeat(20) }],
  ['empty expiry', { x: '' }],
  ['hex expiry', { x: '0x10' }],
  ['non-numeric cookie expiry', { e: 'later' }],
  ['set without data', { d: undefined }],
  ['set without fingerprint', { f: undefined }],
  ['set with empty fingerprint', { f: '' }],
];

describe('eventFromOutbox: malformed entries', () => {
  it.each(spoiled)('%s is an EventError', (_why, change) => {
    const fields = flat({ ...validSet, ...change });
    expect(() => eventFromOutbox('1-0', fields)).toThrow(EventError);
    try {
      eventFromOutbox('1-0', fields);
    } catch (error) {
      expect((error as EventError).code).toBe('ERR_GEOSESSION_EVENT');
    }
  });

  it('a destroy needs a well-formed version too', () => {
    const fields = flat({ ...eventToFields(destroyEvent), v: '' });
    expect(() => eventFromOutbox('1-0', fields)).toThrow(EventError);
  });

  it('a touch may carry no version (the session had no metadata) but not a malformed one', () => {
    const base = eventToFields(touchEvent);
    expect(eventFromOutbox('1-0', flat({ ...base, v: '' })).version).toBe('');
    expect(() => eventFromOutbox('1-0', flat({ ...base, v: 'v1' }))).toThrow(EventError);
    expect(() => eventFromOutbox('1-0', flat({ ...base, x: 'x' }))).toThrow(EventError);
  });

  it.each([
    ['no header', ['d', '{}']],
    ['no fields at all', []],
    ['a header with too few parts', ['h', 's|hk|v|1|2|fp', 'd', '{}']],
    ['an empty header', ['h', '']],
    [
      'entries in one field per part',
      ['o', 's', 's', 'sid1', 'v', V, 'x', String(NOW), 'r', 'hk', 'f', 'fp', 'd', '{}'],
    ],
  ])('%s is an EventError', (_why, fields) => {
    expect(() => eventFromOutbox('1-0', fields as string[])).toThrow(EventError);
  });

  it('without an i field the id is <origin>:<entry id>', () => {
    const fields = flat({ ...validSet });
    expect(eventFromOutbox('1700000000000-7', fields).id).toBe('hk:1700000000000-7');
  });
});

describe('decodeEvent: malformed bodies', () => {
  const good = JSON.parse(encodeEvent(setEvent).toString('utf8')) as Record<string, unknown>;

  it.each(spoiled)('%s is an EventError', (_why, change) => {
    const body: Record<string, unknown> = { ...good, ...change };
    for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
    expect(() => decodeEvent(JSON.stringify(body))).toThrow(EventError);
  });

  it.each([
    ['not JSON', '{"o":"s",'],
    ['empty body', ''],
    ['JSON null', 'null'],
    ['a JSON number', '42'],
    ['a JSON string', '"hello"'],
    ['a JSON array', '[1,2]'],
    ['no event id', JSON.stringify({ ...good, i: undefined })],
    ['empty event id', JSON.stringify({ ...good, i: '' })],
    ['numeric event id', JSON.stringify({ ...good, i: 7 })],
    ['numeric expiry', JSON.stringify({ ...good, x: NOW })],
    ['object data', JSON.stringify({ ...good, d: { user: 'a' } })],
    ['null sid', JSON.stringify({ ...good, s: null })],
  ])('%s is an EventError', (_why, body) => {
    expect(() => decodeEvent(body)).toThrow(EventError);
    expect(() => decodeEvent(Buffer.from(body))).toThrow(EventError);
  });
});

describe('round trips', () => {
  it.each(samples.map((e) => [e.op, e] as const))('encodeEvent / decodeEvent keep a %s event', (_op, e) => {
    const body = encodeEvent(e);
    expect(Buffer.isBuffer(body)).toBe(true);
    expect(decodeEvent(body)).toEqual(e);
    expect(decodeEvent(body.toString('utf8'))).toEqual(e);
    expect(decodeEvent(new Uint8Array(body))).toEqual(e);
  });

  it.each(samples.map((e) => [e.op, e] as const))(
    'eventToFlat / eventFromOutbox keep a %s event',
    (_op, e) => {
      // The entry id differs from the event's: a re-published event keeps its original id (field i).
      expect(eventFromOutbox('9999999999999-0', eventToFlat(e))).toEqual(e);
    },
  );

  it('a destroy never carries a cookie expiry, even if the outbox entry has one', () => {
    const fields = flat({ ...eventToFields(destroyEvent), e: String(NOW) });
    expect(eventFromOutbox('1-0', fields)).toEqual({ ...destroyEvent, id: 'us:1-0' });
  });

  it('keeps a session id that contains the separator (it is the last part of the header)', () => {
    const odd = { ...setEvent, sid: 'a|b||c|' };
    expect(eventFromOutbox('1-0', eventToFlat(odd))).toEqual(odd);
  });

  it('reads the fields in any order', () => {
    const [h, header, d, data, i, id] = eventToFlat(setEvent) as string[];
    expect(eventFromOutbox('1-0', [i, id, d, data, h, header] as string[])).toEqual(setEvent);
  });

  it('reads an entry exactly as set.lua writes it', () => {
    const entry = ['h', `s|hk|${V}|${NOW}||fp|sid1`, 'd', '{}'];
    expect(eventFromOutbox('5-1', entry)).toEqual({
      id: 'hk:5-1',
      origin: 'hk',
      sid: 'sid1',
      op: 'set',
      version: V,
      expiresAt: NOW,
      fingerprint: 'fp',
      data: '{}',
    });
  });

  it('keeps an empty session body (data "") as data', () => {
    const e = eventFromOutbox('1-0', flat({ ...validSet, d: '' }));
    expect(e.op === 'set' && e.data).toBe('');
  });
});
