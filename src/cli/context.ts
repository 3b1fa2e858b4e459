import { Redis } from 'ioredis';
import { classifyFailure, replyCode } from '../failures/reply-errors.js';
import { createKeySpace, type KeySpace } from '../keys.js';
import type { CliConfig } from './config.js';
import { redactUrl } from './config.js';
import { CliError, ExitCode, messageOf, UnreachableError, UsageError } from './errors.js';
import { createOutput, type Output } from './output.js';
import { createProgress, type Progress } from './progress.js';

/** One region as a command sees it. */
export interface RegionHandle {
  /** The region id. */
  readonly id: string;
  /** Its Redis URL, password redacted. */
  readonly url: string;
  /** A client with the run's command timeout (connected). */
  readonly client: Redis;
  /** The store's keys in this region. */
  readonly keys: KeySpace;
}

/**
 * What a command runs with: the configuration, the regions (one connected ioredis client each, with a
 * short connect timeout and no endless retries), output and progress. `close()` ends every connection
 * so the process can exit.
 */
export class CliContext {
  private readonly handles = new Map<string, RegionHandle>();
  private readonly extra: Redis[] = [];
  private readonly abort = new AbortController();
  private readonly onSignal = () => this.abort.abort();

  private constructor(
    /** The resolved configuration. */
    readonly config: CliConfig,
    /** Where the command prints. */
    readonly out: Output,
  ) {
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /** Aborted on SIGINT or SIGTERM: a command that runs until stopped (tail, watch) ends cleanly. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /**
   * Connects to every configured region (or those of `only`), failing with exit 2 when none is
   * configured and exit 3, naming the region, when one cannot be reached.
   */
  static async open(
    config: CliConfig,
    options: { only?: readonly string[]; showIds?: boolean; minRegions?: number } = {},
  ): Promise<CliContext> {
    const context = new CliContext(config, createOutput({ json: config.json, showIds: options.showIds }));
    const ids = options.only ?? [...config.regions.keys()];
    const min = options.minRegions ?? 1;
    if (config.regions.size < min) {
      throw new UsageError(
        config.regions.size === 0
          ? 'no regions: give --region id=redis://host:port (repeatable), GEOSESSION_REGIONS or --config'
          : `this command needs at least ${min} regions, ${config.regions.size} given`,
      );
    }
    for (const id of ids) {
      if (!config.regions.has(id))
        throw new UsageError(`unknown region ${id}: configured are ${[...config.regions.keys()].join(', ')}`);
    }
    try {
      await Promise.all(
        ids.map(async (id) => {
          const client = await context.connect(id);
          context.handles.set(id, {
            id,
            url: redactUrl(config.regions.get(id) ?? ''),
            client,
            keys: createKeySpace(config.prefix, '', config.outboxShards > 1 ? config.outboxShards : 0),
          });
        }),
      );
    } catch (error) {
      await context.close();
      throw error;
    }
    return context;
  }

  /** The connected regions, in configuration order. */
  get regions(): RegionHandle[] {
    return [...this.config.regions.keys()].flatMap((id) => {
      const handle = this.handles.get(id);
      return handle ? [handle] : [];
    });
  }

  /** The region `id`; a usage error when it is not configured. */
  region(id: string): RegionHandle {
    const handle = this.handles.get(id);
    if (!handle) {
      throw new UsageError(
        `unknown region ${id}: configured are ${[...this.config.regions.keys()].join(', ')}`,
      );
    }
    return handle;
  }

  /**
   * A second connection to region `id` with no command timeout, for blocking reads (`XREAD BLOCK`);
   * closed with the context.
   */
  async blockingClient(id: string): Promise<Redis> {
    this.region(id);
    return this.connect(id, { blocking: true });
  }

  /** A progress bar for `label` (a no-op unless stderr is a terminal and the output is not JSON). */
  progress(label: string): Progress {
    return createProgress(label, { json: this.config.json });
  }

  /**
   * Runs `fn` against region `id`'s Redis, turning a lost connection into exit 3 and an error reply
   * into exit 1, both naming the region.
   */
  async inRegion<T>(id: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw regionError(id, error);
    }
  }

  /** Ends every connection. */
  async close(): Promise<void> {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    const clients = [...[...this.handles.values()].map((h) => h.client), ...this.extra];
    this.handles.clear();
    this.extra.length = 0;
    await Promise.all(
      clients.map(async (client) => {
        try {
          await Promise.race([client.quit(), new Promise((r) => setTimeout(r, 500).unref())]);
        } catch {
          // already gone
        }
        client.disconnect();
      }),
    );
  }

  private async connect(id: string, options: { blocking?: boolean } = {}): Promise<Redis> {
    const url = this.config.regions.get(id) ?? '';
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: this.config.timeoutMs,
      commandTimeout: options.blocking ? undefined : this.config.timeoutMs,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
      enableOfflineQueue: false,
      connectionName: 'geosession-cli',
    });
    let lastError: unknown;
    client.on('error', (error) => {
      lastError = error;
    });
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      const why = lastError ?? error;
      throw new UnreachableError(id, `cannot reach Redis at ${redactUrl(url)}: ${messageOf(why)}`, {
        cause: why,
      });
    }
    // One Redis per region: a node of a Redis Cluster holds only its own slots (SCAN would miss the
    // others' keys, commands would meet MOVED). INFO refused by an ACL: not known, go on.
    const info = await client.info('cluster').catch(() => '');
    if (/cluster_enabled:1/.test(info)) {
      client.disconnect();
      throw new UsageError(
        `region ${id}: ${redactUrl(url)} is a Redis Cluster node; the geosession command reads one Redis per region. On a Redis Cluster, call the functions of geosession/admin with an ioredis Cluster client (docs/cluster.md)`,
      );
    }
    if (options.blocking) this.extra.push(client);
    return client;
  }
}

/** A failure of a call to region `id`'s Redis as the CLI reports it. */
export function regionError(id: string, error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (replyCode(error) !== undefined) {
    return new CliError(ExitCode.problem, `region ${id}: Redis answered an error: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const { code } = classifyFailure(error);
  if (code === 'CONNECTION' || code === 'TIMEOUT') {
    return new UnreachableError(id, `Redis stopped answering: ${messageOf(error)}`, { cause: error });
  }
  return new CliError(ExitCode.problem, `region ${id}: ${messageOf(error)}`, { cause: error });
}
