/**
 * How each call of the store façade runs: told to the operation observers (the metrics collector,
 * ./operation-observers.ts) and traced on the `geosession:store` diagnostics channel when someone
 * subscribes; and where an exception thrown by a caller's callback goes.
 */

import { CallbackError } from '../errors.js';
import type { Callback, OnThrown } from '../runtime/callback.js';
import {
  type StoreOperation,
  storeChannel,
  traceStoreOperation,
  traceStorePromise,
} from '../runtime/tracing.js';
import {
  type OperationObserver,
  observeOperation,
  observePromise,
  operationObservers,
} from './operation-observers.js';

/** The store methods that take a caller's callback. */
type CallbackMethod = 'get' | 'set' | 'touch' | 'destroy' | 'all' | 'ids' | 'length' | 'clear';

/** The observed and traced calls of one store. */
export class StoreCalls {
  /** Told how every operation ended (the metrics collector; see ./operation-observers.ts). */
  private readonly observers: OperationObserver[];
  /** Where an exception thrown by a caller's callback goes, per method (made once, not per call). */
  readonly thrown: Record<CallbackMethod, OnThrown>;

  /** `owner` is the store, whose observers these are; `reportError` its background-failure sink. */
  constructor(
    owner: object,
    private readonly region: string,
    private readonly keyspace: string,
    reportError: (error: unknown) => void,
  ) {
    this.observers = operationObservers(owner);
    this.thrown = Object.fromEntries(
      ['get', 'set', 'touch', 'destroy', 'all', 'ids', 'length', 'clear'].map((op) => [
        op,
        (error: unknown) => reportError(new CallbackError(op, error)),
      ]),
    ) as Record<CallbackMethod, OnThrown>;
  }

  /** Runs a callback-style operation, traced on `geosession:store` when someone subscribes. */
  traced<T>(op: StoreOperation, done: Callback<T>, run: (done: Callback<T>) => void): void {
    const observed = this.observers.length > 0 ? observeOperation(this.observers, op, done) : done;
    if (!storeChannel.hasSubscribers) {
      run(observed);
      return;
    }
    traceStoreOperation({ op, region: this.region, keyspace: this.keyspace }, run, observed);
  }

  /** Runs a promise-style operation (the bulk methods), observed and traced the same way. */
  tracedPromise<T>(op: StoreOperation, work: () => Promise<T>): Promise<T> {
    const run = storeChannel.hasSubscribers
      ? () => traceStorePromise({ op, region: this.region, keyspace: this.keyspace }, work)
      : work;
    return this.observers.length > 0 ? observePromise(this.observers, op, run) : run();
  }
}
