--- Extends a session's lifetime without rewriting its value, keeping its metadata and its replication
--- event in step. A touch belongs to the version it touched (the version its expiry belongs to here,
--- sent with it): it merges with that version's expiry, the later wins, and never shortens a session.
--- Never creates a session, never touches one that was destroyed. (A store that does not replicate
--- touches with touch-local.lua instead: PEXPIRE GT, then the metadata's expiry.)
---
--- When the session is not here (read-through served it from the region that made it, whose write has
--- not arrived yet), the new expiry is still recorded in the metadata and always sent: the set that
--- arrives later merges with it, and the region that has the session extends it.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot)
--- KEYS[3] this region's outbox stream
--- KEYS[4] (with KEYS[3]) the outbox's sequence counter (next_seq in includes/common.lua)
--- KEYS[5] (optional) this region's digest key (digests in includes/common.lua); its window hashes
---         are it and `:<window>` (same slot)
---
--- ARGV[1] remaining lifetime in ms, "0" for never (the expiry is made from the Redis clock)
--- ARGV[2] region id
--- ARGV[3] session id
--- ARGV[4] touch step, ms: a move of the expiry by less than this past what the other regions know
---         is applied here only
--- ARGV[5] the session's lifetime rule in ms ("0" never), as the caller's session has it
--- ARGV[6] (optional) the session's user id ("" or absent: none); with it the LAST key is the user's
---         index (includes/user-index.lua), whose entry follows the new expiry
---
--- Returns (TouchResult in src/redis/commands.ts):
---   0  the expiry moved
---   1  nothing to do (the session already lives that long)
---  -1  refused: the session was destroyed (tombstone)
---   2  the session is not here: its new expiry was recorded and sent
---   3  nothing done: the session's lifetime rule differs from the stored one (its cookie's maxAge
---      changed), so the caller must write the session instead: a touch never reaches past the stored
---      rule, and a shorter rule takes a new version to shorten the session everywhere
--- @include "common"
--- @include "user-index"

local ukey = nil
if ARGV[6] and ARGV[6] ~= '' then ukey = KEYS[#KEYS] end
if #KEYS >= (ukey and 6 or 5) then digest_key = KEYS[5] end
local meta = read_meta(KEYS[2])
if meta.t then return -1 end
local rule = tonumber(ARGV[5])
if meta.l and rule ~= meta.l then return 3 end

local now = now_ms()
local life = tonumber(ARGV[1])
local want = 0
if life ~= 0 then want = now + life end
local x = later(meta.x, want)
if x == meta.x then return 1 end

-- PEXPIREAT answers 0 for a missing key: a touch never creates a session.
local moved
if x == 0 then
  moved = redis.call('PERSIST', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[1]) == 1
else
  moved = redis.call('PEXPIREAT', KEYS[1], fmt(x)) == 1
end
local send = not moved or worth_sending(x, meta.r, tonumber(ARGV[4]))
local r = meta.r
if send then r = x end
local l = meta.l or rule
write_meta(KEYS[2], false, meta.v, x, r, l, meta.f, nil, nil, meta.e, meta.w)
if send then append_event(KEYS[3], 't', expiry_version(meta) or '', fmt(x), fmt(l), '', ARGV[3]) end
if ukey and moved then user_put(ukey, ARGV[3], ARGV[2], now, now, x) end
if moved then return 0 end
return 2
