import { EventEmitter } from 'node:events';
import type { TransportState } from '../transports/transport.js';
import { reportError } from './report.js';

/**
 * State and event plumbing shared by the transports: `state` events on change only, and `error` events
 * that never throw when nobody listens (a background failure must not crash the host app; it is
 * printed instead).
 */
export class TransportEvents extends EventEmitter {
  private current: TransportState = 'connecting';

  /** Current connection state. */
  get state(): TransportState {
    return this.current;
  }

  protected setState(state: TransportState): void {
    if (this.current === state || this.current === 'closed') return;
    this.current = state;
    this.emit('state', state);
  }

  protected reportError(error: unknown): void {
    reportError(this, error);
  }
}

/** Resolves after `ms`, without keeping the process alive. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
