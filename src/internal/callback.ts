/** Node-style callback. */
export type Callback<T> = (err: Error | null | undefined, value?: T) => void;

function rethrowLater(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}

/**
 * Settles `promise` into `cb` when one is given, exactly once: a callback that throws is never called
 * again with its own error (connect-redis does that), its exception surfaces as an uncaught exception, as
 * with any Node callback API. Without a callback the promise is returned, marked as handled so that a
 * caller that drops it (express-session's `req.session.destroy()`) never causes an unhandled rejection.
 */
export function settle<T>(promise: Promise<T>, cb: Callback<T> | undefined): Promise<T> | undefined {
  if (typeof cb !== 'function') {
    promise.catch(noop);
    return promise;
  }
  promise.then(
    (value) => {
      try {
        cb(null, value);
      } catch (error) {
        rethrowLater(error);
      }
    },
    (error: Error) => {
      try {
        cb(error);
      } catch (thrown) {
        rethrowLater(thrown);
      }
    },
  );
  return undefined;
}

export function noop(): void {}
