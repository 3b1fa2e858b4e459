--- Writes a session with a new version, unless a logout's tombstone forbids it.
--- A write whose content fingerprint equals the stored one (only cookie.expires changed) costs a
--- touch: the value is left as it is and only the expiry moves.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata hash (same slot)
--- KEYS[3] (optional) this region's outbox stream; when present the change event is appended to it
---
--- ARGV[1] serialized session
--- ARGV[2] content fingerprint (the session without cookie.expires)
--- ARGV[3] absolute expiry in ms, "0" for never
--- ARGV[4] cookie expiry in ms, "" when the cookie has none
--- ARGV[5] region id (for the version and the event)
--- ARGV[6] session id (for the event)
---
--- Returns {code, version}:
---   0  written with the new version
---   1  content unchanged: only the expiry moved (touch cost)
---  -1  refused: the session was destroyed (tombstone)
--- @include "common"

local meta = hmget(KEYS[2], 'v', 'f', 'x', 't', 'e')
if meta[4] == '1' then
  return {-1, meta[1] or ''}
end

local prev_x = tonumber(meta[3])
local x = later(prev_x, tonumber(ARGV[3]))
local e = later_text(meta[5], ARGV[4])

if meta[2] == ARGV[2] and redis.call('EXISTS', KEYS[1]) == 1 then
  if x ~= prev_x or e ~= meta[5] then
    expire_at(KEYS[1], x)
    expire_at(KEYS[2], x)
    redis.call('HSET', KEYS[2], 'x', fmt(x), 'e', e)
    if KEYS[3] then
      redis.call('XADD', KEYS[3], '*', 'o', 't', 's', ARGV[6], 'v', meta[1], 'x', fmt(x), 'e', e, 'r', ARGV[5])
    end
  end
  return {1, meta[1]}
end

local version = next_version(meta[1], ARGV[5], now_ms())
if x == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', fmt(x))
end
redis.call('HSET', KEYS[2], 'v', version, 'f', ARGV[2], 'x', fmt(x), 'e', e)
expire_at(KEYS[2], x)
if KEYS[3] then
  redis.call('XADD', KEYS[3], '*', 'o', 's', 's', ARGV[6], 'v', version, 'x', fmt(x), 'e', e, 'r', ARGV[5],
    'f', ARGV[2], 'd', ARGV[1])
end
return {0, version}
