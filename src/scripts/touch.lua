--- Extends a session's lifetime without rewriting its value, and keeps its metadata and its replication
--- event in step. Expiry only moves forward. Never creates a session, never touches one that was
--- destroyed. (A store that does not replicate touches with a plain PEXPIREAT GT instead.)
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot)
--- KEYS[3] (optional) this region's outbox stream
---
--- ARGV[1] absolute expiry in ms, "0" for never
--- ARGV[2] cookie expiry in ms, "" when the cookie has none
--- ARGV[3] region id
--- ARGV[4] session id
---
--- Returns:
---   0  the expiry moved
---   1  nothing to do (the session already lives that long)
---  -1  refused: the session was destroyed (tombstone)
---  -2  no such session
--- @include "common"

local meta = read_meta(KEYS[2])
if meta.t then return -1 end

local x = later(meta.x, tonumber(ARGV[1]))
local e = later_text(meta.e, ARGV[2])
if x == meta.x and e == meta.e then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
  return -2
end

-- PEXPIREAT answers 0 for a missing key: a touch never creates a session.
local moved
if x == 0 then
  moved = redis.call('PERSIST', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[1]) == 1
else
  moved = redis.call('PEXPIREAT', KEYS[1], fmt(x)) == 1
end
if not moved then return -2 end
if meta.v then write_meta(KEYS[2], false, meta.v, meta.f, x, e) end
if KEYS[3] then
  append_event(KEYS[3], 't', ARGV[3], meta.v or '', fmt(x), e, '', ARGV[4])
end
return 0
