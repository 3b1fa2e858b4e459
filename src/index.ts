export type { GeoSessionErrorCode } from './errors.js';
export {
  ClosedError,
  ConfigError,
  CorruptSessionError,
  EventError,
  GeoSessionError,
  RedisCommandError,
  TimeoutError,
  TransportError,
} from './errors.js';
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
  GeoSessionStoreOptions,
  RedisClient,
  Serializer,
  SessionCookie,
  SessionData,
  SessionInput,
} from './options.js';
export { DEFAULT_OPTIONS } from './options.js';
export type { ApplyOutcome } from './replication/applier.js';
export type { ChangeEvent, ChangeOp, DestroyEvent, SetEvent, TouchEvent } from './replication/events.js';
export type { AppliedBatch, ReplicationStats } from './replication/replicator.js';
export { generateSessionId, isValidRegion, regionOfSessionId } from './session-id.js';
export type { RefusedWrite } from './store.js';
export { GeoSessionStore } from './store.js';
export type { MemoryTransportOptions } from './transports/memory.js';
export { createMemoryTransport } from './transports/memory.js';
export type {
  BatchHandler,
  ReplicationTransport,
  SubscribeOptions,
  Subscription,
  TransportState,
} from './transports/transport.js';
