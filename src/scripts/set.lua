--- Writes a session with a new version, unless a logout's tombstone forbids it.
--- A write whose content fingerprint equals the stored one (only cookie.expires changed) costs a
--- touch: the value is left as it is and only the expiry moves. Expiry never moves back.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot; see read_meta in includes/common.lua)
--- KEYS[3] (optional) this region's outbox stream: the store replicates, the change event is appended
---         to it, and the metadata's expiry is kept exact. Without it the value key's own expiry is the
---         truth (touches move only that) and the metadata may expire earlier.
---
--- ARGV[1] serialized session
--- ARGV[2] content fingerprint (the session without cookie.expires)
--- ARGV[3] absolute expiry in ms, "0" for never
--- ARGV[4] cookie expiry in ms, "" when the cookie has none
--- ARGV[5] region id (for the version and the event)
--- ARGV[6] session id (for the event)
--- ARGV[7] the writer's clock, epoch ms (the wall part of the version)
---
--- Returns {code, version}:
---   0  written with the new version
---   1  content unchanged: only the expiry moved (touch cost)
---  -1  refused: the session was destroyed (tombstone)
--- @include "common"

local replicating = KEYS[3] ~= nil
local meta = read_meta(KEYS[2])
if meta.t then
  return {-1, meta.v or ''}
end

local prev_x = meta.x
local x = later(prev_x, tonumber(ARGV[3]))
local sx = ARGV[3]
if x ~= tonumber(sx) then sx = fmt(x) end
local e = later_text(meta.e, ARGV[4])

if meta.f == ARGV[2] then
  -- Same content. PEXPIREAT answers 0 for a missing key, so it also tells whether the value is there.
  local alive
  if x == 0 then
    alive = redis.call('PERSIST', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[1]) == 1
  elseif replicating then
    alive = redis.call('PEXPIREAT', KEYS[1], sx) == 1
  else
    alive = redis.call('PEXPIREAT', KEYS[1], sx, 'GT') == 1 or redis.call('EXISTS', KEYS[1]) == 1
    -- The metadata (fingerprint) must live as long as the value, or the next such write is a full one.
    if alive then redis.call('PEXPIREAT', KEYS[2], sx, 'GT') end
  end
  if alive then
    if replicating and (x ~= prev_x or e ~= meta.e) then
      write_meta(KEYS[2], false, meta.v, meta.f, x, e, sx)
      append_event(KEYS[3], 't', ARGV[5], meta.v or '', sx, e, '', ARGV[6])
    end
    return {1, meta.v or ''}
  end
end

if not replicating and x ~= 0 and meta.v then
  -- Touches moved only the value key: never end up before where they got it.
  local current = redis.call('PEXPIRETIME', KEYS[1])
  if current > x then
    x = current
    sx = fmt(x)
  end
end
local version = next_version(meta.v, ARGV[5], tonumber(ARGV[7]))
if x == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', sx)
end
write_meta(KEYS[2], false, version, ARGV[2], x, e, sx)
if replicating then
  append_event(KEYS[3], 's', ARGV[5], version, sx, e, ARGV[2], ARGV[6], ARGV[1])
end
return {0, version}
