--- Removes connections of this pod from users' hashes (src/registry/registry.ts: unregister, and close
--- in chunks), pruning those hashes' dead connections; with ARGV[4] = "1" also ends the pod's lease.
---
--- KEYS[1] the registry's leases (ZSET, see includes/registry.lua)
--- KEYS[2] the registry's incarnations (HASH)
--- KEYS[3..2+n] a user's connections (HASH), one per connection below
--- KEYS[3+n], KEYS[4+n] with replication: this region's outbox and its counter (a `u` event per
---   connection removed, and a `c` event when the lease ends)
---
--- ARGV[1] region
--- ARGV[2] pod
--- ARGV[3] this process's incarnation of the pod (an entry of another incarnation is left alone)
--- ARGV[4] "1" to end the lease too (when the pod's current incarnation is still this one)
--- ARGV[5..] n pairs: connection id, user id (KEYS[3] holds the first, KEYS[4] the second...)
---
--- Returns how many connections were removed.
--- @include "common"
--- @include "registry"

local now = now_ms()
local member, inc = ARGV[1] .. '|' .. ARGV[2], ARGV[3]
local n = (#ARGV - 4) / 2
local outbox, counter = KEYS[3 + n], KEYS[4 + n]
local removed = 0
reg_sweep(KEYS[1], KEYS[2], now)
for i = 1, n do
  local key, conn, user = KEYS[2 + i], ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local field = member .. '|' .. conn
  local value = redis.call('HGET', key, field)
  if value and string.sub(value, 1, #inc + 1) == inc .. '|' then
    removed = removed + redis.call('HDEL', key, field)
    reg_emit(outbox, counter, ARGV[1], 'u|' .. ARGV[2] .. '|' .. inc .. '|' .. user .. '|' .. conn)
  end
  reg_prune(KEYS[1], KEYS[2], key, now)
end
if ARGV[4] == '1' and redis.call('HGET', KEYS[2], member) == inc then
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
  reg_emit(outbox, counter, ARGV[1], 'c|' .. ARGV[2] .. '|' .. inc)
end
return removed
