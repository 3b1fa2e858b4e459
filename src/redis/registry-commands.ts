/**
 * The typed face of the connection registry's scripts (src/redis/scripts/registry-*.lua): the one module
 * that knows their KEYS and ARGV order and their result codes. See includes/registry.lua for the keys.
 */
import type { RedisClient } from '../types.js';
import { runScript } from './run-script.js';

/** The keys every registry script takes first. */
export interface RegistryBaseKeys {
  /** Lease expiries by `<region>|<pod>` (a ZSET). */
  readonly leases: string;
  /** Current incarnation by `<region>|<pod>` (a HASH). */
  readonly incs: string;
}

/** This region's outbox and its counter: given, a script appends what it did there (replication). */
export interface OutboxKeys {
  readonly outbox: string;
  readonly counter: string;
}

function outboxList(append: OutboxKeys | undefined): string[] {
  return append === undefined ? [] : [append.outbox, append.counter];
}

/** Which pod process a call speaks for. */
export interface PodIdentity {
  readonly region: string;
  readonly pod: string;
  /** This process's incarnation of the pod. */
  readonly inc: string;
}

/** What `registry-lease.lua` did. */
export enum LeaseResult {
  /** Claimed, or renewed in time. */
  Renewed = 1,
  /** Renewed after it had lapsed: connections may have been pruned meanwhile. */
  Relapsed = 0,
  /** Another process claimed the pod since: nothing written. */
  Lost = -1,
}

/** Claims (`claim`) or renews the pod's lease for `leaseMs`; resolves to the result and the new expiry. */
export function leasePod(
  client: RedisClient,
  keys: RegistryBaseKeys,
  who: PodIdentity,
  leaseMs: number,
  claim: boolean,
  append?: OutboxKeys,
): Promise<{ result: LeaseResult; expiresAt: number }> {
  const args = [who.region, who.pod, who.inc, Math.ceil(leaseMs), claim ? '1' : '0'];
  const scriptKeys = [keys.leases, keys.incs, ...outboxList(append)];
  return runScript(client, 'registry-lease', scriptKeys, args).then((reply) => {
    const [code, expiry] = reply as [number, string];
    return { result: Number(code) as LeaseResult, expiresAt: Number(expiry) };
  });
}

/** What `registry-register.lua` did. */
export enum RegisterResult {
  Registered = 1,
  /** It was registered already (its session id was updated). */
  Already = 0,
  /** Another process claimed the pod since: nothing written. */
  Lost = -1,
}

/** Registers connection `connectionId` of the user whose hash is `userKey`. */
export function registerConnection(
  client: RedisClient,
  keys: RegistryBaseKeys & { readonly user: string },
  who: PodIdentity,
  a: { userId: string; connectionId: string; sid: string; leaseMs: number },
  append?: OutboxKeys,
): Promise<RegisterResult> {
  const args = [who.region, who.pod, who.inc, a.connectionId, a.sid, Math.ceil(a.leaseMs), a.userId];
  const scriptKeys = [keys.leases, keys.incs, keys.user, ...outboxList(append)];
  return runScript(client, 'registry-register', scriptKeys, args).then(
    (reply) => Number(reply) as RegisterResult,
  );
}

/**
 * Removes connections of this pod (`items`: each with its user's hash); with `endLease` also ends the
 * pod's lease. Resolves to how many were removed.
 */
export function unregisterConnections(
  client: RedisClient,
  keys: RegistryBaseKeys,
  who: PodIdentity,
  items: readonly { readonly user: string; readonly userId: string; readonly connectionId: string }[],
  endLease: boolean,
  append?: OutboxKeys,
): Promise<number> {
  const scriptKeys = [keys.leases, keys.incs, ...items.map((item) => item.user), ...outboxList(append)];
  const args = [who.region, who.pod, who.inc, endLease ? '1' : '0'];
  for (const item of items) args.push(item.connectionId, item.userId);
  return runScript(client, 'registry-unregister', scriptKeys, args).then(Number);
}

/** One live connection as `registry-pods.lua` lists it. */
export interface LiveConnection {
  readonly region: string;
  readonly pod: string;
  readonly connectionId: string;
  /** `''` when none was given. */
  readonly sid: string;
}

/** The live connections in the user's hash `user` (dead ones are pruned on the way). */
export function liveConnections(
  client: RedisClient,
  keys: RegistryBaseKeys & { readonly user: string },
): Promise<LiveConnection[]> {
  return runScript(client, 'registry-pods', [keys.leases, keys.incs, keys.user], []).then((reply) => {
    const flat = reply as string[];
    const out: LiveConnection[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      out.push({
        region: String(flat[i]),
        pod: String(flat[i + 1]),
        connectionId: String(flat[i + 2]),
        sid: String(flat[i + 3]),
      });
    }
    return out;
  });
}

/** One registry event received from another region (see includes/registry.lua for the bodies). */
export type RemoteRegistryEvent =
  | {
      readonly op: 'l';
      readonly origin: string;
      readonly pod: string;
      readonly inc: string;
      readonly expiresAt: number;
    }
  | { readonly op: 'c'; readonly origin: string; readonly pod: string; readonly inc: string }
  | {
      readonly op: 'r' | 'u';
      readonly origin: string;
      readonly pod: string;
      readonly inc: string;
      /** The user's hash key. */
      readonly user: string;
      readonly connectionId: string;
      /** `''` for none (and for `u`). */
      readonly sid: string;
      /**
       * Where the event stands among its origin's (`<16-digit epoch>.<15-digit number>`, compared as
       * text), so that a register delivered after its unregister is refused; `''` when unknown.
       */
      readonly order: string;
    };

/** What `registry-apply.lua` did with one remote event. */
export enum RegistryApplyResult {
  Applied = 0,
  /** Stale (an older incarnation) or already applied. */
  Unchanged = 1,
  /** A lease expiry further ahead than the longest lease accepted. */
  Skewed = 4,
}

/**
 * Applies remote registry events in order; one result per event. An unregistered connection is
 * remembered `rememberMs` (its register, delivered late by a broker, is then refused).
 */
export function applyRegistryEvents(
  client: RedisClient,
  keys: RegistryBaseKeys,
  events: readonly RemoteRegistryEvent[],
  maxAheadMs: number,
  rememberMs: number,
): Promise<RegistryApplyResult[]> {
  const scriptKeys = [keys.leases, keys.incs];
  const args: (string | number)[] = [Math.ceil(maxAheadMs), Math.ceil(rememberMs)];
  for (const e of events) {
    if (e.op === 'l') args.push('l', e.origin, e.pod, e.inc, Math.floor(e.expiresAt), '', '', '');
    else if (e.op === 'c') args.push('c', e.origin, e.pod, e.inc, '', '', '', '');
    else {
      scriptKeys.push(e.user);
      args.push(e.op, e.origin, e.pod, e.inc, '', e.connectionId, e.sid, e.order);
    }
  }
  return runScript(client, 'registry-apply', scriptKeys, args).then((reply) =>
    (reply as number[]).map((code) => Number(code) as RegistryApplyResult),
  );
}
