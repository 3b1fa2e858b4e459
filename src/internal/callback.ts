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

/** Wraps `cb` so that it runs at most once and an exception it throws surfaces as an uncaught exception. */
export function once<T>(cb: Callback<T>): Callback<T> {
  let called = false;
  return (err, value) => {
    if (called) return;
    called = true;
    try {
      cb(err, value);
    } catch (error) {
      rethrowLater(error);
    }
  };
}

/**
 * Runs `start` with a completion callback: the caller's own (made {@link once}) when there is one,
 * otherwise one that settles the returned promise, which is marked as handled so that a caller that drops
 * it never causes an unhandled rejection. The hot paths use this instead of chaining promises: one
 * callback instead of three promise hops per call.
 */
export function dual<T>(
  start: (done: Callback<T>) => void,
  cb: Callback<T> | undefined,
): Promise<T> | undefined {
  if (typeof cb === 'function') {
    start(once(cb));
    return undefined;
  }
  const promise = new Promise<T>((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value as T)));
  });
  promise.catch(noop);
  return promise;
}

export function noop(): void {}
