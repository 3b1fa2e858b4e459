--- Applies a batch of change events from other regions, one after another, in one call. Idempotent
--- and order-independent: the state of a session is a join of three parts, each merged the same way whatever the order of arrival:
---   data     the value of the highest version wins (last writer wins)
---   expiry   the later absolute expiry wins (expiry only slides forward; 0 = never)
---   logout   a tombstone absorbs every later or earlier set and touch (logout is final)
--- so applying any set of events, in any order, any number of times, gives the same state.
---
--- For the i-th event (i = 1..#KEYS/2):
--- KEYS[2i-1] session value key
--- KEYS[2i]   session metadata (same slot)
--- ARGV[6i-5] op: "s" set, "t" touch, "d" destroy
--- ARGV[6i-4] version of the event
--- ARGV[6i-3] absolute expiry in ms ("0" = never); for "d", when the tombstone may be forgotten
--- ARGV[6i-2] cookie expiry in ms, or ""
--- ARGV[6i-1] content fingerprint ("s" only)
--- ARGV[6i]   serialized session ("s" only)
--- (Under Redis Cluster a batch must hold one slot's sessions only.)
---
--- Returns one code per event:
---   0  applied (state changed)
---   1  nothing changed (duplicate, or older data whose expiry was not later)
---   2  already expired on arrival; nothing stored
---  -1  refused: the session was destroyed here (tombstone)
--- @include "common"

local function higher(a, b)
  if not a then return b end
  if b > a then return b end
  return a
end

local function apply_one(vkey, mkey, op, version, event_x, cookie, fingerprint, data, now)
  local meta = read_meta(mkey)
  local prev_x = meta.x

  if op == 'd' then
    local until_ms = event_x
    if prev_x and prev_x ~= 0 and prev_x > until_ms then until_ms = prev_x end
    local v = higher(meta.v, version)
    if meta.t and until_ms == prev_x and v == meta.v then return 1 end
    redis.call('DEL', vkey)
    if until_ms <= now then
      redis.call('DEL', mkey)
      return 2
    end
    write_meta(mkey, true, v, '', until_ms, '')
    return 0
  end

  if meta.t then
    -- A tombstone outlives whatever it ended: a later expiry from a concurrent write extends it. It keeps
    -- the highest version seen too, as when that write arrives before the destroy, so that every region
    -- ends with the same tombstone whatever the order of arrival.
    local v = meta.v
    if version ~= '' and (not v or version > v) then v = version end
    local x = prev_x
    if event_x ~= 0 and prev_x and event_x > prev_x then x = event_x end
    if v ~= meta.v or x ~= prev_x then write_meta(mkey, true, v, '', x, '') end
    return -1
  end

  local x = later(prev_x, event_x)
  if x ~= 0 and x <= now then return 2 end
  local e = later_text(meta.e, cookie)

  if op == 's' and (not meta.v or version > meta.v) then
    local sx = fmt(x)
    if x == 0 then
      redis.call('SET', vkey, data)
    else
      redis.call('SET', vkey, data, 'PXAT', sx)
    end
    write_meta(mkey, false, version, fingerprint, x, e, sx)
    return 0
  end

  -- A touch, or a set that lost to a newer version: only the expiry may move.
  if x == prev_x and e == meta.e then return 1 end
  if redis.call('EXISTS', vkey) == 1 then expire_at(vkey, x) end
  -- When the session has not arrived yet, the metadata remembers the expiry so the set merges with it.
  write_meta(mkey, false, meta.v, meta.f, x, e)
  return 0
end

local now = now_ms()
local codes = {}
for i = 1, #KEYS / 2 do
  local a = (i - 1) * 6
  codes[i] = apply_one(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4],
    ARGV[a + 5], ARGV[a + 6], now)
end
return codes
