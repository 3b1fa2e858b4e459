-- The per-user index (docs/users-and-connections.md, "Per-user index and logout everywhere").
--
-- One hash per user, `{P|user}:<uid>` (KeySpace.user), kept by the write scripts atomically with the
-- session write; with outbox shards one hash per user and shard, `P{T}|user:<uid>`, listing the user's
-- sessions of that shard, in their slot, with that shard's mark:
--   field <sid>     "<origin>|<created ms>|<last seen ms>|<expiry ms, 0 never>"
--   field "|before" "<mark ms>|<mark expiry ms>|<excepted sid or ''>": the "revoked before" mark of
--                   logout everywhere. A session id never holds "|", so the field never meets a sid.
-- Entries whose expiry passed are pruned on every write (here) and on every read (sessionsOf); an entry
-- of a session that ended otherwise (a destroy) is pruned by the next read, which checks each listed
-- session's own state, and at the latest when its recorded expiry passes. The hash itself expires with
-- the latest of its entries and its mark (PEXPIREAT, PERSIST when one never expires), so it never
-- outlives what it holds and never grows without bound. No keyspace notification, no process involved.
-- (Redis 7.4's hash-field expiry would let Redis drop entries itself; this fallback runs everywhere.)

local USER_MARK = '|before'

-- The "revoked before" mark at `ukey`: its time (ms), its expiry and the excepted sid, or nil.
local function user_mark(ukey)
  local text = redis.call('HGET', ukey, USER_MARK)
  if not text then return nil end
  local at, till, except = string.match(text, '^(%d+)|(%d+)|(.*)$')
  if not at then return nil end
  return tonumber(at), tonumber(till), except
end

-- Whether a write of session `sid` whose life began at `created` (ms) is refused by the mark at `ukey`
-- (created before the mark, and not the one logout everywhere kept), at time `now`.
local function user_revoked(ukey, sid, created, now)
  local at, till, except = user_mark(ukey)
  if not at or till <= now then return false end
  if except == sid then return false end
  return created < at
end

-- The creation time recorded for `sid` at `ukey` (nil when none).
local function user_created(ukey, sid)
  local entry = redis.call('HGET', ukey, sid)
  if not entry then return nil end
  return tonumber(string.match(entry, '^[^|]*|(%d+)|'))
end

-- Prunes entries (and a mark) whose expiry passed and sets the hash's expiry to the latest left.
local function user_tidy(ukey, now)
  local all = redis.call('HGETALL', ukey)
  local latest = -1
  local dead = {}
  for i = 1, #all, 2 do
    local field, text = all[i], all[i + 1]
    local x
    if field == USER_MARK then
      x = tonumber(string.match(text, '^%d+|(%d+)|'))
    else
      x = tonumber(string.match(text, '|(%d+)$'))
    end
    if not x or (x ~= 0 and x <= now) then
      dead[#dead + 1] = field
    elseif latest ~= 0 and (x == 0 or x > latest) then
      latest = x
    end
  end
  if #dead > 0 then redis.call('HDEL', ukey, unpack(dead)) end
  if latest == 0 then
    redis.call('PERSIST', ukey)
  elseif latest > 0 then
    redis.call('PEXPIREAT', ukey, fmt(latest))
  end
end

-- Records session `sid` at `ukey`: made in `origin` at `created` (both kept from an earlier entry),
-- seen at `now`, expiring at `x` (0 never); then tidies the hash.
local function user_put(ukey, sid, origin, created, now, x)
  local entry = redis.call('HGET', ukey, sid)
  if entry then
    local o, c = string.match(entry, '^([^|]*)|(%d+)|')
    if o then origin, created = o, tonumber(c) end
  end
  redis.call('HSET', ukey, sid, origin .. '|' .. fmt(created) .. '|' .. fmt(now) .. '|' .. fmt(x))
  user_tidy(ukey, now)
end

-- Merges a "revoked before" mark made at `at` (ms), living until `till`, keeping session `except`, into
-- `ukey`: a later mark wins, an earlier one changes nothing, the longest life is kept. Returns 0 written,
-- 1 nothing new, 2 the mark has expired (or is not one).
local function user_merge_mark(ukey, at, till, except, now)
  if not at or not till or till <= now then return 2 end
  local old_at, old_till, old_except = user_mark(ukey)
  if old_at and old_at >= at and old_till >= till then return 1 end
  if old_at and old_at > at then at, except = old_at, old_except end
  if old_till and old_till > till then till = old_till end
  redis.call('HSET', ukey, USER_MARK, fmt(at) .. '|' .. fmt(till) .. '|' .. except)
  user_tidy(ukey, now)
  return 0
end
