--- Applies one change event from another region. Idempotent and order-independent: the state of a
--- session is a join of three parts, each merged the same way whatever the order of arrival:
---   data     the value of the highest version wins (last writer wins)
---   expiry   the later absolute expiry wins (expiry only slides forward; 0 = never)
---   logout   a tombstone absorbs every later or earlier set and touch (logout is final)
--- so applying any set of events, in any order, any number of times, gives the same state.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata hash (same slot)
---
--- ARGV[1] op: "s" set, "t" touch, "d" destroy
--- ARGV[2] version of the event
--- ARGV[3] absolute expiry in ms ("0" = never); for "d", when the tombstone may be forgotten
--- ARGV[4] cookie expiry in ms, or ""
--- ARGV[5] content fingerprint ("s" only)
--- ARGV[6] serialized session ("s" only)
---
--- Returns:
---   0  applied (state changed)
---   1  nothing changed (duplicate, or older data whose expiry was not later)
---   2  already expired on arrival; nothing stored
---  -1  refused: the session was destroyed here (tombstone)
--- @include "common"

local op = ARGV[1]
local version = ARGV[2]
local event_x = tonumber(ARGV[3])
local meta = hmget(KEYS[2], 'v', 'x', 't', 'e', 'f')
local prev_x = tonumber(meta[2])
local now = now_ms()

local function higher(a, b)
  if not a then return b end
  if b > a then return b end
  return a
end

if op == 'd' then
  local until_ms = event_x
  if prev_x and prev_x ~= 0 and prev_x > until_ms then until_ms = prev_x end
  local v = higher(meta[1], version)
  if meta[3] == '1' and until_ms == prev_x and v == meta[1] then return 1 end
  redis.call('DEL', KEYS[1], KEYS[2])
  if until_ms <= now then return 2 end
  redis.call('HSET', KEYS[2], 't', '1', 'v', v, 'x', fmt(until_ms))
  redis.call('PEXPIREAT', KEYS[2], fmt(until_ms))
  return 0
end

if meta[3] == '1' then
  -- A tombstone outlives whatever it ended: a later expiry from a concurrent write extends it. It keeps
  -- the highest version seen too, as when that write arrives before the destroy, so that every region
  -- ends with the same tombstone whatever the order of arrival.
  if version ~= '' and (not meta[1] or version > meta[1]) then
    redis.call('HSET', KEYS[2], 'v', version)
  end
  if event_x ~= 0 and prev_x and event_x > prev_x then
    redis.call('HSET', KEYS[2], 'x', fmt(event_x))
    redis.call('PEXPIREAT', KEYS[2], fmt(event_x))
  end
  return -1
end

local x = later(prev_x, event_x)
if x ~= 0 and x <= now then return 2 end

local e = later_text(meta[4], ARGV[4])

if op == 's' and (not meta[1] or version > meta[1]) then
  if x == 0 then
    redis.call('SET', KEYS[1], ARGV[6])
  else
    redis.call('SET', KEYS[1], ARGV[6], 'PXAT', fmt(x))
  end
  redis.call('HSET', KEYS[2], 'v', version, 'f', ARGV[5], 'x', fmt(x), 'e', e)
  expire_at(KEYS[2], x)
  return 0
end

-- A touch, or a set that lost to a newer version: only the expiry may move.
if x == prev_x and e == meta[4] then return 1 end
if redis.call('EXISTS', KEYS[1]) == 1 then expire_at(KEYS[1], x) end
-- When the session has not arrived yet, the metadata remembers the expiry so the set merges with it.
redis.call('HSET', KEYS[2], 'x', fmt(x), 'e', e)
expire_at(KEYS[2], x)
return 0
