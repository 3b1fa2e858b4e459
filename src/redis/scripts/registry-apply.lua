--- Applies registry events received from other regions (src/registry/replication.ts), in order.
---
--- KEYS[1] the registry's leases (ZSET, see includes/registry.lua)
--- KEYS[2] the registry's incarnations (HASH)
--- KEYS[3..] the users' hashes the `r` and `u` events name, in order
---
--- ARGV[1] the longest lease accepted, ms past this region's clock (an expiry further ahead is refused:
---         one broken or forged origin cannot pin a pod)
--- ARGV[2] how long an unregistered connection is remembered, ms (its `r`, delivered late, is refused)
--- ARGV[3..] 8 per event: op (l, r, u, c), origin region, pod, incarnation, expiry (l) or '',
---         connection id (r, u), session id (r), order (r, u: the envelope's `<epoch>.<n>`, the
---         origin's number padded to compare as text; '' when unknown)
---
--- An event of an incarnation older than the pod's current one changes nothing; a newer incarnation
--- replaces the pod's (its older connections die). A broker may deliver a batch again after newer ones
--- (docs/replication.md, "Delivery"), so a connection's `r` and `u` carry their order: an event older
--- than the one its entry holds changes nothing, and `u` keeps the entry as unregistered for ARGV[2] ms
--- rather than deleting it. Returns one code per event: 0 applied, 1 nothing to
--- do (stale or already applied), 4 refused (expiry too far ahead).
--- @include "common"
--- @include "registry"

local now = now_ms()
local horizon = now + tonumber(ARGV[1])
local remember = tonumber(ARGV[2])
local out = {}
local k = 3
for i = 3, #ARGV, 8 do
  local op, origin, pod, inc, a, conn, sid, order =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
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
    local value = redis.call('HGET', key, field)
    local held_inc, held_order, held_gone = false, '', false
    if value then
      local parsed_inc, _sid, parsed_order, parsed_gone = reg_parse(value)
      held_inc, held_order, held_gone = parsed_inc or false, parsed_order or '', parsed_gone
    end
    -- Newer than what the entry holds (an unordered event or entry always is).
    local newer = order == '' or held_order == '' or order > held_order
    if op == 'r' and not stale and newer then
      if current ~= inc then redis.call('HSET', KEYS[2], member, inc) end
      redis.call('HSET', key, field, inc .. '|' .. sid .. (order ~= '' and ('|' .. order) or ''))
      code = 0
    elseif op == 'u' and not stale and newer and order ~= '' then
      redis.call('HSET', key, field, inc .. '||' .. order .. '|-' .. fmt(now + remember))
      if held_inc == inc and not held_gone then code = 0 end
    elseif op == 'u' and order == '' then
      if value and held_inc == inc then
        redis.call('HDEL', key, field)
        code = 0
      end
    end
    reg_prune(KEYS[1], KEYS[2], key, now)
  end
  out[#out + 1] = code
end
return out
