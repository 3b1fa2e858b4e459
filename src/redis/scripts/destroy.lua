--- Ends a session for good: deletes the value and leaves a tombstone that outlives it, so that no later
--- or stale write (a slow request, a delayed replica event) can bring the session back.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot)
--- KEYS[3] (optional) this region's outbox stream
--- KEYS[4] (with KEYS[3]) the outbox's sequence counter (next_seq in includes/common.lua)
---
--- ARGV[1] shortest tombstone lifetime in ms
--- ARGV[2] region id
--- ARGV[3] session id
--- ARGV[4] the host's clock, epoch ms (see wall_time in common.lua)
--- ARGV[5] largest clock skew between regions, ms
---
--- Returns {code, version} (DestroyResult in src/redis/commands.ts):
---   0  destroyed (a tombstone was written even when no session existed: the session may live in a
---      region whose write has not arrived yet)
---   1  already destroyed; nothing changed
--- @include "common"

local meta = read_meta(KEYS[2])
local now = now_ms()
-- The tombstone lives at least its own lifetime and at least as long as any expiry known for the id.
local until_ms = now + tonumber(ARGV[1])
if meta.x and meta.x ~= 0 and meta.x > until_ms then until_ms = meta.x end
-- The value key's own expiry counts too: a session written by connect-redis has no metadata, and
-- touches of a store that does not replicate move only the value key.
local expires = redis.call('PEXPIRETIME', KEYS[1])
if expires > until_ms then until_ms = expires end

if meta.t then
  redis.call('DEL', KEYS[1])
  if meta.x and meta.x >= until_ms then return {1, meta.v or ''} end
end

local version = next_version(meta.v, ARGV[2], wall_time(now, tonumber(ARGV[4]), tonumber(ARGV[5])))
redis.call('DEL', KEYS[1])
local sx = fmt(until_ms)
write_meta(KEYS[2], true, version, until_ms, nil, nil, nil, sx)
if KEYS[3] then
  append_event(KEYS[3], 'd', version, sx, '', '', ARGV[3])
end
return {0, version}
