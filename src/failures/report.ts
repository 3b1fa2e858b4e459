import type { EventEmitter } from 'node:events';
import { GeoSessionError, TransportError } from '../errors.js';

/**
 * Reports a background failure on `emitter` as an `error` event, always a {@link GeoSessionError} (a
 * raw error is wrapped by `wrap`, with the original as `cause`); printed when nobody listens. Never
 * thrown: an unhandled `error` event would crash the host app, and a listener that throws must not
 * either.
 */
export function reportError(
  emitter: EventEmitter,
  error: unknown,
  wrap: (cause: unknown) => GeoSessionError = (cause) =>
    new TransportError(cause instanceof Error ? cause.message : String(cause), { cause }),
): void {
  const err = error instanceof GeoSessionError ? error : wrap(error);
  if (emitter.listenerCount('error') === 0) {
    console.error('[geosession]', err);
    return;
  }
  try {
    emitter.emit('error', err);
  } catch (thrown) {
    console.error('[geosession] an error listener threw:', thrown);
  }
}

/**
 * Lets one report through per `key` per `intervalMs` and counts the rest, so a failure that repeats on
 * every request or every batch (a stalled remote, a flood of poison) is one line, not thousands.
 */
export class RateLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs: number) {}

  /**
   * `undefined` when a report for `key` was let through less than `intervalMs` ago (it is counted);
   * otherwise how many were held back since the last one that went through.
   */
  admit(key: string, now = Date.now()): number | undefined {
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return undefined;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > 1000) this.last.delete(this.last.keys().next().value as string);
    return suppressed;
  }
}
