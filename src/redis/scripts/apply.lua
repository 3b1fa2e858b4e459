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
--- For the i-th event (i = 1..n, n = (#ARGV - 2) / 8), at a = 2 + 8(i-1):
--- KEYS[2i-1] session value key (for "r": the user's index)
--- KEYS[2i]   session metadata (same slot; for "r": the user's index again)
--- ARGV[a+1]  op: "s" set, "t" touch, "d" destroy, "r" a user's "revoked before" mark (logout
---            everywhere: the mark's time is its version's, its expiry ARGV[a+3], the kept session id
---            ARGV[a+5]; a later mark wins)
--- ARGV[a+2]  version ("" for a touch of a session whose data the origin did not have)
--- ARGV[a+3]  absolute expiry in ms ("0" = never); for "d", when the tombstone may be forgotten
--- ARGV[a+4]  the session's lifetime rule in ms ("0" never; "" for "d")
--- ARGV[a+5]  content fingerprint ("s"); for "d" the reason when not a plain logout ("logout-everywhere",
---            "revoked-before"), then optionally a space and the user id, published with the revocation
--- ARGV[a+6]  serialized session ("s" only)
--- ARGV[a+7]  when the origin made the change, epoch ms (its Redis clock)
--- ARGV[a+8]  ("s" only) the session id when the session has a user, "" for none: the set then keeps the
---            user's index
---            (includes/user-index.lua), and a session created before the user's mark is refused (-1)
--- ARGV[3 + 8n] (optional, n the number of events) the store's revocation channel: a destroy that ends a
---            session here (it was no tombstone before) is published there with the destroy's origin
---            (the region of its version) and its reason (publish_revoked in common.lua)
--- KEYS[2n+1] (optional) this region's digest key (digests in includes/common.lua); its window
---            hashes are it and `:<window>` (same slot)
--- then, in event order, the index key of the user of each event with ARGV[a+8] set
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
--- @include "user-index"

-- Ends a session whose newest version's expiry has passed: the value goes, and the metadata records
-- that version (its key lives on while an older write could revive the session, see write_meta).
local function expired(vkey, mkey, meta, v, x, e)
  redis.call('DEL', vkey)
  if meta.x ~= nil then write_meta(mkey, false, v, x, nil, meta.l, meta.f, nil, nil, e, meta.w) end
  return 2
end

-- This call's revocation channel (nil: none).
local revoked_channel = nil

-- A user's "revoked before" mark from another region (op "r"); the store then ends the user's sessions
-- here that began before it (ENDING revoked-before, src/session/users.ts).
local function apply_mark(ukey, version, till, except, now)
  return user_merge_mark(ukey, version_ms(version), till, except, now)
end

local function apply_one(vkey, mkey, op, version, event_x, life, fingerprint, data, time, now, horizon, skew,
                         sid_ukey)
  local vms = nil
  if version ~= '' then vms = version_ms(version) end
  if (vms and vms > now + skew) or time > now + skew then return 4 end
  if op == 'r' then return apply_mark(vkey, version, event_x, fingerprint, now) end
  if op ~= 'd' and now - time > horizon then return 3 end

  local meta = read_meta(mkey)
  if meta.t and meta.r == 0 then
    -- A local tombstone (a logout here of an id born here that this region held nothing of): its
    -- version was never sent, so no region can converge on it. It still refuses, for as long as it lives,
    -- but the versions it takes are the events', so every region ends with the same tombstone.
    meta.v, meta.e = nil, nil
  end
  local prev_x = meta.x
  if op == 's' and sid_ukey and not meta.t then
    -- A session the mark covers (created before it: by its index entry, else by its oldest version
    -- known here) is refused, as a tombstone refuses it (ENDING revoked-before).
    local created = user_created(sid_ukey[1], sid_ukey[2])
    if not created and meta.v then created = version_ms(meta.v) end
    if not created then created = vms end
    if created and user_revoked(sid_ukey[1], sid_ukey[2], created, now) then
      -- The mark ends this session here (ENDING revoked-before). The tombstone that ends it must stand
      -- above this version too, as it would had the set arrived after it (a tombstone keeps the highest
      -- version seen): otherwise regions that saw the set before and after the tombstone disagree on its
      -- version (AMQP fault seed 1816583885). The version is kept as the expiry's (`e`), which every
      -- tombstone and local destroy starts from; the value and its version are left as they are.
      if version ~= '' and vcmp(version, expiry_version(meta)) > 0 then
        local x = meta.x
        if x == nil then x = event_x end
        write_meta(mkey, false, meta.v, x, meta.r, meta.l, meta.f, nil, nil, version, meta.w)
      end
      return -1
    end
  end

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
  local alive = redis.call('EXISTS', vkey) == 1
  if x ~= prev_x and alive then expire_at(vkey, x) end
  -- When the session has not arrived yet, the metadata remembers the expiry so the set merges with it.
  -- When its data was here and has ended (its set arrived already expired), a touch cannot bring it back:
  -- the metadata keeps no replicated expiry, so the digests do not count a session this region cannot
  -- serve, and verify finds it missing where another region, which saw the touch first, holds it.
  if not alive and meta.v and meta.v == version then r = nil end
  write_meta(mkey, false, meta.v, x, r, meta.l or life, meta.f, nil, nil, meta.e, meta.w)
  if x == prev_x then return 1 end
  return 0
end

local now = now_ms()
local horizon = tonumber(ARGV[1])
local skew = tonumber(ARGV[2])
local n = math.floor((#ARGV - 2) / 8)
local users = 0
for i = 1, n do
  if ARGV[2 + (i - 1) * 8 + 8] ~= '' then users = users + 1 end
end
local next_user = 2 * n + 1
if #KEYS == 2 * n + 1 + users then
  digest_key = KEYS[2 * n + 1]
  digest_horizon = horizon
  next_user = 2 * n + 2
end
revoked_channel = ARGV[3 + 8 * n]
local codes = {}
local old = {}
for i = 1, n do
  local a = 2 + (i - 1) * 8
  local time = tonumber(ARGV[a + 7])
  if now - time > horizon then old[i] = '1' else old[i] = '0' end
  local sid_ukey = nil
  if ARGV[a + 8] ~= '' then
    sid_ukey = {KEYS[next_user], ARGV[a + 8]}
    next_user = next_user + 1
  end
  codes[i] = apply_one(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]),
    tonumber(ARGV[a + 4]), ARGV[a + 5], ARGV[a + 6], time, now, horizon, skew, sid_ukey)
  if sid_ukey and codes[i] == 0 then
    -- The session began no later than this version was made (its origin's clock, clamped to now), which
    -- may be well before it arrived here: a "revoked before" mark made in between must cover it.
    local born = version_ms(ARGV[a + 2]) or now
    if born > now then born = now end
    user_put(sid_ukey[1], sid_ukey[2], string.match(ARGV[a + 2], '%.([^.]*)$') or '', born, now,
      tonumber(ARGV[a + 3]))
  end
end
codes[#codes + 1] = table.concat(old)
return codes
