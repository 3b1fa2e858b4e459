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
): Promise<{ result: LeaseResult; expiresAt: number }> {
  const args = [`${who.region}|${who.pod}`, who.inc, Math.ceil(leaseMs), claim ? '1' : '0'];
  return runScript(client, 'registry-lease', [keys.leases, keys.incs], args).then((reply) => {
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
  a: { connectionId: string; sid: string; leaseMs: number },
): Promise<RegisterResult> {
  const args = [who.region, who.pod, who.inc, a.connectionId, a.sid, Math.ceil(a.leaseMs)];
  return runScript(client, 'registry-register', [keys.leases, keys.incs, keys.user], args).then(
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
  items: readonly { readonly user: string; readonly connectionId: string }[],
  endLease: boolean,
): Promise<number> {
  const scriptKeys = [keys.leases, keys.incs, ...items.map((item) => item.user)];
  const args = [who.region, who.pod, who.inc, endLease ? '1' : '0', ...items.map((i) => i.connectionId)];
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
