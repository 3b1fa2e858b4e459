import type { RedisClient } from '../types.js';

/** The commands geosession sends through {@link sendCommand}: its hot paths. */
export type DirectCommand = 'evalsha' | 'eval' | 'mget' | 'get' | 'pexpiretime';

type Arg = string | number;

/** What the constructor of an ioredis command takes (the same in ioredis 5 and 6). */
interface CommandOptions {
  replyEncoding: 'utf8';
  keyPrefix: string | undefined;
  errorStack: Error | undefined;
}

type CommandClass = new (name: string, args: Arg[], options: CommandOptions) => unknown;

/** The parts of an ioredis client this module reads; every one is public in ioredis 5 and 6. */
interface Client {
  readonly options: { enableAutoPipelining?: boolean; keyPrefix?: string; showFriendlyErrorStack?: boolean };
  readonly isCluster?: boolean;
  sendCommand(command: unknown): unknown;
  pipeline(): unknown;
}

/** Each auto-pipelining client's Command class, `null` when none could be found. */
const commandClasses = new WeakMap<object, CommandClass | null>();

/**
 * The Command class of the ioredis `client` was made with (5 or 6; they differ, and a client only takes
 * its own). Not `client.constructor`: ioredis mixes EventEmitter into its prototype, constructor
 * included. A throwaway pipeline of the client (never executed, never sent) builds a command and hands
 * it to its own `sendCommand`, which we replace on that pipeline to read the command's class.
 */
function commandClassOf(client: Client): CommandClass | null {
  let found = commandClasses.get(client);
  if (found !== undefined) return found;
  found = null;
  try {
    const probe = client.pipeline() as { sendCommand(command: unknown): unknown; ping(): unknown };
    probe.sendCommand = (command: unknown) => {
      const ctor = (command as { constructor?: unknown }).constructor;
      if (typeof ctor === 'function') found = ctor as CommandClass;
      return probe;
    };
    probe.ping();
  } catch {
    found = null; // not an ioredis client as we know it: its own methods are used
  }
  commandClasses.set(client, found);
  return found;
}

/**
 * Sends one of geosession's own commands and resolves to its reply, exactly as `client[name](...args)`
 * would. The difference is only with a single-node client created with `enableAutoPipelining: true`:
 * the command then goes around ioredis' auto-pipeline, straight to the connection, as it would without
 * the option.
 *
 * Why: the auto-pipeline keeps at most one batch in flight per connection (the next one is written
 * only once every reply of the previous one arrived), and wraps each command in a pipeline entry, one
 * more promise and a `process.nextTick` per reply. For a client that sends every command in its own
 * socket write that is a win (one write per tick), but geosession already coalesces its writes per
 * tick ({@link createWriteBatcher}, which corks the socket) with several batches in flight: through the
 * auto-pipeline it paid the wrapping and the lock-step and gained nothing, and got slower (docs/
 * benchmarks.md, "Auto-pipelining"). The user's own commands on the client keep being auto-pipelined.
 *
 * Every command geosession sends on a hot path, scripts included, goes through here, so their order
 * on the connection is the order they were issued in (a set then a get in one tick stay in that order).
 * A Cluster client keeps its auto-pipeline: there the write batcher does nothing and the auto-pipeline
 * is what groups commands per node. Key prefixes apply as with any command (the command's own key
 * positions, from the command table).
 */
export function sendCommand(client: RedisClient, name: DirectCommand, args: Arg[]): Promise<unknown> {
  const c = client as unknown as Client;
  const options = c.options;
  if (options.enableAutoPipelining === true && c.isCluster !== true) {
    const Command = commandClassOf(c);
    if (Command !== null) {
      const command = new Command(name, args, {
        replyEncoding: 'utf8',
        keyPrefix: options.keyPrefix,
        errorStack: options.showFriendlyErrorStack ? new Error() : undefined,
      });
      return c.sendCommand(command) as Promise<unknown>;
    }
  }
  return (client[name] as (...a: Arg[]) => Promise<unknown>)(...args);
}
