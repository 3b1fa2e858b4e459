/**
 * One Redis call of the store under the operation deadline (./deadline.ts), callback style for the hot
 * paths, and the rule that turns any failure of a call into a `GeoSessionError`.
 */

import { GeoSessionError, RedisCommandError } from '../errors.js';
import type { Callback } from '../runtime/callback.js';
import type { Deadlines } from './deadline.js';

/**
 * Runs one Redis call under the operation deadline: `next` gets the reply, `done` gets a failure (Redis
 * error, timeout, or an exception thrown by `next`). No promise is made beyond the client's own.
 */
export function execCall<T>(
  deadlines: Deadlines,
  operation: string,
  work: Promise<T>,
  done: Callback<never>,
  next: (value: T) => void,
): void {
  const pending = deadlines.track(operation, done);
  work.then(
    (value) => {
      if (pending.settled) return;
      pending.settled = true;
      try {
        next(value);
      } catch (error) {
        done(error instanceof Error ? error : new Error(String(error)));
      }
    },
    (error: unknown) => {
      if (pending.settled) return;
      pending.settled = true;
      done(asGeoSessionError(operation, error) as Error);
    },
  );
}

export function asGeoSessionError(operation: string, error: unknown): unknown {
  return error instanceof GeoSessionError ? error : new RedisCommandError(operation, error);
}
