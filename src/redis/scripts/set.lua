--- Writes a session with a new version, unless a logout's tombstone forbids it.
--- A write whose content fingerprint and lifetime rule equal the stored ones (only cookie.expires
--- changed) costs a touch: the value is left as it is, no new version is made, and the expiry merges
--- with the stored one as a touch's does (the later wins). Any other write makes a new version, and a new
--- version's expiry is its own, shorter or longer than before (a session re-saved with a shorter maxAge
--- is shortened). The metadata records the expiry written with the value (w), so that `get` reports the
--- expiry of the last write either way.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot; see read_meta in includes/common.lua)
--- KEYS[3] (optional) this region's outbox stream: the store replicates, the change is appended to
---         it, and the metadata's expiry is kept exact. Without it the value key's own expiry is the
---         truth (touches move only that) and the metadata may expire earlier.
--- KEYS[4] (with KEYS[3]) the outbox's sequence counter (next_seq in includes/common.lua)
--- KEYS[5] (optional, with KEYS[3]) this region's digest key (digests in includes/common.lua); its
---         window hashes are it and `:<window>` (same slot)
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
--- ARGV[10] (optional) the session's user id ("" or absent: none). With it, the LAST key is the user's
---         index (`{P|user}:<uid>`, or its shard's `P{T}|user:<uid>` in the session's slot;
---         includes/user-index.lua): the write keeps the index entry, and a
---         session created before the user's "revoked before" mark (logout everywhere) is refused
---         (code -2) and ended here, as a destroy would (tombstone, digests, event).
---
--- Returns {code, version} (WriteResult in src/redis/commands.ts):
---   0  written with the new version
---   1  content unchanged: only the expiry moved (touch cost)
---  -1  refused: the session was destroyed (tombstone)
---  -2  refused: the user's "revoked before" mark ends the session (ENDING revoked-before: nothing is
---      written here; the store then destroys the session, which writes the tombstone and the event)
--- @include "common"
--- @include "user-index"

-- When a session this region holds began at the latest: its version here was made then (an index
-- entry made now for it must not postdate a "revoked before" mark that came in between).
local function born_by(meta, latest)
  local at = meta.v and version_ms(meta.v)
  if at and at < latest then return at end
  return latest
end

local uid = ARGV[10]
local nkeys = #KEYS
local ukey = nil
if uid and uid ~= '' then
  ukey = KEYS[nkeys]
  nkeys = nkeys - 1
end
local replicating = nkeys >= 3
if replicating and nkeys >= 5 then digest_key = KEYS[5] end
local rule = tonumber(ARGV[9])
local meta = read_meta(KEYS[2])
if meta.t then
  return {-1, meta.v or ''}
end

local now = now_ms()
if ukey then
  -- A session this region knows began no later than its index entry, or than its version here.
  local created = user_created(ukey, ARGV[5])
  if not created and meta.v then created = version_ms(meta.v) end
  if created and user_revoked(ukey, ARGV[5], created, now) then return {-2, meta.v or ''} end
end
local life = tonumber(ARGV[3])
local prev_x = meta.x
local want = 0
if life ~= 0 then want = now + life end

if meta.f == ARGV[2] and meta.l == rule and not meta.e then
  -- Same content and rule: a touch of the stored version, merged to the later expiry.
  local x = want
  if prev_x ~= nil then x = later(prev_x, want) end
  local sx = fmt(x)
  -- PEXPIREAT answers 0 for a missing key, so it also tells whether the value is there.
  local alive
  if x == 0 then
    alive = redis.call('PERSIST', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[1]) == 1
  elseif replicating then
    alive = redis.call('PEXPIREAT', KEYS[1], sx) == 1
  else
    alive = redis.call('PEXPIREAT', KEYS[1], sx, 'GT') == 1 or redis.call('EXISTS', KEYS[1]) == 1
  end
  if alive then
    if replicating and x ~= prev_x then
      local send = worth_sending(x, meta.r, tonumber(ARGV[8]))
      local r = meta.r
      if send then r = x end
      write_meta(KEYS[2], false, meta.v, x, r, meta.l, meta.f, sx, nil, nil, meta.w)
      if send then append_event(KEYS[3], 't', meta.v or '', sx, fmt(meta.l), '', ARGV[5]) end
    elseif not replicating and x ~= prev_x then
      -- The metadata (fingerprint) lives as long as this write's expiry, and records it for `get`.
      write_meta(KEYS[2], false, meta.v, x, nil, meta.l, meta.f, sx, nil, nil, meta.w)
    end
    if ukey then user_put(ukey, ARGV[5], ARGV[4], born_by(meta, now), now, x) end
    return {1, meta.v or ''}
  end
end

-- A new version: its expiry is its own.
local x = want
local sx = fmt(x)
local prev_v = expiry_version(meta)
if meta.v and vcmp(meta.v, prev_v) > 0 then prev_v = meta.v end
local wall = wall_time(now, tonumber(ARGV[6]), tonumber(ARGV[7]))
if ukey and not meta.v then
  -- A session new here, of a user with a "revoked before" mark ahead of this clock (made in a region
  -- whose clock runs ahead): its first version is placed at the mark, as a hybrid logical clock moves
  -- past a time it has seen, so that every region, comparing its version with the mark, finds it made
  -- after the logout everywhere. Otherwise this region would keep it and the others refuse it.
  local at, till, except = user_mark(ukey)
  if at and till > now and except ~= ARGV[5] and at > wall then wall = at end
end
local version = next_version(prev_v, ARGV[4], wall)
store_value(KEYS[1], ARGV[1], x, sx)
if replicating then
  write_meta(KEYS[2], false, version, x, x, rule, ARGV[2], sx, ARGV[9], nil, x)
  append_event(KEYS[3], 's', version, sx, ARGV[9], ARGV[2], ARGV[5], ARGV[1])
else
  write_meta(KEYS[2], false, version, x, nil, rule, ARGV[2], sx, ARGV[9], nil, x)
end
if ukey then user_put(ukey, ARGV[5], ARGV[4], born_by(meta, version_ms(version)), now, x) end
return {0, version}
