import { EventEmitter } from 'node:events';
import type { PeerBacklog, TransportEventMap, TransportState } from '../contracts/transport.js';
import { TransientError } from '../errors.js';
import { reportError } from '../failures/report.js';

/**
 * State and event plumbing shared by the transports: `state` events on change only (`closed` and
 * `failed` are final), `error` events that are always `GeoSessionError`s and never throw when nobody
 * listens (a background failure must not crash the host app; it is printed instead), and `backlog`
 * events. A handler's {@link TransientError} is not reported again: the handler (the pipeline) reports
 * it itself, once per interval, while the transport delivers the batch again.
 */
export class TransportEvents extends EventEmitter<TransportEventMap> {
  private current: TransportState = 'connecting';

  /** Current connection state. */
  get state(): TransportState {
    return this.current;
  }

  protected setState(state: TransportState): void {
    if (this.current === state || this.current === 'closed') return;
    if (this.current === 'failed' && state !== 'closed') return;
    this.current = state;
    this.emit('state', state);
  }

  /** Emits a background failure; none once closed (the work it came from was abandoned by close()). */
  protected reportError(error: unknown): void {
    if (error instanceof TransientError) return;
    if (this.current === 'closed') return;
    reportError(this as EventEmitter, error);
  }

  protected reportBacklog(report: PeerBacklog): void {
    this.emit('backlog', report);
  }
}
