import { performance } from 'node:perf_hooks';
import type { Callback } from '../runtime/callback.js';
import type { StoreOperation, StoreOperationResult } from '../runtime/tracing.js';

/**
 * Told how each store operation ended, on the operation's own path: what the metrics collector counts
 * store operations and their latency with (src/observability/collector.ts). Cheaper than a
 * diagnostics-channel subscription, which stays for tracing. Must be cheap and must not throw.
 */
export interface OperationObserver {
  operationEnded(op: StoreOperation, result: StoreOperationResult | 'error', seconds: number): void;
}

const lists = new WeakMap<object, OperationObserver[]>();

/** The observers of `owner`'s operations (a store): the live list, which callers add to and remove from. */
export function operationObservers(owner: object): OperationObserver[] {
  let list = lists.get(owner);
  if (!list) {
    list = [];
    lists.set(owner, list);
  }
  return list;
}

function resultOf(op: StoreOperation, err: unknown, value: unknown): StoreOperationResult | 'error' {
  if (err) return 'error';
  if (op === 'get') return value == null ? 'miss' : 'hit';
  return 'ok';
}

/** `done`, telling `observers` how the operation started now ended and how long it took. */
export function observeOperation<T>(
  observers: readonly OperationObserver[],
  op: StoreOperation,
  done: Callback<T>,
): Callback<T> {
  const started = performance.now();
  return (err, value) => {
    const seconds = (performance.now() - started) / 1000;
    const result = resultOf(op, err, value);
    for (const observer of observers) observer.operationEnded(op, result, seconds);
    done(err, value);
  };
}

/** The promise form of {@link observeOperation}, for the bulk operations. */
export function observePromise<T>(
  observers: readonly OperationObserver[],
  op: StoreOperation,
  work: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  const tell = (err: unknown, value?: T) => {
    const seconds = (performance.now() - started) / 1000;
    const result = resultOf(op, err, value);
    for (const observer of observers) observer.operationEnded(op, result, seconds);
  };
  return work().then(
    (value) => {
      tell(undefined, value);
      return value;
    },
    (error: unknown) => {
      tell(error ?? new Error('failed'));
      throw error;
    },
  );
}
