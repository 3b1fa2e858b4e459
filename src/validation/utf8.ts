/**
 * Sizes in bytes. Every limit geosession sets on what it stores or sends (a session, a frame, a sealed
 * payload, a dead letter) counts UTF-8 bytes, as brokers and Redis do, never JavaScript string lengths
 * (UTF-16 units): 400,000 Hangul syllables are 400,000 units but 1.2 MB on the wire.
 */

const encoder = new TextEncoder();

/** UTF-8 bytes of `text`. */
export function utf8Length(text: string): number {
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: a short ASCII-only test is not worth it, Buffer counts natively.
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Whether `text` is longer than `max` bytes in UTF-8, found without counting when its length alone
 * decides (a UTF-16 unit is 1 to 3 UTF-8 bytes): the size check that comes before any decoding.
 */
export function exceedsBytes(text: string, max: number): boolean {
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return utf8Length(text) > max;
}

/**
 * The longest start of `text` that is at most `maxBytes` UTF-8 bytes, never cutting a character in two,
 * and whether anything was cut.
 */
export function truncateUtf8(text: string, maxBytes: number): { text: string; cut: boolean } {
  if (text.length * 3 <= maxBytes) return { text, cut: false };
  const room = new Uint8Array(Math.max(0, maxBytes));
  // encodeInto writes whole characters only: `read` is where the last one that fits ends.
  const { read } = encoder.encodeInto(text, room);
  return read >= text.length ? { text, cut: false } : { text: text.slice(0, read), cut: true };
}
