import { isNoScript } from '../failures/reply-errors.js';
import type { RedisClient } from '../types.js';
import { LUA } from './lua.generated.js';

/** Names of the Lua scripts shipped in src/redis/scripts. */
export type ScriptName = keyof typeof LUA;

type Arg = string | number;

/**
 * Runs one of our scripts by SHA (EVALSHA), loading it with EVAL when the server does not know it yet.
 * The user's client is never modified (no defineCommand), every key goes through KEYS so ioredis
 * `keyPrefix` and cluster routing apply, and calls join ioredis auto-pipelining like any command.
 */
export function runScript(
  client: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly Arg[],
): Promise<unknown> {
  const script = LUA[name];
  // No async/await: this runs on every request, and each hop is a microtask.
  return client.evalsha(script.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
    if (!isNoScript(error)) throw error;
    return client.eval(script.lua, keys.length, ...keys, ...args);
  });
}
