--- Claims or renews a pod's lease in the connection registry (src/registry/registry.ts).
---
--- KEYS[1] the registry's leases (ZSET, see includes/registry.lua)
--- KEYS[2] the registry's incarnations (HASH)
--- KEYS[3], KEYS[4] with replication: this region's outbox and its counter (an `l` event is appended)
---
--- ARGV[1] region
--- ARGV[2] pod
--- ARGV[3] this process's incarnation of the pod
--- ARGV[4] lease length, ms
--- ARGV[5] "1" to claim the pod (a new process: the previous incarnation's connections die at once),
---         "0" to renew
---
--- Returns { code, expiry ms }: code 1 renewed (or claimed), 0 renewed after the lease had lapsed (its
--- connections may have been pruned: register them again), -1 another process claimed the pod since
--- (nothing written, expiry 0). Also sweeps a few lapsed leases of other pods.
--- @include "common"
--- @include "registry"

local now = now_ms()
local member, inc = ARGV[1] .. '|' .. ARGV[2], ARGV[3]
local expiry = now + tonumber(ARGV[4])
local code = 1
if ARGV[5] ~= '1' then
  local current = redis.call('HGET', KEYS[2], member)
  if current and current ~= inc then return { -1, '0' } end
  if reg_live_inc(KEYS[1], KEYS[2], member, now) ~= inc then code = 0 end
end
reg_sweep(KEYS[1], KEYS[2], now)
redis.call('HSET', KEYS[2], member, inc)
redis.call('ZADD', KEYS[1], fmt(expiry), member)
reg_emit(KEYS[3], KEYS[4], ARGV[1], 'l|' .. ARGV[2] .. '|' .. inc .. '|' .. fmt(expiry))
return { code, fmt(expiry) }
