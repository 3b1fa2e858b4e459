/**
 * The options of {@link GeoSessionStore}: {@link GeoSessionStoreOptions} as an application writes them,
 * each with its TSDoc and default, and {@link ResolvedOptions}, what the store holds once ./options.ts
 * has filled in the defaults and validated them.
 */

import type { Sealer } from '../contracts/sealer.js';
import type { ReplicationTransport } from '../contracts/transport.js';
import type { RedisClient, Serializer, SessionData } from '../types.js';
import type { Alert, AlertRules, ResolvedAlertRules } from './alert-options.js';
import type { NearCacheOptions, ResolvedNearCache } from './near-cache-options.js';

/** Options of {@link GeoSessionStore}. Only `region` and `client` are required. */
export interface GeoSessionStoreOptions {
  /** This process's region: 1 to 32 of lowercase letters, digits and '-' (e.g. `hk`, `ap-seoul-1`). */
  region: string;
  /** The region's ioredis client (5 or 6, `Redis` or `Cluster`). It stays yours: `close()` never quits it. */
  client: RedisClient;
  /**
   * Key prefix of session values, as in connect-redis. `''` is allowed; `|` is not, and braces only as
   * one Redis Cluster hash tag (`{app}sess:`).
   * @default 'sess:'
   */
  prefix?: string;
  /**
   * Lifetime in seconds when the cookie has no expiry, or a function of the session that always wins.
   * @default 86400
   */
  ttl?: number | ((session: SessionData) => number);
  /**
   * The user a session belongs to (`undefined`: none). With it the scripts keep a per-user index of
   * sessions in every region (`store.sessionsOf`, `store.logoutEverywhere`). A user id is checked as a
   * session id is: 1 to 256 printable ASCII characters, no `{`, `}` or `|`. With the sharded key layout
   * (`outboxShards` above 1, or a Redis Cluster that replicates) each shard keeps its own index of the
   * user, in the slot of the sessions it lists. On a Redis Cluster it needs that layout (or a prefix with
   * a hash tag of its own): a Cluster without a `transport` and with `outboxShards` 1 is refused with a
   * `ConfigError`, since a session's keys are then in a slot of their own.
   * @default undefined
   */
  userId?: ((session: SessionData) => string | undefined) | undefined;
  /**
   * Turns sessions into strings and back.
   * @default JSON
   */
  serializer?: Serializer;
  /**
   * Make `touch` a no-op (express-session then only writes on change).
   * @default false
   */
  disableTouch?: boolean;
  /**
   * Store sessions without expiry; `touch` becomes a no-op.
   * @default false
   */
  disableTTL?: boolean;
  /**
   * Let `clear()` run with `prefix: ''`. Without a prefix, every key of the database that looks like a
   * session id counts as a session, so `clear()` would delete the application's other keys too; it is
   * refused unless this is `true`. Only valid with `prefix: ''`.
   * @default false
   */
  allowClearWithoutPrefix?: boolean;
  /**
   * `COUNT` hint of each `SCAN` in `all`, `ids`, `length` and `clear`.
   * @default 100
   */
  scanCount?: number;
  /**
   * Longest wait for Redis on any call, in ms. Past it the call fails with a `TimeoutError`, so a Redis
   * that is down or stalled never hangs a request.
   * @default 2000
   */
  operationTimeoutMs?: number;
  /**
   * The stale-event horizon, in seconds: a replicated set or touch made longer ago than this is
   * refused, and regions cut off from each other for longer need a resync. A logout's tombstone lives
   * twice this long, and also outlives the session it ends, so that no change inside the horizon can
   * arrive after it is gone.
   * @default 86400
   */
  tombstoneTtl?: number;
  /**
   * Replication transport. Without one, the store is a single-region store. With one, `sealer` is
   * required (a sealer, or `'none'` said explicitly). With a Redis Cluster client, any transport but
   * Redis Streams (which reads one outbox per region; see `outboxShards`).
   * @default undefined
   */
  transport?: ReplicationTransport;
  /**
   * How many outbox streams this region's session changes are spread over (docs/replication.md,
   * "Sharded outboxes"), 1 to 256. Every change of one session goes to the same shard, and the session's
   * keys carry that shard's hash tag (`P{s<i>.<k>}<sid>`), so on a Redis Cluster one script writes the
   * session and its shard's outbox in one slot, and the shards spread over the masters. With 1 on a
   * single node (the default there) every key is as it always was, connect-redis compatible. A Redis
   * Cluster that replicates is always sharded (one shard at least); a prefix with its own hash tag
   * (`{app}sess:`) keeps one outbox in its one slot (only 1 is accepted). Every process of every region
   * must use the same value, or read-through and verify see other keys.
   * @default 8 on a Redis Cluster with a `transport` (and a prefix without a hash tag), else 1
   */
  outboxShards?: number;
  /**
   * Clients of other regions' Redis, by region id, for read-through: a local miss for an id born in
   * one of them is read from there.
   * @default {}
   */
  remotes?: Record<string, RedisClient>;
  /**
   * Longest wait for a remote region during read-through, in ms.
   * @default 250
   */
  readThroughTimeoutMs?: number;
  /**
   * How long an id found in no region is remembered as missing, in ms, so a flood of unknown ids costs
   * at most one remote read per id per window. A local write or logout of the id forgets it at once.
   * @default 250
   */
  readThroughNegativeTtlMs?: number;
  /**
   * Serve reads from process memory, kept right by Redis key tracking on two connections of the
   * store's own, per master on a Cluster (README "Near cache", docs/near-cache.md): `{}` for the
   * defaults, or `{ max, maxStalenessMs }`. A session is never served after a write, destroy or logout applied to
   * this region's Redis has been reported to the process, nor longer than `maxStalenessMs` after it was
   * read, nor past its expiry. On a Cluster, tracking is armed on every master and the whole cache is
   * dropped on a failover, a slot move or a change of the master set; the sharded key layout is tracked
   * per shard. Needs Redis 6+.
   * @default false
   */
  nearCache?: false | NearCacheOptions;
  /**
   * A touch (or an unchanged write) is replicated only when it moves the session's expiry at least this
   * many seconds past what the other regions were last told; smaller moves are applied here only. So
   * another region may expire an idle session up to this much earlier than this one. `0` replicates
   * every touch.
   * @default 60
   */
  replicateTouchAfter?: number;
  /**
   * Largest clock difference between regions' Redis servers, in ms. A replicated change whose version or
   * time is further ahead of this region's Redis clock is refused, so a forged or broken origin cannot
   * pin a session; the host's clock counts towards new versions by at most half of it.
   * @default 60000
   */
  maxClockSkewMs?: number;
  /**
   * Seals every batch this region sends and opens every sealed batch it receives (e.g.
   * `createPasetoSealer` from `geosession/paseto`). With one, unsealed envelopes are refused.
   *
   * Required with a `transport`: unsealed replication lets anyone who can write to the broker or the
   * streams between regions rewrite any session, so it must be asked for by name with `'none'` (e.g. for
   * tests, or links that are private end to end). Without a transport it is ignored when `'none'`.
   * @default undefined (an error with a `transport`)
   */
  sealer?: Sealer | 'none';
  /**
   * With a sealer: still accept unsealed envelopes. Only for the window while sealing is switched on
   * region by region (docs/security.md); anyone who can write to the transport can forge them.
   * @default false
   */
  acceptUnsealed?: boolean;
  /**
   * With a sealer: open sealed batches but still send unsealed ones. Only for the first step of
   * switching sealing on (docs/security.md): over a broker a region that seals before every other region
   * can open sealed batches would have them refused there. Needs `acceptUnsealed: true`.
   * @default false
   */
  sendUnsealed?: boolean;
  /**
   * Largest session `set()` accepts, in UTF-8 bytes of its serialized form. A larger one is refused with
   * a `SessionTooLargeError` before anything is written. The default fits every transport's default
   * message limit once the change is framed and sealed (NATS `max_payload` 1 MiB is the smallest: a
   * sealed change is escaped twice as JSON, once in the sealed batch and once in the token's claims,
   * which at worst doubles it each time, and the token is base64url, 4/3 of that: 128 KiB × 16/3 is
   * about 683 KiB), and
   * keeps multi-megabyte values out of Redis when the store does not replicate. Raise it only together
   * with the broker's limit (docs/transports); over the limit a change is dead-lettered as `too-large`
   * by the publishing region and never replicated. `Infinity` turns the check off.
   * @default 131072 (128 KiB)
   */
  maxSessionBytes?: number;
  /**
   * Most entries kept in this region's dead-letter stream of refused envelopes (oldest trimmed).
   * @default 10000
   */
  deadLetterLimit?: number;
  /**
   * Batches the relay keeps published and unconfirmed at once (broker transports, or a sealer).
   * @default 32
   */
  relayInFlight?: number;
  /**
   * What the outbox keeps while a relay cannot publish (the broker is away): past `entries` or `ageMs` the
   * oldest are dropped and every region needs a resync; past `warnAt` an `error` event warns.
   * @default { entries: 1000000, ageMs: tombstoneTtl, warnAt: 0.5 }
   */
  maxOutboxBacklog?: { entries?: number; ageMs?: number; warnAt?: number };
  /**
   * Consumers of this region's outbox relay group (broker transports, or a sealer) idle this long with
   * nothing pending, left by processes that stopped or died, are removed from the group.
   * @default 3600000
   */
  consumerIdleMs?: number;
  /**
   * Changes of another region are numbered; numbers missing this long (later ones arrived, or a
   * heartbeat announced them) are a gap: that region is flagged for resync with the range missed
   * (`replicationStats().needsResync`, an `error` event). Numbers that still arrive later are applied,
   * and once every gap is filled the flag clears. Keep it above the time a failed batch takes to come
   * again (Redis Streams: `claimIdleMs`, 30 s, for a process that died holding a batch).
   * @default 40000
   */
  gapGraceMs?: number;
  /**
   * A region whose outbox was quiet this long announces its last number (a heartbeat), so that other
   * regions notice a gap at the tail without waiting for the next change; 0 turns heartbeats off.
   * @default 5000
   */
  heartbeatMs?: number;
  /**
   * Called once when an alert rule fires and once when it clears (see `alerts` and docs/operations.md,
   * "Alerts"). A hook that throws is reported as an `error` event (`CallbackError`); it never stops the
   * checks. Only a store with a `transport` raises alerts.
   * @default undefined
   */
  onAlert?: (alert: Alert) => void;
  /**
   * The alert rules' thresholds; `false` turns a rule off. Omitted rules and fields keep their defaults.
   * @default DEFAULT_ALERT_RULES: lag p99 > 10 s for 60 s; backlog > 10000 entries or older than 5 min
   * for 60 s; transport not ready for 30 s; any rejected envelope (clears after 5 min quiet); any
   * needed resync; any new dead letter (clears after 5 min quiet)
   */
  alerts?: AlertRules;
  /**
   * How often the alert rules are checked and this process's status record is written into
   * `{P|status}:<region>` (read by `readStatus()` and `geosession status`), in ms. At least 100.
   * @default 10000
   */
  statusIntervalMs?: number;
  /**
   * Write this process's status record into Redis, so that status can be read without the app.
   * @default true
   */
  statusRecord?: boolean;
  /**
   * The host's clock, epoch ms. Only tests replace it (to play a host whose clock is wrong).
   * @default Date.now
   */
  clock?: () => number;
}

/** The options after defaults and validation. */
export interface ResolvedOptions {
  readonly region: string;
  readonly client: RedisClient;
  readonly prefix: string;
  readonly ttl: number | ((session: SessionData) => number);
  readonly userId: ((session: SessionData) => string | undefined) | undefined;
  readonly serializer: Serializer;
  readonly disableTouch: boolean;
  readonly disableTTL: boolean;
  readonly scanCount: number;
  readonly allowClearWithoutPrefix: boolean;
  readonly operationTimeoutMs: number;
  readonly tombstoneTtl: number;
  readonly transport: ReplicationTransport | undefined;
  /** The key space's outbox shards: 0 for the unsharded layout (see `outboxShards`). */
  readonly outboxShards: number;
  readonly remotes: Readonly<Record<string, RedisClient>>;
  readonly readThroughTimeoutMs: number;
  readonly readThroughNegativeTtlMs: number;
  readonly nearCache: ResolvedNearCache | undefined;
  readonly replicateTouchAfter: number;
  readonly maxClockSkewMs: number;
  readonly sealer: Sealer | undefined;
  readonly acceptUnsealed: boolean;
  readonly sendUnsealed: boolean;
  readonly maxSessionBytes: number;
  readonly deadLetterLimit: number;
  readonly relayInFlight: number;
  readonly maxOutboxBacklog: { entries: number; ageMs: number; warnAt: number };
  readonly consumerIdleMs: number;
  readonly gapGraceMs: number;
  readonly heartbeatMs: number;
  readonly onAlert: ((alert: Alert) => void) | undefined;
  readonly alerts: ResolvedAlertRules;
  readonly statusIntervalMs: number;
  readonly statusRecord: boolean;
  readonly clock: () => number;
}
