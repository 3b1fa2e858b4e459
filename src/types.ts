/**
 * The domain types every layer shares: what a session is, how it is serialized, and which Redis
 * clients geosession accepts. Nothing here imports anything but types.
 */
import type { Cluster, Redis } from 'ioredis';

/** Any ioredis 5 or 6 client: a single `Redis` or a `Cluster`. */
export type RedisClient = Redis | Cluster;

/** The cookie part of a session: what the store reads to work out the session's lifetime. */
export interface SessionCookie {
  expires?: Date | string | null;
  originalMaxAge?: number | null;
}

/**
 * What `set` and `touch` accept: anything with an optional `cookie`. It has no index signature, so that
 * express-session's declaration-merged `SessionData` and fastify's `Session` fit as they are.
 */
export interface SessionInput {
  cookie?: SessionCookie | null;
}

/** A stored session as `get` and `all` return it: a `cookie` plus the application's own fields. */
export interface SessionData extends SessionInput {
  [key: string]: unknown;
}

/** How sessions are turned into strings and back. `parse` may be async. */
export interface Serializer {
  parse(text: string): SessionData | Promise<SessionData>;
  stringify(session: SessionData): string;
}
