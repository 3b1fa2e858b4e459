import type { PeerBacklog, TransportState } from '../contracts/transport.js';
import type { PipelineStats, RejectionReason, TransientStats } from './pipeline.js';
import type { ResyncNeed } from './resync-state.js';
import type { OriginSequence, SequenceTracker } from './sequence.js';

/** Counters, lag and health of one {@link ReplicationNode}, whatever kinds it carries. */
export interface NodeStats {
  /** Transport state. */
  transport: TransportState;
  /** Items applied per registered kind (what each handler's `apply` resolved for). */
  appliedByKind: Record<string, number>;
  /** Envelopes refused before they could be applied, by reason (each is dead-lettered). */
  rejected: Partial<Record<RejectionReason, number>>;
  /** Batches that met a transient failure and were left to be delivered again. */
  transient: TransientStats;
  /** Envelopes this region published (through its relay; 0 for Redis Streams without a sealer). */
  published: number;
  /** Per origin region: lag of the newest envelope applied (ms from its making to its apply here). */
  lagMs: Record<string, number>;
  /** Regions this region needs a resync with, and why. */
  needsResync: Record<string, ResyncNeed>;
  /** What each other region has not consumed yet of what this region sent, where the transport can tell. */
  backlog: PeerBacklog[];
  /** Per origin region: the numbers handled here, duplicates dropped, late arrivals into given-up gaps. */
  sequences: Record<string, OriginSequence & { duplicates: number; late: number }>;
}
/** A fresh copy of a node's counters (nothing returned is shared with the node). */
export function snapshotStats(from: {
  transport: TransportState;
  applied: Record<string, number>;
  pipeline: PipelineStats;
  needsResync: Record<string, ResyncNeed>;
  backlog: readonly PeerBacklog[];
  sequences: SequenceTracker;
}): NodeStats {
  const p = from.pipeline;
  const { sequences } = from;
  return {
    transport: from.transport,
    appliedByKind: { ...from.applied },
    rejected: { ...p.rejected },
    transient: {
      count: p.transient.count,
      byReason: { ...p.transient.byReason },
      last: p.transient.last && { ...p.transient.last },
    },
    published: p.published,
    lagMs: { ...p.lagMs },
    needsResync: from.needsResync,
    backlog: [...from.backlog],
    sequences: Object.fromEntries(
      Object.entries(sequences.snapshot()).map(([origin, known]) => [
        origin,
        { ...known, duplicates: sequences.duplicates[origin] ?? 0, late: sequences.late[origin] ?? 0 },
      ]),
    ),
  };
}
