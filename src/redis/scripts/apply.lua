--- Applies a batch of session changes from other regions, one after another, in one call. Idempotent
--- and order-independent: the state of a session is a join of three parts, each merged the same way
--- whatever the order of arrival:
---   data     the value of the highest version wins (last writer wins)
---   expiry   travels with the version: the expiry of the highest version seen (by a set or by a touch
---            of that version) wins, shorter or longer; writes and touches of the same version merge to
---            the later expiry (0 = never)
---   logout   a tombstone absorbs every later or earlier set and touch (logout is final); it keeps the
---            highest version and the latest expiry it saw
--- A touch carries the version it touched. A touch of a version whose set has not arrived yet is kept
--- (metadata e and x) and merges with that set when it comes.
--- so applying any set of events, in any order, any number of times, gives the same state.
---
--- Every event is treated as untrusted input first:
---   - a version or event time more than the allowed clock skew ahead of this Redis's clock is refused
---     (a forged or broken origin cannot pin a session);
---   - a set or touch made longer ago than the stale-event horizon is refused (a tombstone is only
---     guaranteed to live that long, so applying it could revive a logged-out session); a late destroy
---     still applies, since ending a session never revives one;
---   - a touch can neither remove an expiry nor reach past now + its version's lifetime rule.
---
--- ARGV[1] stale-event horizon, ms (the shortest tombstone lifetime)
--- ARGV[2] largest clock skew between regions, ms
--- For the i-th event (i = 1..floor(#KEYS/2)), at a = 2 + 7(i-1):
--- KEYS[2i-1] session value key
--- KEYS[2i]   session metadata (same slot)
--- ARGV[a+1]  op: "s" set, "t" touch, "d" destroy
--- ARGV[a+2]  version ("" for a touch of a session whose data the origin did not have)
--- ARGV[a+3]  absolute expiry in ms ("0" = never); for "d", when the tombstone may be forgotten
--- ARGV[a+4]  the session's lifetime rule in ms ("0" never; "" for "d")
--- ARGV[a+5]  content fingerprint ("s"); for "d" the reason when not a plain logout ("logout-everywhere",
---            "revoked-before"), then optionally a space and the user id, published with the revocation
--- ARGV[a+6]  serialized session ("s" only)
--- ARGV[a+7]  when the origin made the change, epoch ms (its Redis clock)
--- ARGV[3 + 7n] (optional, n the number of events) the store's revocation channel: a destroy that ends a
---            session here (it was no tombstone before) is published there with the destroy's origin
---            (the region of its version) and its reason (publish_revoked in common.lua)
--- KEYS[#KEYS] when #KEYS is odd: this region's digest key (digests in includes/common.lua); its window
---            hashes are it and `:<window>` (same slot)
--- (Under Redis Cluster a batch must hold one slot's sessions only.)
---
--- Returns one code per event (ApplyResult in src/redis/commands.ts), then a string with one character
--- per event: "1" when it (of any op) was older than the horizon, else "0".
---   0  applied (state changed)
---   1  nothing changed (a duplicate, or an older version)
---   2  already expired on arrival; nothing stored
---  -1  refused: the session was destroyed here (tombstone)
---   3  refused: older than the stale-event horizon
---   4  refused: version or time too far ahead of this region's clock
---   5  refused: a touch that would remove the expiry or reach past the session's lifetime rule
--- @include "common"

-- Ends a session whose newest version's expiry has passed: the value goes, and the metadata records
-- that version (its key lives on while an older write could revive the session, see write_meta).
local function expired(vkey, mkey, meta, v, x, e)
  redis.call('DEL', vkey)
  if meta.x ~= nil then write_meta(mkey, false, v, x, nil, meta.l, meta.f, nil, nil, e, meta.w) end
  return 2
end

-- This call's revocation channel (nil: none).
local revoked_channel = nil

local function apply_one(vkey, mkey, op, version, event_x, life, fingerprint, data, time, now, horizon, skew)
  local vms = nil
  if version ~= '' then vms = version_ms(version) end
  if (vms and vms > now + skew) or time > now + skew then return 4 end
  if op ~= 'd' and now - time > horizon then return 3 end

  local meta = read_meta(mkey)
  local prev_x = meta.x

  if op == 'd' then
    -- The tombstone outlives every expiry seen for the id, older versions' too (the metadata key
    -- lives that long, see write_meta).
    local until_ms = event_x
    if prev_x and prev_x ~= 0 and prev_x > until_ms then until_ms = prev_x end
    local keep = redis.call('PEXPIRETIME', mkey)
    if keep > until_ms then until_ms = keep end
    local v = expiry_version(meta)
    if not v or version > v then v = version end
    if meta.t and until_ms == prev_x and v == meta.v and meta.r == nil then return 1 end
    redis.call('DEL', vkey)
    if until_ms <= now then
      delete_meta(mkey)
      return 2
    end
    write_meta(mkey, true, v, until_ms, nil, nil, nil)
    if not meta.t then
      local reason, user = string.match(fingerprint or '', '^([^ ]+) (.+)$')
      if not reason then reason = fingerprint end
      if reason ~= 'logout-everywhere' and reason ~= 'revoked-before' then reason, user = 'logout', nil end
      publish_revoked(revoked_channel, vkey, version_region(version), reason, user)
    end
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
    if v ~= meta.v or x ~= prev_x or meta.r ~= nil then write_meta(mkey, true, v, x, nil, nil, nil) end
    return -1
  end

  -- How the event's version compares with the version the expiry here belongs to.
  local c = vcmp(version, expiry_version(meta))

  -- A touch is bounded by its version's rule: the stored one, or its own for a newer version (whose set,
  -- checked against the same rule below, has not arrived: a set has to be believed anyway).
  local rule = meta.l
  if rule == nil or c > 0 then rule = life end
  if op == 't' and rule ~= nil and rule ~= 0 then
    if event_x == 0 or event_x > now + rule + skew then return 5 end
  end
  local newer_data = op == 's' and (not meta.v or version > meta.v)

  if c > 0 then
    -- A newer version: its expiry replaces the one here, shorter or longer.
    local x = event_x
    if op == 's' then
      if x ~= 0 and x <= now then return expired(vkey, mkey, meta, version, x, nil) end
      local sx = fmt(x)
      store_value(vkey, data, x, sx)
      write_meta(mkey, false, version, x, x, life, fingerprint, sx, nil, nil, x)
      return 0
    end
    -- A touch of a version whose set has not arrived: the data here (if any) is older, the expiry is
    -- that version's; the set merges with it when it comes.
    if x ~= 0 and x <= now then return expired(vkey, mkey, meta, meta.v, x, version) end
    if redis.call('EXISTS', vkey) == 1 then expire_at(vkey, x) end
    write_meta(mkey, false, meta.v, x, x, meta.l or life, meta.f, nil, nil, version, meta.w)
    return 0
  end

  if c < 0 then
    -- Older than the expiry here: a touch changes nothing, a set only its data if that is newer (a touch
    -- of an even newer version came first).
    if not newer_data then
      -- Nothing changes, but the metadata is kept as long as this older event's expiry, as it would be
      -- had the events come the other way round (and an older set could revive the session).
      if event_x ~= 0 then redis.call('PEXPIREAT', mkey, fmt(event_x), 'GT') end
      return 1
    end
    if prev_x ~= 0 and prev_x <= now then return expired(vkey, mkey, meta, version, prev_x, meta.e) end
    redis.call('SET', vkey, data)
    expire_at(vkey, prev_x)
    write_meta(mkey, false, version, prev_x, meta.r, life, fingerprint, nil, nil, meta.e, event_x)
    if event_x ~= 0 then redis.call('PEXPIREAT', mkey, fmt(event_x), 'GT') end
    return 0
  end

  -- The same version as the expiry here: the later expiry wins.
  local prev_r = meta.r
  if newer_data and life ~= 0 and prev_x and (prev_x == 0 or prev_x > now + life + skew) then
    -- Only touches of this version were seen before its set, and the expiry they left is "never" or
    -- reaches past the set's own rule (touches can be forged, a set has to be believed anyway): ignore
    -- it, and what it claimed the other regions were told.
    prev_x = nil
    prev_r = nil
  end
  local x = later(prev_x, event_x)
  if x ~= 0 and x <= now then
    if newer_data then return expired(vkey, mkey, meta, version, x, nil) end
    return 2
  end
  local r = later(prev_r, event_x)

  if newer_data then
    -- The set of a version one of whose touches came first.
    local sx = fmt(x)
    store_value(vkey, data, x, sx)
    write_meta(mkey, false, version, x, r, life, fingerprint, sx, nil, nil, event_x)
    return 0
  end

  -- A touch, or a duplicate set: only the expiry may move.
  if x == prev_x and r == meta.r then return 1 end
  if x ~= prev_x and redis.call('EXISTS', vkey) == 1 then expire_at(vkey, x) end
  -- When the session has not arrived yet, the metadata remembers the expiry so the set merges with it.
  write_meta(mkey, false, meta.v, x, r, meta.l or life, meta.f, nil, nil, meta.e, meta.w)
  if x == prev_x then return 1 end
  return 0
end

local now = now_ms()
local horizon = tonumber(ARGV[1])
local skew = tonumber(ARGV[2])
if #KEYS % 2 == 1 then
  digest_key = KEYS[#KEYS]
  digest_horizon = horizon
end
local count = math.floor(#KEYS / 2)
revoked_channel = ARGV[3 + 7 * count]
local codes = {}
local old = {}
for i = 1, count do
  local a = 2 + (i - 1) * 7
  local time = tonumber(ARGV[a + 7])
  if now - time > horizon then old[i] = '1' else old[i] = '0' end
  codes[i] = apply_one(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]),
    tonumber(ARGV[a + 4]), ARGV[a + 5], ARGV[a + 6], time, now, horizon, skew)
end
codes[#codes + 1] = table.concat(old)
return codes
