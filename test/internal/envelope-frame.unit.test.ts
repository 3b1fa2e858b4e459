import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import { decodeFrame, encodeFrame } from '../../src/internal/envelope-frame.js';
import { entryFields, envelopeOfEntry, isPoison } from '../../src/internal/outbox-entry.js';

const sample: Envelope = {
  id: 'hk:17-0',
  origin: 'hk',
  kind: 'session',
  time: 1_700_000_000_000,
  body: 'a|b\nc d',
};

describe('broker frames', () => {
  it('round-trips an envelope, body and all', () => {
    expect(decodeFrame(encodeFrame(sample))).toEqual(sample);
    expect(decodeFrame(encodeFrame({ ...sample, body: '' }))).toEqual({ ...sample, body: '' });
  });

  it.each([
    ['no header line', 'gs1 hk:1 hk session 1'],
    ['another magic', 'gs2 hk:1 hk session 1\nbody'],
    ['too few parts', 'gs1 hk:1 hk session\nbody'],
    ['too many parts', 'gs1 hk:1 hk session 1 x\nbody'],
    ['a bad origin', 'gs1 hk:1 HK session 1\nbody'],
    ['a bad kind', 'gs1 hk:1 hk Session 1\nbody'],
    ['a bad time', 'gs1 hk:1 hk session -1\nbody'],
    ['an id too long', `gs1 ${'x'.repeat(201)} hk session 1\nbody`],
    ['JSON', '{"o":"s"}'],
  ])('%s is not an envelope', (_why, frame) => {
    expect(decodeFrame(frame)).toHaveProperty('problem');
  });

  it('property: arbitrary text either decodes to a valid envelope or names a problem, never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        const out = decodeFrame(text);
        if ('problem' in out) expect(out.problem).toBeTypeOf('string');
        else expect(encodeFrame(out)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('stream entries', () => {
  it('round-trips an envelope as XADD fields; the origin is the stream’s region', () => {
    expect(envelopeOfEntry('hk', '5-1', entryFields(sample))).toEqual(sample);
    const forged = envelopeOfEntry('kr', '5-1', entryFields(sample));
    expect(isPoison(forged) ? undefined : forged.origin).toBe('kr');
  });

  it('reads an entry as the scripts write it (no i field: the id is <origin>:<entry id>)', () => {
    expect(envelopeOfEntry('hk', '17-3', ['k', 'session', 't', '17', 'b', 'x'])).toEqual({
      id: 'hk:17-3',
      origin: 'hk',
      kind: 'session',
      time: 17,
      body: 'x',
    });
  });

  it.each([
    ['no kind', ['t', '1', 'b', 'x']],
    ['no body', ['k', 'session', 't', '1']],
    ['no time', ['k', 'session', 'b', 'x']],
    ['a bad time', ['k', 'session', 't', 'soon', 'b', 'x']],
    ['a bad kind', ['k', 'no such kind!', 't', '1', 'b', 'x']],
    ['the old two-field layout', ['h', 's|hk|v|1||fp|sid', 'd', '{}']],
    ['nothing', []],
  ])('%s is poison, with the entry id and origin', (_why, fields) => {
    const out = envelopeOfEntry('hk', '9-0', fields);
    expect(isPoison(out)).toBe(true);
    expect(out).toMatchObject({ id: '9-0', origin: 'hk' });
  });
});
