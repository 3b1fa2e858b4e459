--- Removes connections of this pod from users' hashes (src/registry/registry.ts: unregister, and close
--- in chunks), pruning those hashes' dead connections; with ARGV[4] = "1" also ends the pod's lease.
---
--- KEYS[1] the registry's leases (ZSET, see includes/registry.lua)
--- KEYS[2] the registry's incarnations (HASH)
--- KEYS[3..n] a user's connections (HASH), one per connection below
---
--- ARGV[1] region
--- ARGV[2] pod
--- ARGV[3] this process's incarnation of the pod (an entry of another incarnation is left alone)
--- ARGV[4] "1" to end the lease too (when the pod's current incarnation is still this one)
--- ARGV[5..] the connection ids, KEYS[3] holding ARGV[5], KEYS[4] ARGV[6]...
---
--- Returns how many connections were removed.
--- @include "common"
--- @include "registry"

local now = now_ms()
local member, inc = ARGV[1] .. '|' .. ARGV[2], ARGV[3]
local removed = 0
reg_sweep(KEYS[1], KEYS[2], now)
for i = 3, #KEYS do
  local field = member .. '|' .. ARGV[i + 2]
  local value = redis.call('HGET', KEYS[i], field)
  if value and string.sub(value, 1, #inc + 1) == inc .. '|' then
    removed = removed + redis.call('HDEL', KEYS[i], field)
  end
  reg_prune(KEYS[1], KEYS[2], KEYS[i], now)
end
if ARGV[4] == '1' and redis.call('HGET', KEYS[2], member) == inc then
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
end
return removed
