--- Forgets the metadata of a live session whose value is gone (deleted outside geosession), so that
--- repair (src/admin/repair.ts) can apply the session again: the apply script takes metadata that names
--- a version for that version's data and would not store the same version twice. Never forgets a
--- tombstone, never touches a session whose value is there. The region's digests follow.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot)
--- KEYS[3] this region's digest key (digests in includes/common.lua)
---
--- ARGV[1] stale-event horizon, ms (as the apply script has it)
---
--- Returns 1 when the metadata was forgotten, 0 when nothing was done (the value is there, a tombstone,
--- or no metadata).
--- @include "common"

digest_key = KEYS[3]
digest_horizon = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local meta = read_meta(KEYS[2])
if meta.t == nil or meta.t then return 0 end
delete_meta(KEYS[2])
return 1
