/**
 * Session ids in reports: enough to tell two apart and to find one you already know, never enough to
 * hijack one (a session id is a bearer credential).
 */

/** Characters of the random part shown. */
const SHOWN = 4;

/** An id made by `genid`: `<region>.<random>`. */
const GENERATED = /^([a-z0-9-]{1,32})\.(.+)$/;

/**
 * `sid` masked for output: `hk.AbCd…` for an id made by the store's `genid` (region kept, the first
 * four characters of the random part shown), `AbCd…` for any other id of more than eight characters,
 * `…` for a shorter one.
 */
export function maskSessionId(sid: string): string {
  const generated = GENERATED.exec(sid);
  if (generated) {
    const [, region = '', random = ''] = generated;
    return `${region}.${maskPart(random)}`;
  }
  return maskPart(sid);
}

function maskPart(text: string): string {
  return text.length > SHOWN * 2 ? `${text.slice(0, SHOWN)}…` : '…';
}
