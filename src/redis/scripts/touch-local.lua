--- Extends a session's lifetime in a store that does not replicate: the value key's expiry moves
--- forward only (PEXPIRE ... GT never shortens a session, never creates one, and cannot revive a
--- destroyed one: its value key is gone), and the metadata's expiry follows, so that `get` reports the
--- moved expiry in `cookie.expires` as express-session's MemoryStore does (the value is not rewritten).
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot; see read_meta in includes/common.lua)
---
--- ARGV[1] remaining lifetime in ms (> 0)
--- ARGV[2] (optional) session id, with ARGV[3] the region and KEYS[3] the user's index: its entry
---         follows the new expiry (includes/user-index.lua)
---
--- Returns 1 when the expiry moved, 0 when it did not (no such session, or it lives longer already).
--- @include "common"
--- @include "user-index"

if redis.call('PEXPIRE', KEYS[1], ARGV[1], 'GT') ~= 1 then return 0 end
local meta = read_meta(KEYS[2])
-- No metadata (a session written by connect-redis) or a tombstone: the value key alone is the truth.
if meta.t == nil or meta.t or not meta.x then return 1 end
local x = redis.call('PEXPIRETIME', KEYS[1])
if KEYS[3] then user_put(KEYS[3], ARGV[2], ARGV[3], now_ms(), now_ms(), x) end
if x > meta.x then write_meta(KEYS[2], false, meta.v, x, meta.r, meta.l, meta.f, nil, nil, meta.e, meta.w) end
return 1
