/**
 * The options of `GeoSessionStore.destroy`, and how they are read from its optional arguments
 * (`destroy(sid)`, `destroy(sid, cb)`, `destroy(sid, options)`, `destroy(sid, options, cb)`).
 */

import type { Callback } from '../runtime/callback.js';

/** Options of {@link GeoSessionStore.destroy}. */
export interface DestroyOptions {
  /**
   * Keep the session ended at least until then (epoch ms or a Date, by this host's clock): the expiry of
   * the credential it came from, such as an access token's `exp`.
   */
  readonly until?: number | Date;
}

/** The callback and the `until` time in epoch ms of `destroy(sid, optionsOrCb?, cb?)`. */
export function destroyArguments(
  optionsOrCb: DestroyOptions | Callback<void> | undefined,
  cb: Callback<void> | undefined,
): { callback: Callback<void> | undefined; untilMs: number | undefined } {
  const callback = typeof optionsOrCb === 'function' ? optionsOrCb : cb;
  const until = typeof optionsOrCb === 'object' && optionsOrCb !== null ? optionsOrCb.until : undefined;
  const untilMs = until === undefined ? undefined : until instanceof Date ? until.getTime() : Number(until);
  return { callback, untilMs };
}
