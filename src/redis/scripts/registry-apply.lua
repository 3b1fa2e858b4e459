--- Applies registry events received from other regions (src/registry/replication.ts), in order.
---
--- KEYS[1] the registry's leases (ZSET, see includes/registry.lua)
--- KEYS[2] the registry's incarnations (HASH)
--- KEYS[3..] the users' hashes the `r` and `u` events name, in order
---
--- ARGV[1] the longest lease accepted, ms past this region's clock (an expiry further ahead is refused:
---         one broken or forged origin cannot pin a pod)
--- ARGV[2..] 7 per event: op (l, r, u, c), origin region, pod, incarnation, expiry (l) or '',
---         connection id (r, u), session id (r)
---
--- An event of an incarnation older than the pod's current one changes nothing; a newer incarnation
--- replaces the pod's (its older connections die). Returns one code per event: 0 applied, 1 nothing to
--- do (stale or already applied), 4 refused (expiry too far ahead).
--- @include "common"
--- @include "registry"

local now = now_ms()
local horizon = now + tonumber(ARGV[1])
local out = {}
local k = 3
for i = 2, #ARGV, 7 do
  local op, origin, pod, inc, a, conn, sid =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local member = origin .. '|' .. pod
  local current = redis.call('HGET', KEYS[2], member)
  local stale = current and inc < current
  local code = 1
  if op == 'l' then
    local expiry = tonumber(a)
    if expiry > horizon then
      code = 4
    elseif not stale then
      if current ~= inc then
        redis.call('HSET', KEYS[2], member, inc)
        redis.call('ZADD', KEYS[1], fmt(expiry), member)
      else
        redis.call('ZADD', KEYS[1], 'GT', fmt(expiry), member)
      end
      code = 0
    end
  elseif op == 'c' then
    if current == inc then
      redis.call('ZREM', KEYS[1], member)
      redis.call('HDEL', KEYS[2], member)
      code = 0
    end
  else
    local key = KEYS[k]
    k = k + 1
    local field = member .. '|' .. conn
    if op == 'r' and not stale then
      if current ~= inc then redis.call('HSET', KEYS[2], member, inc) end
      redis.call('HSET', key, field, inc .. '|' .. sid)
      code = 0
    elseif op == 'u' then
      local value = redis.call('HGET', key, field)
      if value and string.sub(value, 1, #inc + 1) == inc .. '|' then
        redis.call('HDEL', key, field)
        code = 0
      end
    end
    reg_prune(KEYS[1], KEYS[2], key, now)
  end
  out[#out + 1] = code
end
return out
