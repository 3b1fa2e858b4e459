import { readFileSync } from 'node:fs';
import { prefixProblem } from '../keys.js';
import { DEFAULT_OPTIONS } from '../session/options.js';
import { isValidRegion } from '../validation/ids.js';
import { hashTagOf } from '../wire/internal-keys.js';
import { MAX_OUTBOX_SHARDS } from '../wire/outbox-shards.js';
import { messageOf, UsageError } from './errors.js';

/**
 * Where the CLI finds the regions, first match wins: `--region id=url` (repeatable), then the
 * `GEOSESSION_REGIONS` environment variable (`hk=redis://…,kr=redis://…`), then `--config file.json`
 * (`{ "prefix": "sess:", "outboxShards": 4, "regions": { "hk": "redis://…" } }`). The key prefix:
 * `--prefix`, then the config file's `prefix`, then the store's default; the stores' `outboxShards` the
 * same way (`--outbox-shards`, then the file; default 1, the unsharded layout).
 */

/** The global options every command sees (commander's `optsWithGlobals()`). */
export interface GlobalOptions {
  /** `--region id=url`, repeatable. */
  readonly region?: readonly string[];
  /** `--config file.json`. */
  readonly config?: string;
  /** `--prefix`. */
  readonly prefix?: string;
  /** `--outbox-shards`: the stores' `outboxShards`. */
  readonly outboxShards?: number;
  /** `--json`: machine output on stdout. */
  readonly json?: boolean;
  /** `--timeout`: connect and command timeout in ms. */
  readonly timeout?: string;
}

/** The resolved configuration of one run. */
export interface CliConfig {
  /** Region id to Redis URL, in the order given. */
  readonly regions: ReadonlyMap<string, string>;
  /** The store's key prefix. */
  readonly prefix: string;
  /**
   * The stores' `outboxShards` (docs/replication.md, "Sharded outboxes"): above 1, sessions and their
   * outboxes use the sharded key layout. 1 is the unsharded layout.
   */
  readonly outboxShards: number;
  /** Machine output on stdout. */
  readonly json: boolean;
  /** Connect and command timeout, ms. */
  readonly timeoutMs: number;
}

/** Default connect and command timeout, ms. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** Environment variable listing the regions. */
export const REGIONS_ENV = 'GEOSESSION_REGIONS';

/** Parses one `id=url` pair; `source` names where it came from in errors. */
export function parseRegionPair(pair: string, source: string): [string, string] {
  const eq = pair.indexOf('=');
  if (eq < 0)
    throw new UsageError(`${source}: "${pair}" is not id=redis-url (e.g. hk=redis://127.0.0.1:6379)`);
  return checkRegion(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim(), source);
}

function checkRegion(id: string, url: unknown, source: string): [string, string] {
  if (!isValidRegion(id)) {
    throw new UsageError(`${source}: region id "${id}" must be 1 to 32 of a-z, 0-9 and "-"`);
  }
  if (typeof url !== 'string' || url === '') throw new UsageError(`${source}: region ${id} has no Redis URL`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(
      `${source}: region ${id}: "${redactUrl(url)}" is not a URL (e.g. redis://host:6379)`,
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new UsageError(`${source}: region ${id}: the URL must start with redis:// or rediss://`);
  }
  return [id, url];
}

function addAll(pairs: Iterable<[string, string]>, source: string): Map<string, string> {
  const regions = new Map<string, string>();
  for (const [id, url] of pairs) {
    if (regions.has(id)) throw new UsageError(`${source}: region ${id} is given twice`);
    regions.set(id, url);
  }
  return regions;
}

interface ConfigFile {
  prefix?: string;
  outboxShards?: number;
  regions?: Record<string, string>;
}

function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--config: cannot read ${path}: ${messageOf(error)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config: ${path} is not JSON: ${messageOf(error)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`--config: ${path} must hold an object { "prefix": …, "regions": { … } }`);
  }
  const file = value as Record<string, unknown>;
  if (file.prefix !== undefined && typeof file.prefix !== 'string') {
    throw new UsageError(`--config: ${path}: "prefix" must be a string`);
  }
  if (file.outboxShards !== undefined && typeof file.outboxShards !== 'number') {
    throw new UsageError(`--config: ${path}: "outboxShards" must be a number`);
  }
  const regions = file.regions;
  if (regions !== undefined && (typeof regions !== 'object' || regions === null || Array.isArray(regions))) {
    throw new UsageError(`--config: ${path}: "regions" must be an object of region id to Redis URL`);
  }
  return {
    prefix: file.prefix as string | undefined,
    outboxShards: file.outboxShards as number | undefined,
    regions: regions as Record<string, string> | undefined,
  };
}

/** Resolves the configuration from the global options and `env`. */
export function resolveConfig(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): CliConfig {
  const file = options.config === undefined ? undefined : readConfigFile(options.config);
  let regions: Map<string, string>;
  if (options.region && options.region.length > 0) {
    regions = addAll(
      options.region.map((pair) => parseRegionPair(pair, '--region')),
      '--region',
    );
  } else if (env[REGIONS_ENV]) {
    const pairs = env[REGIONS_ENV]
      .split(',')
      .map((pair) => pair.trim())
      .filter((pair) => pair !== '');
    regions = addAll(
      pairs.map((pair) => parseRegionPair(pair, REGIONS_ENV)),
      REGIONS_ENV,
    );
  } else if (file?.regions) {
    const source = `--config ${options.config}`;
    regions = addAll(
      Object.entries(file.regions).map(([id, url]) => checkRegion(id, url, source)),
      source,
    );
  } else {
    regions = new Map();
  }
  const prefix = options.prefix ?? file?.prefix ?? DEFAULT_OPTIONS.prefix;
  const problem = prefixProblem(prefix);
  if (problem) throw new UsageError(`--prefix "${prefix}" ${problem}`);
  const timeoutMs = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : Number(options.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError(
      `--timeout must be a positive whole number of milliseconds, got "${options.timeout}"`,
    );
  }
  const outboxShards = options.outboxShards ?? file?.outboxShards ?? 1;
  if (!Number.isInteger(outboxShards) || outboxShards < 1 || outboxShards > MAX_OUTBOX_SHARDS) {
    throw new UsageError(`--outbox-shards must be the stores' outboxShards, 1 to ${MAX_OUTBOX_SHARDS}`);
  }
  if (outboxShards > 1 && hashTagOf(prefix) !== undefined) {
    throw new UsageError(
      `--outbox-shards ${outboxShards}: a prefix with a hash tag ("${prefix}") has one outbox`,
    );
  }
  return { regions, prefix, outboxShards, json: options.json === true, timeoutMs };
}

/** `url` with any password replaced by `***`, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/)([^@/]*)@/, (_, scheme: string, auth: string) => {
    const colon = auth.indexOf(':');
    return `${scheme}${colon < 0 ? '***' : `${auth.slice(0, colon)}:***`}@`;
  });
}
