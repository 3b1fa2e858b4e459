-- Shared helpers, pulled into each script by scripts/gen-lua.mjs.
--
-- Time comes from Redis (TIME), never from the app host: the host only sends a remaining lifetime, and
-- every absolute expiry is made here. Expiry times are absolute epoch milliseconds; "0" means "never
-- expires" and is above every time.
--
-- Versions are hybrid logical clock stamps written as fixed-width text so that plain string comparison
-- orders them: "<wall ms, 15 digits>.<counter, 4 digits>.<region>" (15 digits last until the year
-- 33658). A new version is above the key's previous version, whichever region wrote it; equal wall time
-- and counter break on the region id. Versions are unique per key because each is made inside an atomic
-- script. The wall part is the later of the Redis clock and the host's clock, the host's clock counting
-- for at most half the allowed clock skew ahead of Redis, so a host with a wrong clock can never make a
-- version that other regions refuse.
--
-- Millisecond times exceed 32 bits. Redis runs Lua 5.1 (doubles only), so times are kept as floats and
-- always turned into text with fmt() before they reach Redis.

local function fmt(n)
  return string.format('%.0f', n)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000)
end

-- Session metadata is one string, "t|v|x|r|l|f|e|w", kept beside the value in the same slot:
--   t  "1" for a logout's tombstone, else "0"
--   v  HLC version of the data ("" when none yet: an expiry that arrived before its session); for a
--      tombstone, the highest version it saw
--   x  absolute expiry in ms, "0" for never: the expiry of the highest version this region has seen
--      (the latest of that version's writes and touches); for a tombstone, the latest it saw
--   r  the latest expiry every region has been told about (a touch that moves x less than the
--      touch step past it is not replicated), "" when unknown
--   l  the session's lifetime rule in ms ("0" never): a replicated touch may not reach past now + l
--   f  content fingerprint ("" when none)
--   e  the version x belongs to when it is above v (a touch of a newer write arrived before that
--      write), "" when x belongs to v
--   w  the expiry written with the value (its set's own), "" when unknown: `get` moves the stored
--      cookie.expires by x - w, so it reports the expiry of the last write even when that write only
--      moved the expiry
-- Metadata written before e and w existed has six fields; it reads with e and w unknown.
-- One string costs a GET to read and one SET ... PXAT to write. The metadata key lives until x, or
-- longer when a newer write shortened the session (see write_meta). parse_meta reads the text ({} when it
-- is not metadata), read_meta the key.
local function parse_meta(m)
  if type(m) ~= 'string' then return {} end
  local t, v, x, r, l, f, e, w =
    string.match(m, '^([01])|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  if not t then
    t, v, x, r, l, f = string.match(m, '^([01])|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    if not t then return {} end
    e, w = '', ''
  end
  return {
    t = t == '1', v = v ~= '' and v or false, x = tonumber(x), r = tonumber(r), l = tonumber(l),
    f = f ~= '' and f or false, e = e ~= '' and e or false, w = tonumber(w),
  }
end

-- The metadata at `key`, parsed as parse_meta does ({} when none).
local function read_meta(key)
  return parse_meta(redis.call('GET', key))
end

-- The version the metadata's expiry belongs to (false when none).
local function expiry_version(meta)
  return meta.e or meta.v
end

-- Versions compare as text; false (none) is below every version, and so is "" (a touch of a session
-- whose data its region did not have).
local function vcmp(a, b)
  a = a or ''
  b = b or ''
  if a == b then return 0 end
  if a > b then return 1 end
  return -1
end

-- Per-bucket digests (verify and repair, src/admin/verify.ts; docs/replication.md "Digests"). A store that
-- replicates keeps, beside its sessions, a sum per (time window, bucket) of one 40-bit number per
-- session, so that two regions holding the same sessions hold the same sums whatever Redis did with
-- expiry timing. What a session adds is a hash of what converges between regions: its metadata key,
-- tombstone flag, version and, for a live session, `r` (the replicated expiry; `x` differs by design:
-- a touch that moves it less than the touch step stays local). It counts in the window of `r`
-- (a live session; "n" for never), or for a tombstone in the window of its version's time plus the
-- stale-event horizon (a tombstone lives twice that long). A local tombstone (r = 0, never replicated),
-- metadata with no `r` (an expiry that passed) and metadata with no version (an expiry that arrived
-- before its session) count nowhere. A window is a hash
-- `<digest key>:<window>` (field: bucket, value: the sum) that expires one window after it ends, so a
-- session that expired stops counting without anyone removing it; the digest key itself is a set of the
-- windows made. Verify compares only windows that start after now plus a margin, where every session
-- that counts still has its metadata in every region.
-- A script that keeps digests sets `digest_key` (from its KEYS) and, if it writes tombstones,
-- `digest_horizon`; write_meta and delete_meta do the rest.
local DIGEST_WINDOW_MS = 600000
local digest_key = nil
local digest_horizon = nil

-- What of metadata text `text` a digest depends on: tombstone flag, version, `r` (nil: no metadata).
local function digest_fields(text)
  if type(text) ~= 'string' then return nil end
  return string.match(text, '^([01])|([^|]*)|[^|]*|([^|]*)|')
end

-- The window and the 40-bit amount that metadata of key `key` with fields t, v, r counts for, or nil.
local function digest_entry(key, t, v, r)
  if not t then return nil end
  local window
  if t == '1' then
    local ms = tonumber(string.sub(v, 1, 15))
    if r == '0' or not ms or not digest_horizon then return nil end
    window = fmt(math.floor((ms + digest_horizon) / DIGEST_WINDOW_MS))
    r = ''
  elseif r == '' or v == '' then
    return nil
  elseif r == '0' then
    window = 'n'
  else
    window = fmt(math.floor(tonumber(r) / DIGEST_WINDOW_MS))
  end
  return window, tonumber(string.sub(redis.sha1hex(key .. '|' .. t .. '|' .. v .. '|' .. r), 1, 10), 16)
end

-- Adds `amount` to `bucket` of `window`. A window's hash made here gets its expiry (PEXPIREAT NX, also
-- when the window was over and its hash gone: it then goes at once) and joins the set of windows. A hash
-- is only ever made by a field that was not there, so a field that held a sum already needs neither.
local function digest_add(window, bucket, amount)
  local key = digest_key .. ':' .. window
  if redis.call('HINCRBY', key, bucket, fmt(amount)) ~= amount then return end
  if window == 'n' then
    redis.call('SADD', digest_key, window)
  elseif redis.call('PEXPIREAT', key, fmt((tonumber(window) + 2) * DIGEST_WINDOW_MS), 'NX') == 1 then
    redis.call('SADD', digest_key, window)
  end
end

-- Moves the digests from metadata text `old` to `new` (either nil) of key `key`.
local function digest_update(key, old, new)
  local ot, ov, orr = digest_fields(old)
  local nt, nv, nr = digest_fields(new)
  -- Most writes (an unreplicated touch, an expiry-only write) change none of it: no hashing.
  if ot == nt and ov == nv and orr == nr then return end
  local ow, oa = digest_entry(key, ot, ov, orr)
  local nw, na = digest_entry(key, nt, nv, nr)
  if ow == nw and oa == na then return end
  local bucket = fmt(tonumber(string.sub(redis.sha1hex(key), 1, 2), 16))
  if ow and ow == nw then
    digest_add(ow, bucket, na - oa)
    return
  end
  if ow then digest_add(ow, bucket, -oa) end
  if nw then digest_add(nw, bucket, na) end
end

-- Deletes metadata (keeping the digests in step).
local function delete_meta(key)
  if digest_key then
    digest_update(key, redis.call('GETDEL', key), nil)
  else
    redis.call('DEL', key)
  end
end

-- `sx` and `sl` are `x` and `l` as text when the caller has them already (formatting a 15-digit float
-- is not free); `r` is most often `x` itself. `e` and `w` as in read_meta (nil: ""). The metadata key
-- never expires earlier than it would have before this write: when a newer write shortens a session,
-- its metadata still remembers the newer version as long as an older write's expiry could revive it.
-- With `digest_key` set, the digests follow (see digest_update).
local function write_meta(key, tombstone, v, x, r, l, f, sx, sl, e, w)
  sx = sx or fmt(x)
  local sr = ''
  if r == x then sr = sx elseif r then sr = fmt(r) end
  sl = sl or (l and fmt(l) or '')
  local sw = ''
  if w == x then sw = sx elseif w then sw = fmt(w) end
  local text = (tombstone and '1|' or '0|') .. (v or '') .. '|' .. sx .. '|' .. sr .. '|' .. sl .. '|' ..
    (f or '') .. '|' .. (e or '') .. '|' .. sw
  local old
  if x == 0 then
    if digest_key then old = redis.call('SET', key, text, 'GET') else redis.call('SET', key, text) end
  else
    local keep = redis.call('PEXPIRETIME', key)
    if keep == -1 then
      if digest_key then old = redis.call('SET', key, text, 'GET') else redis.call('SET', key, text) end
    elseif keep > x then
      if digest_key then
        old = redis.call('SET', key, text, 'KEEPTTL', 'GET')
      else
        redis.call('SET', key, text, 'KEEPTTL')
      end
    elseif digest_key then
      old = redis.call('SET', key, text, 'PXAT', sx, 'GET')
    else
      redis.call('SET', key, text, 'PXAT', sx)
    end
  end
  if digest_key then digest_update(key, old, text) end
end

local function version_ms(v)
  return tonumber(string.sub(v, 1, 15))
end

-- The wall time of a new version: Redis time, or the host's when it is ahead, by at most max_skew / 2.
local function wall_time(now, host, max_skew)
  if host > now + max_skew / 2 then host = now + max_skew / 2 end
  if host > now then return host end
  return now
end

local function next_version(prev, region, wall)
  local ms = math.floor(wall)
  local counter = 0
  if prev then
    local pms = version_ms(prev)
    local pc = tonumber(string.sub(prev, 17, 20))
    if pms and pc and pms >= ms then
      ms = pms
      counter = pc + 1
      if counter > 9999 then
        ms = ms + 1
        counter = 0
      end
    end
  end
  return string.format('%015.0f.%04d.', ms, counter) .. region
end

-- Later of two absolute expiry times; nil means unknown, 0 means never.
local function later(a, b)
  if a == nil then return b end
  if b == nil then return a end
  if a == 0 or b == 0 then return 0 end
  if a > b then return a end
  return b
end

-- Whether moving the expiry to `x` must be told to the other regions, who know `r` (see read_meta).
local function worth_sending(x, r, step)
  if r == nil then return true end
  if x == 0 then return r ~= 0 end
  if r == 0 then return false end
  return x - r >= step
end

-- What this region publishes is numbered, "<epoch>.<n>", so that every other region can tell a gap (a
-- broker's retention, a trimmed stream, a deleted batch) from a duplicate. The counter is a hash beside
-- the outbox, `n` the last number given and `e` the epoch: the Redis time in microseconds (16 digits)
-- when the counter was made. The counter and the outbox live and die together, so a Redis that lost its
-- data starts a new, later epoch and counts from 1 again.
local function current_epoch(key)
  local e = redis.call('HGET', key, 'e')
  if not e then
    local t = redis.call('TIME')
    e = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('HSET', key, 'e', e, 'n', 0)
  end
  return e
end

local function next_seq(key)
  local e = current_epoch(key)
  return e .. '.' .. fmt(redis.call('HINCRBY', key, 'n', 1))
end

-- Appends a session change to the outbox as an envelope in one field, `q`: its number (see next_seq),
-- "|", then its body "op|version|expiry|lifetime|fingerprint|session id", then "\n" and the session for
-- a set. The kind of such an entry is `session` and its time is its id's (this Redis's clock when it was
-- added): one field to write, read and decode (src/wire/stream-entry.ts). Every script that appends
-- takes the counter as the KEYS entry after the outbox (KEYS[4]).
local function append_event(outbox, op, v, sx, l, f, sid, data)
  local head = next_seq(KEYS[4]) .. '|' .. op .. '|' .. v .. '|' .. sx .. '|' .. l .. '|' .. f .. '|' .. sid
  if data then
    redis.call('XADD', outbox, '*', 'q', head .. '\n' .. data)
  else
    redis.call('XADD', outbox, '*', 'q', head)
  end
end

-- Writes a session's value to expire at `x` (0: never; `sx` is `x` as text).
local function store_value(key, data, x, sx)
  if x == 0 then
    redis.call('SET', key, data)
  else
    redis.call('SET', key, data, 'PXAT', sx)
  end
end

-- The expiry and lifetime rule a migrated connect-redis session gets from its value key's expiry `x`
-- (PEXPIRETIME: -1 none) and the rule the host gave: no expiry means never expiring and no touch
-- limit; a remaining lifetime longer than the rule becomes the rule, as the store does
-- (migrate.lua, migrate-move.lua).
local function migrated_life(x, rule, now)
  if x <= 0 then return 0, 0 end
  if x - now > rule + 1000 then return x, x - now end
  return x, rule
end

local function expire_at(key, at)
  if at == 0 then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIREAT', key, fmt(at))
  end
end

-- Appends one envelope of any kind to an outbox, numbered by the same counter as session changes (so a
-- receiving region's gap detection covers it), and returns its id "<region>:<epoch>.<n>". The entry is
-- one field, `e`: the line "<kind> <time> <id>", "\n", then the body as it is (src/wire/stream-entry.ts);
-- its time is this Redis's clock in ms. `outbox` and `counter` must be KEYS of the calling script (the
-- outbox and its counter, `<outbox>:seq`); `kind` is 1 to 32 of a-z, 0-9, - and never `session`,
-- `sealed` or `heartbeat`. A module's own script calls this beside its own writes, so that its data and
-- its event are written in one atomic call (see docs/replication.md, "Other kinds of events").
local function append_envelope(outbox, counter, region, kind, body)
  local id = region .. ':' .. next_seq(counter)
  redis.call('XADD', outbox, '*', 'e', kind .. ' ' .. fmt(now_ms()) .. ' ' .. id .. '\n' .. body)
  return id
end

-- Revocation events (src/session/revocations.ts): a script that ends a session tells every process of
-- the region in the same atomic call, by a PUBLISH on the store's revocation channel (a channel is no
-- key: it reaches the script through ARGV; nil or "" publishes nothing). The message is JSON:
-- k the session's value key, o the region where the session was ended, r the reason ("logout",
-- "logout-everywhere", "revoked-before"), u the user id when the metadata knows it.
local function publish_revoked(channel, key, origin, reason, user)
  if not channel or channel == '' then return end
  local message = {k = key, o = origin, r = reason}
  if user and user ~= '' then message.u = user end
  redis.call('PUBLISH', channel, cjson.encode(message))
end

-- The region that made version `v` ("<ms>.<counter>.<region>", see next_version).
local function version_region(v)
  return string.sub(v, 22)
end
