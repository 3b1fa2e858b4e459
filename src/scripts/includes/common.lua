-- Shared helpers, pulled into each script by scripts/gen-lua.mjs.
--
-- Versions are hybrid logical clock stamps written as fixed-width text so that plain string comparison
-- orders them: "<wall ms, 13 digits>.<counter, 4 digits>.<region>". The wall clock is the writing
-- process's, passed in. A new version is always above the key's previous version, whichever region wrote
-- it, so a write that follows a replicated write wins over it; equal wall time and counter break on the
-- region id. Versions are unique per key because each is made inside an atomic script.
--
-- Expiry times are absolute epoch milliseconds; "0" means "never expires" and is above every time.
--
-- Millisecond times exceed 32 bits. Redis runs Lua 5.1 (doubles only); the in-memory demo runs the same
-- scripts on fengari (Lua 5.3 with 32-bit integers), so times are kept as floats and always turned
-- into text with fmt() before they reach Redis.

local function fmt(n)
  return string.format('%.0f', n)
end

-- Session metadata is one string, "t|v|f|x|e", kept beside the value in the same slot:
--   t  "1" for a logout's tombstone, else "0"     v  HLC version of the data ("" when none yet)
--   f  content fingerprint ("" when none)          x  absolute expiry in ms, "0" for never
--   e  the cookie's own expiry in ms ("" when none)
-- One string costs a GET to read and one SET ... PXAT to write, where a hash would need HMGET, HSET and
-- PEXPIREAT.
local function read_meta(key)
  local m = redis.call('GET', key)
  if type(m) ~= 'string' then return {} end
  local t, v, f, x, e = string.match(m, '^(%d)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  if not t then return {} end
  return { t = t == '1', v = v ~= '' and v or false, f = f ~= '' and f or false, x = tonumber(x), e = e }
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000)
end

local function next_version(prev, region, now)
  local ms = now
  local counter = 0
  if prev then
    local pms = tonumber(string.sub(prev, 1, 13))
    local pc = tonumber(string.sub(prev, 15, 18))
    if pms and pc and pms >= ms then
      ms = pms
      counter = pc + 1
      if counter > 9999 then
        ms = ms + 1
        counter = 0
      end
    end
  end
  return string.format('%013.0f.%04d.', ms, counter) .. region
end

-- Later of two absolute expiry times; nil means unknown, 0 means never.
local function later(a, b)
  if a == nil then return b end
  if b == nil then return a end
  if a == 0 or b == 0 then return 0 end
  if a > b then return a end
  return b
end

-- Later of two cookie expiry times given as text; "" (or a missing field) means none. The texts are
-- decimal integers already (written by the store or by fmt), so the later one is returned as it is.
local function later_text(a, b)
  local na, nb = tonumber(a), tonumber(b)
  if not na then
    if nb then return b end
    return ''
  end
  if not nb or na >= nb then return a end
  return b
end

-- `sx` is `x` as text when the caller has it already (formatting a 13-digit float is not free).
local function write_meta(key, tombstone, v, f, x, e, sx)
  sx = sx or fmt(x)
  local text = (tombstone and '1|' or '0|') .. (v or '') .. '|' .. (f or '') .. '|' .. sx .. '|' .. (e or '')
  if x == 0 then
    redis.call('SET', key, text)
  else
    redis.call('SET', key, text, 'PXAT', sx)
  end
end

-- Appends a change event to the outbox. An entry is the header "op|origin|version|expiry|cookie
-- expiry|fingerprint|session id" (the id last, as the only free-form part) and, for a set, the session
-- as field d: two fields to write, read and decode instead of one per part.
local function append_event(outbox, op, region, v, sx, e, f, sid, data)
  local header = op .. '|' .. region .. '|' .. v .. '|' .. sx .. '|' .. e .. '|' .. f .. '|' .. sid
  if data then
    redis.call('XADD', outbox, '*', 'h', header, 'd', data)
  else
    redis.call('XADD', outbox, '*', 'h', header)
  end
end

local function expire_at(key, at)
  if at == 0 then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIREAT', key, fmt(at))
  end
end
