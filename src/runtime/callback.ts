/** Node-style callback. */
export type Callback<T> = (err: Error | null | undefined, value?: T) => void;

/** Told about an exception thrown by a caller's callback (the store reports it as an `error` event). */
export type OnThrown = (error: unknown) => void;

/**
 * Calls `cb` and hands an exception it throws to `onThrown`, never back to `cb` and never up the stack:
 * a framework handler that throws from a store callback (a fastify route that forgot `return reply`)
 * must not crash the process. A throwing `onThrown` is ignored.
 */
function call<T>(
  cb: Callback<T>,
  err: Error | null | undefined,
  value: T | undefined,
  onThrown: OnThrown,
): void {
  try {
    cb(err, value);
  } catch (error) {
    try {
      onThrown(error);
    } catch {
      // nowhere left to report it
    }
  }
}

/**
 * Settles `promise` into `cb` when one is given, exactly once: a callback that throws is never called
 * again with its own error (connect-redis does that), its exception goes to `onThrown`. Without a
 * callback the promise is returned, marked as handled so that a caller that drops it (express-session's
 * `req.session.destroy()`) never causes an unhandled rejection.
 */
export function settle<T>(
  promise: Promise<T>,
  cb: Callback<T> | undefined,
  onThrown: OnThrown,
): Promise<T> | undefined {
  if (typeof cb !== 'function') {
    promise.catch(noop);
    return promise;
  }
  promise.then(
    (value) => call(cb, null, value, onThrown),
    (error: Error) => call<T>(cb, error, undefined, onThrown),
  );
  return undefined;
}

/** Wraps `cb` so that it runs at most once and an exception it throws goes to `onThrown`. */
export function once<T>(cb: Callback<T>, onThrown: OnThrown): Callback<T> {
  let called = false;
  return (err, value) => {
    if (called) return;
    called = true;
    call(cb, err, value, onThrown);
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
  onThrown: OnThrown,
): Promise<T> | undefined {
  if (typeof cb === 'function') {
    start(once(cb, onThrown));
    return undefined;
  }
  const promise = new Promise<T>((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value as T)));
  });
  promise.catch(noop);
  return promise;
}

export function noop(): void {}
