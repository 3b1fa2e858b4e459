/**
 * The demo's fallback when no `redis-server` binary is installed: an in-memory Redis, ioredis-mock (which
 * runs our Lua scripts in an embedded Lua VM, fengari), plus what it lacks for the store, emulated here
 * for one process:
 * - the stream consumer-group commands the outbox relay reads with (XTRIM trims nothing);
 * - ZADD with GT inside scripts (the connection registry renews leases with it);
 * - script replies: ioredis-mock turns a table a script built entry by entry (the apply script's one
 *   code per event) into an unreadable Lua proxy instead of an array, so every script runs wrapped in a
 *   function whose table reply is rebuilt as a table constructor, which it converts faithfully;
 * - the clock scripts read: ioredis-mock's TIME rounds the seconds and takes the microseconds from an
 *   unrelated counter, and its XADD numbers entries 1, 2, 3..., while an outbox entry's id is the time it
 *   was written. Inside scripts, TIME answers this process's clock at the moment it runs and XADD with `*`
 *   makes an id from it (later than the stream's last one), as Redis does; so does the TIME command itself, which the store
 *   reads to measure replication lag by the Redis clock (left to ioredis-mock, its rounded seconds put
 *   the clock up to a second ahead, and `replicationStats().lagMs` up to a second over the real lag).
 * This is only for running the demo with no server at all; the library itself is tested against real
 * Redis, and the scripts in src/ are the ones real Redis runs, unchanged.
 */

import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';

type Entry = [string, string[]];
interface Group {
  lastId: string;
  pending: Map<string, string>; // entry id -> consumer
}

function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let nextPort = 1;

/** A new, empty in-memory Redis. Every duplicate() shares its data, scripts and consumer groups. */
export function createEmbeddedRedis(): Redis {
  const port = nextPort++;
  const groups = new Map<string, Map<string, Group>>();
  const scripts = new Map<string, string>();
  const make = (): Redis => {
    const client = new (RedisMock as unknown as new (options: object) => Redis)({
      port,
      host: `embedded-${port}`,
    });
    addStreamGroups(client, groups);
    addScriptReplies(client, scripts);
    addClock(client);
    client.duplicate = () => make();
    return client;
  };
  return make();
}

/** TIME answers this process's clock, as it does inside scripts (see the file comment). */
function addClock(client: Redis): void {
  (client as unknown as Record<string, unknown>).time = async () => {
    const now = Date.now();
    return [String(Math.floor(now / 1000)), String((now % 1000) * 1000)];
  };
}

type Eval = (script: string, numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

/** `redis.sha1hex(text)` in Lua 5.3 (fengari): SHA-1 of the text as 40 lowercase hex digits. */
const SHA1HEX = [
  'local function __rol(x, n) return ((x << n) | (x >> (32 - n))) & 0xffffffff end',
  'redis.sha1hex = function(text)',
  '  text = tostring(text)',
  '  local len = #text',
  "  text = text .. '\\128' .. string.rep('\\0', (55 - len) % 64) .. string.pack('>I8', len * 8)",
  '  local h0, h1, h2, h3, h4 = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0',
  '  local w = {}',
  '  for chunk = 1, #text, 64 do',
  "    for i = 0, 15 do w[i] = string.unpack('>I4', text, chunk + i * 4) end",
  '    for i = 16, 79 do w[i] = __rol(w[i - 3] ~ w[i - 8] ~ w[i - 14] ~ w[i - 16], 1) end',
  '    local a, b, c, d, e = h0, h1, h2, h3, h4',
  '    for i = 0, 79 do',
  '      local f, k',
  '      if i < 20 then f, k = (b & c) | ((~b) & d), 0x5a827999',
  '      elseif i < 40 then f, k = b ~ c ~ d, 0x6ed9eba1',
  '      elseif i < 60 then f, k = (b & c) | (b & d) | (c & d), 0x8f1bbcdc',
  '      else f, k = b ~ c ~ d, 0xca62c1d6 end',
  '      local t = (__rol(a, 5) + (f & 0xffffffff) + e + k + w[i]) & 0xffffffff',
  '      e, d, c, b, a = d, c, __rol(b, 30), a, t',
  '    end',
  '    h0, h1, h2 = (h0 + a) & 0xffffffff, (h1 + b) & 0xffffffff, (h2 + c) & 0xffffffff',
  '    h3, h4 = (h3 + d) & 0xffffffff, (h4 + e) & 0xffffffff',
  '  end',
  "  return string.format('%08x%08x%08x%08x%08x', h0, h1, h2, h3, h4)",
  'end',
];

/** `cjson.encode` of a flat table of strings and numbers (what publish_revoked sends), keys sorted. */
const CJSON_ENCODE = [
  'cjson = cjson or {}',
  'cjson.encode = function(t)',
  '  local function quote(v)',
  "    if type(v) == 'number' then return string.format('%.17g', v) end",
  "    return '\"' .. string.gsub(tostring(v), '[%c\"\\\\]', function(c)",
  "      return string.format('\\\\u%04x', string.byte(c))",
  "    end) .. '\"'",
  '  end',
  '  local keys = {}',
  '  for k in pairs(t) do keys[#keys + 1] = k end',
  '  table.sort(keys)',
  '  local parts = {}',
  "  for i, k in ipairs(keys) do parts[i] = quote(k) .. ':' .. quote(t[k]) end",
  "  return '{' .. table.concat(parts, ',') .. '}'",
  'end',
];

/**
 * Runs `script` inside a function and returns a table reply as `{ table.unpack(t, 1, #t) }`: a table
 * made by a constructor is the shape ioredis-mock reads back as an array, whatever way the script built
 * its own table. Our scripts return flat tables of numbers and strings, or a single value.
 */
function wrapScript(script: string): string {
  return [
    'local __call = redis.call',
    // redis.sha1hex (the scripts' digests use it) and cjson.encode (revocation messages), which
    // ioredis-mock lacks.
    ...SHA1HEX,
    ...CJSON_ENCODE,
    // This process's clock now: the script's start plus how long it has run (os.clock is the process's
    // uptime in fengari on Node), since the embedded Lua VM may take tens of ms over one script.
    'local function __clock() return __now + math.floor((os.clock() - __uptime) * 1000) end',
    'redis.call = function(command, ...)',
    '  local name = string.upper(command)',
    "  if name == 'TIME' then",
    '    local now = __clock()',
    "    return { string.format('%.0f', math.floor(now / 1000)), tostring(math.floor(now % 1000) * 1000) }",
    '  end',
    // ZADD GT (one score and member, as the registry's scripts use it), which ioredis-mock lacks.
    "  if name == 'ZADD' and string.upper(tostring(select(2, ...))) == 'GT' then",
    '    local args = { ... }',
    "    local current = __call('ZSCORE', args[1], args[4])",
    '    if current and tonumber(current) >= tonumber(args[3]) then return 0 end',
    "    return __call('ZADD', args[1], args[3], args[4])",
    '  end',
    "  if name == 'XADD' and select(2, ...) == '*' then",
    '    local args = { ... }',
    "    local lastKey = '__demo_xadd_last:' .. args[1]",
    '    local id = __clock()',
    "    local last = tonumber(__call('GET', lastKey))",
    '    if last and last >= id then id = last + 1 end',
    "    __call('SET', lastKey, string.format('%.0f', id))",
    "    args[2] = string.format('%.0f', id)",
    '    return __call(command, unpack(args))',
    '  end',
    '  return __call(command, ...)',
    'end',
    'local reply = (function()',
    script,
    'end)()',
    "if type(reply) == 'table' then return { table.unpack(reply, 1, #reply) } end",
    'return reply',
  ].join('\n');
}

/** EVAL / EVALSHA with faithful table replies and a script cache (NOSCRIPT until EVAL, like Redis). */
function addScriptReplies(client: Redis, scripts: Map<string, string>): void {
  const c = client as unknown as Record<string, unknown>;
  const evaluate = (c.eval as Eval).bind(client);
  const run = async (wrapped: string, numKeys: number, args: (string | number)[]) => {
    const clock = `local __now, __uptime = ${Date.now()}, ${process.uptime()}`;
    const reply = await evaluate(`${clock}\n${wrapped}`, numKeys, ...args);
    if (typeof reply === 'function') throw new Error('embedded Redis: a script reply could not be read');
    return reply;
  };
  c.eval = (script: string, numKeys: number, ...args: (string | number)[]) => {
    const sha = createHash('sha1').update(script).digest('hex');
    let wrapped = scripts.get(sha);
    if (wrapped === undefined) {
      wrapped = wrapScript(script);
      scripts.set(sha, wrapped);
    }
    return run(wrapped, numKeys, args);
  };
  c.evalsha = async (sha: string, numKeys: number, ...args: (string | number)[]) => {
    const wrapped = scripts.get(String(sha).toLowerCase());
    if (wrapped === undefined) throw new Error('NOSCRIPT No matching script. Please use EVAL.');
    return run(wrapped, numKeys, args);
  };
}

function addStreamGroups(client: Redis, groups: Map<string, Map<string, Group>>): void {
  const c = client as unknown as Record<string, unknown>;
  const range = (key: string) => client.xrange(key, '-', '+') as Promise<Entry[]>;
  const groupOf = (key: string, name: string): Group => {
    const group = groups.get(key)?.get(name);
    if (!group) throw new Error(`NOGROUP No such key '${key}' or consumer group '${name}'`);
    return group;
  };

  c.xgroup = async (sub: string, key: string, name: string, id: string) => {
    if (String(sub).toUpperCase() !== 'CREATE') throw new Error(`XGROUP ${sub} is not emulated`);
    const byName = groups.get(key) ?? new Map<string, Group>();
    groups.set(key, byName);
    if (byName.has(name)) throw new Error('BUSYGROUP Consumer Group name already exists');
    byName.set(name, { lastId: id === '$' ? '0-0' : id === '0' ? '0-0' : id, pending: new Map() });
    return 'OK';
  };

  c.xreadgroup = async (...args: (string | number)[]) => {
    const name = String(args[1]);
    const consumer = String(args[2]);
    let count = Number.POSITIVE_INFINITY;
    let block: number | undefined;
    for (let i = 3; i < args.length; i++) {
      const word = String(args[i]).toUpperCase();
      if (word === 'COUNT') count = Number(args[++i]);
      else if (word === 'BLOCK') block = Number(args[++i]);
      else if (word === 'STREAMS') break;
    }
    const key = String(args[args.length - 2]);
    const from = String(args[args.length - 1]);
    const group = groupOf(key, name);
    const deadline = Date.now() + (block ?? 0);
    for (;;) {
      const all = await range(key);
      let entries: Entry[];
      if (from === '>') {
        entries = all.filter(([id]) => compareIds(id, group.lastId) > 0).slice(0, count);
        for (const [id] of entries) group.pending.set(id, consumer);
        const last = entries[entries.length - 1];
        if (last) group.lastId = last[0];
      } else {
        entries = all.filter(([id]) => group.pending.get(id) === consumer).slice(0, count);
      }
      if (entries.length > 0 || from !== '>' || block === undefined || Date.now() >= deadline) {
        return entries.length > 0 ? [[key, entries]] : null;
      }
      await sleep(2);
    }
  };

  c.xack = async (key: string, name: string, ...ids: string[]) => {
    const group = groupOf(key, name);
    let acked = 0;
    for (const id of ids) if (group.pending.delete(id)) acked++;
    return acked;
  };

  // One process: no consumer ever dies, so there is never anything to claim.
  c.xautoclaim = async () => ['0-0', [], []];

  c.xinfo = async (_sub: string, key: string) =>
    [...(groups.get(key) ?? new Map<string, Group>())].map(([name, g]) => [
      'name',
      name,
      'pending',
      g.pending.size,
      'last-delivered-id',
      g.lastId,
    ]);

  c.xpending = async (key: string, name: string) => {
    const ids = [...groupOf(key, name).pending.keys()].sort(compareIds);
    return [ids.length, ids[0] ?? null, ids[ids.length - 1] ?? null, null];
  };

  // ioredis-mock has neither XTRIM nor XDEL: nothing is trimmed (a demo run lasts seconds).
  c.xtrim = async () => 0;
}
