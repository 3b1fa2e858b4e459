/**
 * A dedicated pub/sub connection for a subscriber of geosession's channels (revocation events,
 * cache invalidations), on a single Redis or on a Redis Cluster.
 *
 * On a single Redis it is a `duplicate()` of the client: ioredis reconnects it by itself. On a Cluster a
 * classic PUBLISH reaches every node through the cluster bus, so a subscriber may listen on any node;
 * ioredis's own Cluster subscriber moves to another node silently when its node goes (and re-subscribes
 * by itself), so its owner could never learn that messages were missed in between. Here the connection
 * is a plain client of one node (a `duplicate()` of that node's client, so TLS, passwords and names
 * follow), that does not reconnect: when it ends, `close` is emitted, another node of the Cluster's
 * current pool is chosen after a short pause, and `ready` is emitted once connected. The owner
 * subscribes on every `ready`, so it always knows when it was not listening.
 */
import { EventEmitter } from 'node:events';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../types.js';

/** What a subscriber needs of its connection (an ioredis `Redis` has all of it). */
export interface PubSubConnection {
  /** `wait` until {@link connect} (with `lazyConnect`), then the underlying connection's status. */
  readonly status: string;
  on(event: 'message', listener: (channel: string, message: string) => void): this;
  on(event: 'ready' | 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  /** Connects; resolves once ready. */
  connect(): Promise<void>;
  subscribe(channel: string): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** Options of {@link pubsubConnection}. */
export interface PubSubConnectionOptions {
  /** Connect only on `connect()`. */
  readonly lazyConnect: boolean;
}

/** First and longest pause before a Cluster subscriber tries another node, ms. */
const FIRST_PAUSE_MS = 50;
const LONGEST_PAUSE_MS = 2000;

/**
 * A pub/sub connection beside `client` (see the module comment). Channels are not keys: no ioredis
 * `keyPrefix` is applied to them, and the owner re-subscribes itself on each `ready`.
 */
export function pubsubConnection(client: RedisClient, options: PubSubConnectionOptions): PubSubConnection {
  if ((client as Cluster).isCluster) return new ClusterNodeSubscriber(client as Cluster, options.lazyConnect);
  return (client as Redis).duplicate({
    keyPrefix: '',
    autoResubscribe: false,
    lazyConnect: options.lazyConnect,
  }) as unknown as PubSubConnection;
}

/** `host:port` of a node client. */
function nodeKey(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

/** A subscriber on one node of a Cluster at a time, moving to another node when its node goes. */
class ClusterNodeSubscriber extends EventEmitter implements PubSubConnection {
  private connection: Redis | undefined;
  private started = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private pause = FIRST_PAUSE_MS;
  /** The node last lost: another one is preferred next. */
  private lastLost: string | undefined;
  private readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(
    private readonly cluster: Cluster,
    lazy: boolean,
  ) {
    super();
    if (!lazy) this.begin();
  }

  get status(): string {
    if (!this.started) return 'wait';
    if (this.closed) return 'end';
    return this.connection?.status ?? 'reconnecting';
  }

  connect(): Promise<void> {
    if (this.connection?.status === 'ready') return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('the subscriber was closed'));
    const ready = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
    this.begin();
    return ready;
  }

  subscribe(channel: string): Promise<unknown> {
    const connection = this.connection;
    if (!connection || this.closed) return Promise.reject(new Error('the subscriber is not connected'));
    return connection.subscribe(channel);
  }

  async quit(): Promise<unknown> {
    const connection = this.stop();
    return connection?.quit();
  }

  disconnect(): void {
    this.stop()?.disconnect();
  }

  private stop(): Redis | undefined {
    this.closed = true;
    this.started = true;
    if (this.timer) clearTimeout(this.timer);
    const connection = this.connection;
    this.connection = undefined;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const waiter of waiters) waiter.reject(new Error('the subscriber was closed'));
    return connection;
  }

  private begin(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.open();
  }

  /** Picks a node (another than the one lost, when there is one) and connects to it. */
  private open(): void {
    this.timer = undefined;
    if (this.closed) return;
    const nodes = this.cluster.nodes('all');
    const others = nodes.filter((node) => nodeKey(node) !== this.lastLost);
    const pool = others.length > 0 ? others : nodes;
    const node = pool[Math.floor(Math.random() * pool.length)];
    if (!node) {
      // The Cluster has not discovered its nodes yet (or lost them all): it refreshes by itself.
      this.retry();
      return;
    }
    const connection = node.duplicate({
      keyPrefix: '',
      autoResubscribe: false,
      lazyConnect: false,
      enableOfflineQueue: true,
      // One connection per node: when it ends, another node is tried (see `end` below).
      retryStrategy: () => null,
    });
    this.connection = connection;
    connection.on('message', (channel: string, message: string) => {
      if (this.connection === connection) this.emit('message', channel, message);
    });
    connection.on('error', (error: Error) => {
      if (this.connection === connection && this.listenerCount('error') > 0) this.emit('error', error);
    });
    connection.on('ready', () => {
      if (this.connection !== connection) return;
      this.pause = FIRST_PAUSE_MS;
      this.emit('ready');
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    });
    connection.on('close', () => {
      if (this.connection === connection) this.emit('close');
    });
    connection.on('end', () => {
      if (this.connection !== connection) return;
      this.connection = undefined;
      this.lastLost = nodeKey(node);
      this.retry();
    });
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    const pause = this.pause;
    this.pause = Math.min(LONGEST_PAUSE_MS, this.pause * 2);
    this.timer = setTimeout(() => this.open(), pause);
    this.timer.unref();
  }
}
