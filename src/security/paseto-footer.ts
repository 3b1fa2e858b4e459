/**
 * Reading a PASETO footer before the token is verified. The footer is attacker-controlled until then, so
 * it is bounded (bytes and JSON depth, checked before `JSON.parse` runs), must be a flat JSON object of
 * short strings with known names only, and anything else fails closed (paseto-spec
 * `docs/02-Implementation-Guide/01-Payload-Processing.md`, "Key-ID Support").
 */
import { fromUtf8 } from './bytes.js';

/** Largest footer accepted, in bytes (decoded). Ours are about 100. */
export const MAX_FOOTER_BYTES = 512;
/** Deepest JSON nesting accepted: one object, no nested objects or arrays. */
export const MAX_FOOTER_DEPTH = 1;

/** The JSON nesting depth of `text` (strings skipped), or `Infinity` once it passes `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > deepest) deepest = depth;
      if (deepest > limit) return Number.POSITIVE_INFINITY;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/**
 * Parses an untrusted footer as a flat JSON object whose members are all in `names` and all strings of
 * at most `maxValueLength` characters. Returns `undefined` for anything else (too long, too deep, not
 * UTF-8, not JSON, other members, other types).
 */
export function readJsonFooter<K extends string>(
  bytes: Uint8Array,
  names: readonly K[],
  maxValueLength = 200,
): Partial<Record<K, string>> | undefined {
  if (bytes.length === 0 || bytes.length > MAX_FOOTER_BYTES) return undefined;
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    return undefined;
  }
  if (jsonDepth(text, MAX_FOOTER_DEPTH) > MAX_FOOTER_DEPTH) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const out: Partial<Record<K, string>> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!(names as readonly string[]).includes(name)) return undefined;
    if (typeof value !== 'string' || value.length > maxValueLength) return undefined;
    out[name as K] = value;
  }
  return out;
}
