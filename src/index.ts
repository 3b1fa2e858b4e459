// The `geosession` entry point: the store, its options and events, the in-memory transport, the
// contracts a transport or sealer implements, and the errors. Transports with a client library live in
// their own entry points: geosession/redis-streams, geosession/amqp, geosession/nats.

export type { Envelope } from './contracts/envelope.js';
export type { OpenedSeal, RefusalReason, SealBinding, Sealer } from './contracts/sealer.js';
export type {
  EnvelopeHandler,
  PeerBacklog,
  Poison,
  ReplicationTransport,
  StreamSource,
  SubscribeOptions,
  Subscription,
  TransportEventMap,
  TransportState,
} from './contracts/transport.js';
export type { GeoSessionErrorCode } from './errors.js';
export {
  ArgumentError,
  BacklogError,
  CallbackError,
  ClosedError,
  ConfigError,
  CorruptSessionError,
  EventError,
  GeoSessionError,
  InvalidSessionIdError,
  MemoryPolicyError,
  MessageTooLargeError,
  MissingDependencyError,
  ReadThroughError,
  RedisCommandError,
  ResyncNeededError,
  SealError,
  SessionTooLargeError,
  TimeoutError,
  TransientError,
  TransportError,
} from './errors.js';
export type {
  InvalidateCallOptions,
  InvalidateResult,
  InvalidatorEventMap,
  InvalidatorStats,
} from './invalidation/invalidator.js';
export { createInvalidator, Invalidator } from './invalidation/invalidator.js';
export type { InvalidatorOptions } from './invalidation/options.js';
export type { FlushEvent, InvalidatedEvent } from './invalidation/subscriber.js';
export type { CookieHeader } from './middleware/cookie-header.js';
export type {
  SessionCookieFormat,
  SessionCookieOptions,
  SessionFromCookie,
  SessionReader,
  VerifiedSessionCookie,
} from './middleware/session-cookie.js';
export { loadSessionFromCookie, verifySessionCookie } from './middleware/session-cookie.js';
export type {
  ReadThroughMessage,
  ReadThroughResult,
  ReplicationBatchMessage,
  ReplicationLagMessage,
  StoreOperation,
  StoreOperationMessage,
  StoreOperationResult,
} from './observability/tracing.js';
export { TRACING_CHANNELS } from './observability/tracing.js';
export type { ConnectionRegistryOptions } from './registry/options.js';
export type {
  ConnectionRegistryEvents,
  PodConnections,
  RegisteredConnection,
  RegisterOptions,
} from './registry/registry.js';
export { ConnectionRegistry, createConnectionRegistry } from './registry/registry.js';
export type { ApplyOutcome } from './replication/applier.js';
export type { DeadLetter } from './replication/dead-letters.js';
export type { ChangeEvent, ChangeOp, DestroyEvent, SetEvent, TouchEvent } from './replication/events.js';
export type { LagPoint, LagSummary } from './replication/lag-window.js';
export type {
  RejectedEnvelope,
  RejectionReason,
  TransientStats,
} from './replication/pipeline.js';
export type { AppliedBatch, ReplicationStats } from './replication/replicator.js';
export type { ResyncNeed } from './replication/resync-state.js';
export type { Alert, AlertRule, AlertRules } from './session/alert-options.js';
export { DEFAULT_ALERT_RULES } from './session/alert-options.js';
export type { GeoSessionStoreEvents, RefusedWrite } from './session/events.js';
export type { NearCacheStats } from './session/near-cache.js';
export type { NearCacheOptions } from './session/near-cache-options.js';
export type { GeoSessionStoreOptions } from './session/options.js';
export { DEFAULT_OPTIONS } from './session/options.js';
export type {
  MissedRevocation,
  RevocationGap,
  RevocationReason,
  RevokedSession,
  WatchCallback,
  WatchedEnding,
  WatchOptions,
} from './session/revocations.js';
export type { PeerStatus, ResyncProgress, StatusReport } from './session/status-report.js';
export { type DestroyOptions, GeoSessionStore } from './session/store.js';
export type { LogoutEverywhereOptions, UserSession } from './session/users.js';
export type { MemoryTransportOptions } from './transports/memory.js';
export { createMemoryTransport } from './transports/memory.js';
export type { RedisClient, Serializer, SessionCookie, SessionData, SessionInput } from './types.js';
export {
  generateSessionId,
  isValidRegion,
  isValidSessionId,
  MAX_SESSION_ID_LENGTH,
  regionOfSessionId,
} from './validation/ids.js';
