import type { EventEmitter } from 'node:events';

/**
 * Reports a background failure on `emitter`: an `error` event when someone listens, otherwise printed.
 * Never thrown: an unhandled `error` event would crash the host app.
 */
export function reportError(emitter: EventEmitter, error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  if (emitter.listenerCount('error') > 0) emitter.emit('error', err);
  else console.error('[geosession]', err);
}
