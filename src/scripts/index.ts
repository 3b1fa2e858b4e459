import type { Cluster, Redis } from 'ioredis';
import { LUA } from './lua.generated.js';

/** Names of the Lua scripts shipped in src/scripts. */
export type ScriptName = keyof typeof LUA;

type Client = Redis | Cluster;
type Arg = string | number;

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * Runs one of our scripts by SHA (EVALSHA), loading it with EVAL when the server does not know it yet.
 * The user's client is never modified (no defineCommand), every key goes through KEYS so ioredis
 * `keyPrefix` and cluster routing apply, and calls join ioredis auto-pipelining like any command.
 */
export async function runScript(
  client: Client,
  name: ScriptName,
  keys: readonly string[],
  args: readonly Arg[],
) {
  const script = LUA[name];
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return await client.eval(script.lua, keys.length, ...keys, ...args);
  }
}
