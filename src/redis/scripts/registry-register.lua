--- Registers a live connection of a user on this pod (src/registry/registry.ts), pruning the user's
--- dead connections.
---
--- KEYS[1] the registry's leases (ZSET, see includes/registry.lua)
--- KEYS[2] the registry's incarnations (HASH)
--- KEYS[3] the user's connections (HASH)
--- KEYS[4], KEYS[5] with replication: this region's outbox and its counter (an `r` event is appended,
---   after an `l` one when the lease was taken again)
---
--- ARGV[1] region
--- ARGV[2] pod
--- ARGV[3] this process's incarnation of the pod
--- ARGV[4] connection id
--- ARGV[5] session id, or ''
--- ARGV[6] lease length, ms (the lease is taken again when it had lapsed)
--- ARGV[7] user id (for the replicated event)
---
--- Returns 1 registered, 0 registered already (its session id is updated), -1 another process claimed
--- the pod since (nothing written).
--- @include "common"
--- @include "registry"

local now = now_ms()
local member, inc = ARGV[1] .. '|' .. ARGV[2], ARGV[3]
local current = redis.call('HGET', KEYS[2], member)
if current and current ~= inc then return -1 end
if reg_live_inc(KEYS[1], KEYS[2], member, now) ~= inc then
  local expiry = fmt(now + tonumber(ARGV[6]))
  redis.call('HSET', KEYS[2], member, inc)
  redis.call('ZADD', KEYS[1], expiry, member)
  reg_emit(KEYS[4], KEYS[5], ARGV[1], 'l|' .. ARGV[2] .. '|' .. inc .. '|' .. expiry)
end
reg_sweep(KEYS[1], KEYS[2], now)
reg_prune(KEYS[1], KEYS[2], KEYS[3], now)
local added = redis.call('HSET', KEYS[3], member .. '|' .. ARGV[4], inc .. '|' .. ARGV[5])
reg_emit(KEYS[4], KEYS[5], ARGV[1],
  'r|' .. ARGV[2] .. '|' .. inc .. '|' .. ARGV[7] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
return added
