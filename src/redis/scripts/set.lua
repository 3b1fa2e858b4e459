--- Writes a session with a new version, unless a logout's tombstone forbids it.
--- A write whose content fingerprint equals the stored one and whose lifetime rule does not exceed the
--- stored one (only cookie.expires changed) costs a touch: the value is left as it is and only the
--- expiry moves. Expiry never moves back.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot; see read_meta in includes/common.lua)
--- KEYS[3] (optional) this region's outbox stream: the store replicates, the change is appended to
---         it, and the metadata's expiry is kept exact. Without it the value key's own expiry is the
---         truth (touches move only that) and the metadata may expire earlier.
--- KEYS[4] (with KEYS[3]) the outbox's sequence counter (next_seq in includes/common.lua)
---
--- ARGV[1] serialized session
--- ARGV[2] content fingerprint (the session without cookie.expires)
--- ARGV[3] remaining lifetime in ms, "0" for never (the expiry is made from the Redis clock)
--- ARGV[4] region id (for the version and the event)
--- ARGV[5] session id (for the event)
--- ARGV[6] the host's clock, epoch ms (may count towards the version's wall time, see common.lua)
--- ARGV[7] largest clock skew between regions, ms
--- ARGV[8] touch step, ms: an unchanged write that moves the expiry by less than this past what the
---         other regions know is not replicated
--- ARGV[9] the session's lifetime rule in ms ("0" never): its cookie's maxAge or the store's ttl. No
---         touch may later reach further than now plus this.
---
--- Returns {code, version} (WriteResult in src/redis/commands.ts):
---   0  written with the new version
---   1  content unchanged: only the expiry moved (touch cost)
---  -1  refused: the session was destroyed (tombstone)
--- @include "common"

local replicating = KEYS[3] ~= nil
local rule = tonumber(ARGV[9])
local meta = read_meta(KEYS[2])
if meta.t then
  return {-1, meta.v or ''}
end

local now = now_ms()
local life = tonumber(ARGV[3])
local prev_x = meta.x
local want = 0
if life ~= 0 then want = now + life end
local x = later(prev_x, want)
local sx = fmt(x)

if meta.f == ARGV[2] and meta.l and rule <= meta.l then
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
    if replicating and x ~= prev_x then
      local send = worth_sending(x, meta.r, tonumber(ARGV[8]))
      local r = meta.r
      if send then r = x end
      write_meta(KEYS[2], false, meta.v, x, r, meta.l, meta.f, sx)
      if send then append_event(KEYS[3], 't', meta.v or '', sx, fmt(meta.l), '', ARGV[5]) end
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
local version = next_version(meta.v, ARGV[4], wall_time(now, tonumber(ARGV[6]), tonumber(ARGV[7])))
if x == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', sx)
end
if replicating then
  write_meta(KEYS[2], false, version, x, x, rule, ARGV[2], sx, ARGV[9])
  append_event(KEYS[3], 's', version, sx, ARGV[9], ARGV[2], ARGV[5], ARGV[1])
else
  write_meta(KEYS[2], false, version, x, nil, rule, ARGV[2], sx, ARGV[9])
end
return {0, version}
