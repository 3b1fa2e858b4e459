/**
 * The session metadata format, the one string the scripts keep beside each session value (see
 * read_meta in src/redis/scripts/includes/common.lua): `t|v|x|r|l|f|e|w` (metadata written before `e`
 * and `w` existed has the first six fields only).
 */

/** A session's metadata, parsed. */
export interface SessionMeta {
  /** A logout's tombstone. */
  readonly tombstone: boolean;
  /** HLC version of the data, `undefined` when none yet (an expiry that arrived before its session). */
  readonly version: string | undefined;
  /** Absolute expiry in epoch ms, 0 for never: the latest this region has known for the id. */
  readonly expiresAt: number;
  /** The latest expiry every region has been told about, when known. */
  readonly replicatedExpiry: number | undefined;
  /** The session's lifetime rule in ms (0 never), when known. */
  readonly lifetimeMs: number | undefined;
  /** Content fingerprint, when known. */
  readonly fingerprint: string | undefined;
  /** The version `expiresAt` belongs to when it is above `version` (a touch that came before its set). */
  readonly expiryVersion?: string | undefined;
  /** The expiry written with the value (its set's own), when known: `get` moves cookie.expires by the difference. */
  readonly writtenExpiry?: number | undefined;
}

const META_PATTERN = /^([01])\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)(?:\|([^|]*)\|([^|]*))?$/;

const optionalNumber = (text: string): number | undefined => (text === '' ? undefined : Number(text));

/** Parses metadata text; `undefined` for a missing key or text that is not metadata. */
export function parseMeta(text: string | null | undefined): SessionMeta | undefined {
  if (typeof text !== 'string') return undefined;
  const match = META_PATTERN.exec(text);
  if (!match) return undefined;
  const [, t, v = '', x = '', r = '', l = '', f = '', e = '', w = ''] = match;
  return {
    tombstone: t === '1',
    version: v === '' ? undefined : v,
    expiresAt: x === '' ? 0 : Number(x),
    replicatedExpiry: optionalNumber(r),
    lifetimeMs: optionalNumber(l),
    fingerprint: f === '' ? undefined : f,
    expiryVersion: e === '' ? undefined : e,
    writtenExpiry: optionalNumber(w),
  };
}

/** Metadata text as the scripts write it (tests and repair tools set states up with it). */
export function formatMeta(meta: SessionMeta): string {
  const n = (value: number | undefined) => (value === undefined ? '' : String(Math.floor(value)));
  return [
    meta.tombstone ? '1' : '0',
    meta.version ?? '',
    String(Math.floor(meta.expiresAt)),
    n(meta.replicatedExpiry),
    n(meta.lifetimeMs),
    meta.fingerprint ?? '',
    meta.expiryVersion ?? '',
    n(meta.writtenExpiry),
  ].join('|');
}

/** True for a logout's tombstone, without parsing the rest. */
export function isTombstoneText(text: string | null | undefined): boolean {
  return typeof text === 'string' && text.startsWith('1|');
}

/** The wall-clock part of a version, epoch ms (`NaN` for a malformed version). */
export function versionTime(version: string): number {
  return Number(version.slice(0, 15));
}

/** Versions as the scripts write them: 15-digit wall ms, 4-digit counter, region. */
export const VERSION_PATTERN = /^\d{15}\.\d{4}\.[a-z0-9-]{1,32}$/;

/**
 * How far the session's expiry has moved since its value was written (`x - w`, ms), read from metadata
 * text without parsing the rest: 0 when it has not, when either is unknown, or for "never".
 */
export function expiryShift(text: string | null | undefined): number {
  if (typeof text !== 'string' || text.charCodeAt(0) !== 48 /* '0' */) return 0;
  const parts = text.split('|');
  if (parts.length !== 8) return 0;
  const x = Number(parts[2]);
  const w = parts[7] === '' ? Number.NaN : Number(parts[7]);
  if (!(x > 0) || !(w > 0)) return 0;
  return x - w;
}
