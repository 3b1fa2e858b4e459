import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import {
  decodeFrames,
  encodeFrames,
  envelopeCount,
  type Frame,
  MAX_FRAME,
  takeBatch,
} from '../../src/wire/broker-frame.js';
import { entryFields, envelopeOfEntry, isPoison } from '../../src/wire/stream-entry.js';

const sample: Envelope = {
  id: 'hk:17-0',
  origin: 'hk',
  kind: 'session',
  time: 1_700_000_000_000,
  body: 'a|b\nc d',
};

describe('broker frames', () => {
  const frame = (envelopes: Envelope[]) => {
    const frames = encodeFrames(envelopes);
    expect(frames).toHaveLength(1);
    return (frames[0] as Frame).text;
  };

  it('round-trips envelopes, bodies and all, several to a message', () => {
    const other = { ...sample, id: 'hk:18-0', body: '' };
    expect(decodeFrames(frame([sample]))).toEqual([sample]);
    expect(decodeFrames(frame([sample, other]))).toEqual([sample, other]);
    expect(encodeFrames([sample, other])[0]?.id).toBe('hk:17-0+2');
    const unicode = { ...sample, body: 'ünïcødé 🙂\nand a line' };
    expect(decodeFrames(frame([unicode, sample]))).toEqual([unicode, sample]);
  });

  it('splits large batches into messages of about MAX_FRAME characters', () => {
    const big = Array.from({ length: 40 }, (_, i) => ({
      ...sample,
      id: `hk:${i}-0`,
      body: 'x'.repeat(30_000),
    }));
    const frames = encodeFrames(big);
    expect(frames.length).toBeGreaterThan(1);
    for (const f of frames) expect(f.text.length).toBeLessThanOrEqual(MAX_FRAME + 100);
    expect(frames.flatMap((f) => decodeFrames(f.text) as Envelope[])).toEqual(big);
  });

  it('consumers batch by the count a message declares, never splitting one', () => {
    const texts = [3, 2, 4, 1].map((n) =>
      frame(Array.from({ length: n }, (_, i) => ({ ...sample, id: `hk:${n}-${i}` }))),
    );
    expect(texts.map((t) => envelopeCount(Buffer.from(t)))).toEqual([3, 2, 4, 1]);
    expect(envelopeCount('not ours')).toBe(1);
    const queue = [...texts];
    expect(takeBatch(queue, 5, envelopeCount)).toHaveLength(2); // 3 + 2
    expect(takeBatch(queue, 2, envelopeCount)).toHaveLength(1); // 4 alone, over the limit but never split
    expect(takeBatch(queue, 5, envelopeCount)).toHaveLength(1);
    expect(queue).toEqual([]);
  });

  it.each([
    ['no header line', 'gsb1 1'],
    ['another magic', 'gs1 hk:1 hk session 1\nbody'],
    ['a bad count', 'gsb1 x\n'],
    ['fewer envelopes than counted', `gsb1 2\nhk:1 hk session 1 4\nbody`],
    ['a bad origin', 'gsb1 1\nhk:1 HK session 1 4\nbody'],
    ['a bad kind', 'gsb1 1\nhk:1 hk Session 1 4\nbody'],
    ['a bad time', 'gsb1 1\nhk:1 hk session -1 4\nbody'],
    ['a body cut short', 'gsb1 1\nhk:1 hk session 1 40\nbody'],
    ['trailing bytes', 'gsb1 1\nhk:1 hk session 1 4\nbodyXX'],
    ['an id too long', `gsb1 1\n${'x'.repeat(201)} hk session 1 4\nbody`],
    ['JSON', '{"o":"s"}'],
  ])('%s is not a message', (_why, text) => {
    expect(decodeFrames(text)).toHaveProperty('problem');
  });

  it('property: arbitrary text either decodes to valid envelopes or names a problem, never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        const out = decodeFrames(text);
        if ('problem' in out) expect(out.problem).toBeTypeOf('string');
        else expect(out.map((e) => e.origin).every((o) => /^[a-z0-9-]{1,32}$/.test(o))).toBe(true);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 5 }), (bodies) => {
        const envelopes = bodies.map((body, i) => ({ ...sample, id: `hk:${i}-1`, body }));
        expect(decodeFrames(frame(envelopes))).toEqual(envelopes);
      }),
    );
  });
});

describe('stream entries', () => {
  it('round-trips an envelope as XADD fields; the origin is the stream’s region', () => {
    expect(envelopeOfEntry('hk', '5-1', entryFields(sample))).toEqual(sample);
    const forged = envelopeOfEntry('kr', '5-1', entryFields(sample));
    expect(isPoison(forged) ? undefined : forged.origin).toBe('kr');
  });

  it('reads an entry as the scripts write it: the body alone, a session change made at its id’s time', () => {
    expect(envelopeOfEntry('hk', '1700000000017-3', ['b', 'x'])).toEqual({
      id: 'hk:1700000000017-3',
      origin: 'hk',
      kind: 'session',
      time: 1700000000017,
      body: 'x',
    });
  });

  it('keeps a body with spaces and line breaks as it is', () => {
    const body = 'line one\nline two with spaces\n\n';
    expect(envelopeOfEntry('hk', '5-1', entryFields({ ...sample, body }))).toEqual({ ...sample, body });
    expect(entryFields(sample)).toHaveLength(2);
  });

  it.each([
    ['no body', ['e', 'session 1 hk:1-0']],
    ['a bad time', ['e', 'session soon hk:1-0\nx']],
    ['a bad kind', ['e', 'no-such-kind! 1 hk:1-0\nx']],
    ['a header of four parts', ['e', 'session 1 hk:1-0 extra\nx']],
    ['an id with a space', ['e', 'session 1 hk 1-0\nx']],
    ['the old four-field layout', ['k', 'session', 't', '1', 'b', 'x']],
    ['the old two-field layout', ['h', 's|hk|v|1||fp|sid', 'd', '{}']],
    ['an unknown field', ['z', 'x']],
    ['nothing', []],
  ])('%s is poison, with the entry id and origin', (_why, fields) => {
    const out = envelopeOfEntry('hk', '9-0', fields);
    expect(isPoison(out)).toBe(true);
    expect(out).toMatchObject({ id: '9-0', origin: 'hk' });
  });
});
