import type { Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import { isMissingStream, isNoGroup } from '../failures/reply-errors.js';
import { createKeySpace, prefixProblem } from '../keys.js';
import { DEFAULT_OPTIONS } from '../session/options.js';
import { isValidRegion } from '../validation/ids.js';

/**
 * The Redis side of removing a region for good (docs/replication.md, "Removing a region", steps 2 and
 * 3): on every remaining region's Redis, the gone region's consumer groups on that region's outbox and
 * relay streams (Redis Streams transport only) and the resync needs flagged with it. The brokers' side
 * (an AMQP queue, NATS consumers) is the CLI's `region remove`. Step 1, taking the region out of every
 * configuration, comes first: a process still configured with it creates the groups again.
 */

/** One thing to delete on a remaining region's Redis. */
export interface RedisRemovalStep {
  /** The remaining region whose Redis holds it. */
  readonly region: string;
  /** `consumer-group` or `resync-need`. */
  readonly kind: 'consumer-group' | 'resync-need';
  /** The key (stream or state hash). */
  readonly key: string;
  /** The group name or hash field. */
  readonly name: string;
  /** The command that deletes it, as an operator would type it. */
  readonly command: string;
  /** Whether it exists (found when planning). */
  readonly exists: boolean;
  /** After {@link removeRegionFromRedis}: whether it was deleted by this run. */
  readonly removed?: boolean;
}

/** Options of {@link planRegionRemoval} and {@link removeRegionFromRedis}. */
export interface RegionRemovalOptions {
  /** The region that is gone. Required. */
  gone: string;
  /** Every remaining region and a client of its Redis. Required, at least one. */
  regions: Readonly<Record<string, Redis>>;
  /** The store's key prefix (the channel). Default `'sess:'`. */
  prefix?: string;
  /** True when the regions replicate over Redis Streams: their consumer groups for `gone` are deleted too. */
  redisStreams: boolean;
}

function check(options: RegionRemovalOptions): { prefix: string; regions: [string, Redis][] } {
  if (!isValidRegion(options.gone))
    throw new ConfigError('gone', 'must be a region id (1 to 32 of a-z, 0-9, "-")');
  const regions = Object.entries(options.regions ?? {});
  if (regions.length === 0) throw new ConfigError('regions', 'must name at least one remaining region');
  if (regions.some(([id]) => id === options.gone)) {
    throw new ConfigError('regions', `must not hold the region being removed (${options.gone})`);
  }
  const prefix = options.prefix ?? DEFAULT_OPTIONS.prefix;
  const problem = prefixProblem(prefix);
  if (problem) throw new ConfigError('prefix', problem);
  return { prefix, regions };
}

/** Groups of `stream`, `[]` when the stream does not exist. */
async function groupsOf(client: Redis, stream: string): Promise<string[]> {
  try {
    const groups = (await client.xinfo('GROUPS', stream)) as unknown[][];
    return groups.map((fields) => {
      const i = fields.indexOf('name');
      return String(fields[i + 1]);
    });
  } catch (error) {
    if (isMissingStream(error)) return [];
    throw error;
  }
}

/** What removing `gone` deletes on the remaining regions' Redis, each step marked as existing or not. */
export async function planRegionRemoval(options: RegionRemovalOptions): Promise<RedisRemovalStep[]> {
  const { prefix, regions } = check(options);
  const keys = createKeySpace(prefix);
  const { gone } = options;
  const plans = await Promise.all(
    regions.map(async ([region, client]) => {
      const steps: RedisRemovalStep[] = [];
      if (options.redisStreams) {
        for (const family of ['outbox', 'relay'] as const) {
          const key = keys.internal(family, region);
          const groups = await groupsOf(client, key);
          steps.push({
            region,
            kind: 'consumer-group',
            key,
            name: gone,
            command: `XGROUP DESTROY ${key} ${gone}`,
            exists: groups.includes(gone),
          });
        }
      }
      const state = keys.internal('state', region);
      const field = `resync:${gone}`;
      steps.push({
        region,
        kind: 'resync-need',
        key: state,
        name: field,
        command: `HDEL ${state} ${field}`,
        exists: (await client.hexists(state, field)) === 1,
      });
      return steps;
    }),
  );
  return plans.flat();
}

/**
 * Deletes what {@link planRegionRemoval} finds. Idempotent: what is already gone is reported with
 * `removed: false`. Rejects with the client's error when a region's Redis fails (steps done before
 * stay done; run it again).
 */
export async function removeRegionFromRedis(options: RegionRemovalOptions): Promise<RedisRemovalStep[]> {
  const steps = await planRegionRemoval(options);
  const clients = options.regions;
  const done: RedisRemovalStep[] = [];
  for (const step of steps) {
    const client = clients[step.region] as Redis;
    let removed = false;
    if (!step.exists) {
      // Nothing to delete.
    } else if (step.kind === 'consumer-group') {
      try {
        removed = Number(await client.xgroup('DESTROY', step.key, step.name)) === 1;
      } catch (error) {
        // Gone meanwhile (its Redis restarted empty): nothing left to delete.
        if (!isMissingStream(error) && !isNoGroup(error)) throw error;
      }
    } else {
      removed = (await client.hdel(step.key, step.name)) === 1;
    }
    done.push({ ...step, removed });
  }
  return done;
}
