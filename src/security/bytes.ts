/**
 * Byte helpers shared by the PASETO and PASERK code: strict unpadded base64url, UTF-8, concatenation and
 * PASETO's pre-authentication encoding (PAE).
 */

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Unpadded base64url of `bytes`. */
export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * Decodes unpadded, canonical base64url. Returns `undefined` for anything else: padding, characters
 * outside the URL-safe alphabet, an impossible length, or non-zero trailing bits (two strings must never
 * decode to the same bytes, so that a token cannot be altered without changing what it authenticates).
 */
export function fromBase64url(text: string): Uint8Array | undefined {
  const rest = text.length % 4;
  if (rest === 1 || !BASE64URL.test(text)) return undefined;
  // Canonical means the bits the last character holds beyond the last byte are zero (4 of them after
  // 2 characters, 2 after 3): checked on that character alone rather than by encoding the whole
  // text again (that doubled the cost of opening a large token).
  if (rest !== 0 && (ALPHABET.indexOf(text[text.length - 1] as string) & (rest === 2 ? 0x0f : 0x03)) !== 0) {
    return undefined;
  }
  const bytes = Buffer.from(text, 'base64url');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Text of UTF-8 `bytes`; throws a `TypeError` on invalid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** One array holding every part in order. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Writes `n` as 64-bit little-endian with the top bit clear (PASETO's LE64). */
function writeLe64(view: DataView, offset: number, n: number): void {
  view.setUint32(offset, n >>> 0, true);
  view.setUint32(offset + 4, Math.floor(n / 2 ** 32) & 0x7fffffff, true);
}

/**
 * PASETO's pre-authentication encoding: LE64(count), then LE64(length) and the bytes of each piece. It
 * makes the authenticated message an unambiguous function of its pieces.
 */
export function preAuthEncode(pieces: readonly Uint8Array[]): Uint8Array {
  let length = 8;
  for (const piece of pieces) length += 8 + piece.length;
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  writeLe64(view, 0, pieces.length);
  let offset = 8;
  for (const piece of pieces) {
    writeLe64(view, offset, piece.length);
    out.set(piece, offset + 8);
    offset += 8 + piece.length;
  }
  return out;
}
