/**
 * Sizes in bytes (issue 14 item 3): frames and sealed payloads are bounded in UTF-8 bytes, as brokers
 * count them, not in UTF-16 units. Hangul syllables are one unit and three bytes each, so a batch of
 * them bounded by length was three times over the limit on the wire.
 */
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/contracts/envelope.js';
import { MAX_SEALED_PAYLOAD, packBatches, unpackBatch } from '../../src/replication/sealed-batch.js';
import { truncateUtf8 } from '../../src/validation/utf8.js';
import { decodeFrames, encodeFrames, MAX_FRAME, preview } from '../../src/wire/broker-frame.js';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
/** 가 (U+AC00): one UTF-16 unit, three UTF-8 bytes. */
const hangul = (n: number) => '가'.repeat(n);

function envelopes(count: number, body: (i: number) => string): Envelope[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `hk:${i}-0`,
    origin: 'hk',
    kind: 'session',
    time: 1_700_000_000_000,
    body: body(i),
  }));
}

describe('frames count UTF-8 bytes', () => {
  it('a batch of Hangul bodies is split into messages of at most MAX_FRAME bytes, and round-trips', () => {
    // 12 bodies of 60,000 syllables: 60,000 units but 180,000 bytes each.
    const batch = envelopes(12, () => hangul(60_000));
    const frames = encodeFrames(batch);
    for (const frame of frames) {
      expect(bytes(frame.text)).toBeLessThanOrEqual(MAX_FRAME);
      expect(frame.bytes).toBe(bytes(frame.text));
    }
    expect(frames.flatMap((f) => decodeFrames(f.text) as Envelope[])).toEqual(batch);
    expect(frames.flatMap((f) => f.envelopes)).toEqual(batch);
  });

  it('mixes one-, two-, three- and four-byte characters, and a smaller bound', () => {
    const batch = envelopes(50, (i) => `é€🙂a`.repeat(500 + i * 40));
    const frames = encodeFrames(batch, 64 * 1024);
    expect(frames.length).toBeGreaterThan(1);
    for (const frame of frames) expect(bytes(frame.text)).toBeLessThanOrEqual(64 * 1024);
    expect(frames.flatMap((f) => decodeFrames(f.text) as Envelope[])).toEqual(batch);
  });

  it('an envelope larger than the bound alone travels in a message of its own', () => {
    const batch = envelopes(3, (i) => (i === 1 ? hangul(400_000) : 'small'));
    const frames = encodeFrames(batch);
    expect(frames.map((f) => f.count)).toEqual([1, 1, 1]);
    expect(frames[1]?.bytes).toBeGreaterThan(1_200_000);
  });
});

describe('sealed payloads count UTF-8 bytes', () => {
  it('a batch of Hangul bodies is packed into payloads of at most MAX_SEALED_PAYLOAD bytes', () => {
    const batch = envelopes(10, () => hangul(40_000)); // 120,000 bytes each
    const packed = packBatches(batch);
    expect(packed.length).toBeGreaterThan(1);
    for (const { payload } of packed) expect(bytes(payload)).toBeLessThanOrEqual(MAX_SEALED_PAYLOAD);
    expect(packed.flatMap((p) => unpackBatch(p.payload, 'hk'))).toEqual(batch);
  });
});

describe('previews count UTF-8 bytes', () => {
  it('cuts at most `max` bytes and never inside a character', () => {
    const text = `a${'🙂가é'.repeat(1000)}`;
    for (const max of [0, 1, 2, 3, 4, 5, 100, 1001]) {
      const { text: start, cut } = truncateUtf8(text, max);
      expect(cut).toBe(true);
      expect(bytes(start)).toBeLessThanOrEqual(max);
      expect(text.startsWith(start)).toBe(true);
      expect(start).not.toMatch(/[\uD800-\uDBFF]$/); // no half of a surrogate pair
      expect(bytes(start)).toBeGreaterThan(max - 4); // as much as fits
    }
    expect(truncateUtf8('가가', 6)).toEqual({ text: '가가', cut: false });
    expect(bytes(preview(hangul(1000), 200))).toBeLessThan(200 + 40);
  });
});
