import { isNoScript } from '../failures/reply-errors.js';
import type { RedisClient } from '../types.js';
import { LUA } from './lua.generated.js';
import { sendCommand } from './send-command.js';

/** Names of the Lua scripts shipped in src/redis/scripts. */
export type ScriptName = keyof typeof LUA;

type Arg = string | number;

/** Per client, the scripts its server is known to hold (an EVAL of each loaded it there). */
const loadedOn = new WeakMap<object, Set<ScriptName>>();

/**
 * Runs one of our scripts by SHA (EVALSHA), loading it with EVAL when the server does not know it yet.
 * The user's client is never modified (no defineCommand), every key goes through KEYS so ioredis
 * `keyPrefix` and cluster routing apply. Sent with {@link sendCommand}: in order with the store's other
 * commands, around the auto-pipeline of a single-node client that has one.
 *
 * A script's first call on a client is an EVAL, which loads it as it runs: an EVALSHA answered NOSCRIPT
 * is sent again as an EVAL only after its reply, so the commands sent after it in the same tick (a
 * `get` right after a `set`) would run before it. That window stays only after the server lost its
 * scripts (SCRIPT FLUSH, a restart), once per script, and the script then counts as not loaded again.
 */
export function runScript(
  client: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly Arg[],
): Promise<unknown> {
  const script = LUA[name];
  let loaded = loadedOn.get(client);
  if (loaded === undefined) {
    loaded = new Set();
    loadedOn.set(client, loaded);
  }
  if (!loaded.has(name)) return evaluate(client, name, loaded, keys, args);
  const known = loaded;
  // No async/await: this runs on every request, and each hop is a microtask.
  return sendCommand(client, 'evalsha', [script.sha, keys.length, ...keys, ...args]).catch(
    (error: unknown) => {
      if (!isNoScript(error)) throw error;
      known.delete(name);
      return evaluate(client, name, known, keys, args);
    },
  );
}

/** Runs `name` by EVAL, which loads it on the server, and records it as loaded there. */
function evaluate(
  client: RedisClient,
  name: ScriptName,
  loaded: Set<ScriptName>,
  keys: readonly string[],
  args: readonly Arg[],
): Promise<unknown> {
  const script = LUA[name];
  return sendCommand(client, 'eval', [script.lua, keys.length, ...keys, ...args]).then((reply) => {
    loaded.add(name);
    return reply;
  });
}
