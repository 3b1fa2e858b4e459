--- Tells the other regions how far this region's numbering has gone, when it has been quiet: appends a
--- `heartbeat` envelope to the outbox unless its newest entry is younger than ARGV[2]. A region that
--- receives it and has not seen every number up to it has a gap at the tail (the last changes before a
--- quiet spell were lost), which it could not otherwise notice until the next change.
---
--- KEYS[1] this region's outbox stream
--- KEYS[2] the outbox's sequence counter (next_seq in includes/common.lua)
---
--- ARGV[1] region id (for the envelope id)
--- ARGV[2] quiet time, ms: nothing is appended when the outbox's newest entry is younger than this
---
--- The envelope: kind `heartbeat`, id "<region>:<epoch>.<n>.h<time>" where n is the last number given
--- (0 before any), time the Redis clock in ms, empty body. Returns 1 when appended, 0 when not.
--- @include "common"

local now = now_ms()
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if newest[1] then
  local id = newest[1][1]
  local ms = tonumber(string.sub(id, 1, string.find(id, '-', 1, true) - 1))
  if ms and now - ms < tonumber(ARGV[2]) then return 0 end
end
local e = current_epoch(KEYS[2])
local n = redis.call('HGET', KEYS[2], 'n') or '0'
local st = fmt(now)
redis.call('XADD', KEYS[1], '*', 'e', 'heartbeat ' .. st .. ' ' .. ARGV[1] .. ':' .. e .. '.' .. n .. '.h' .. st .. '\n')
return 1
