--- Copies a user's "revoked before" mark (logout everywhere) into this region: a resync's step
--- (src/admin/resync-marks.ts), so that a region whose Redis came back empty refuses again the sessions
--- the other regions refuse. Merged as a replicated mark is (user_merge_mark): a later mark wins, an
--- earlier one changes nothing.
---
--- KEYS[1] the user's index in this region (`{P|user}:<uid>`, or one shard's `P{T}|user:<uid>`)
---
--- ARGV[1] the mark as the source holds it: "<mark ms>|<mark expiry ms>|<kept sid or ''>"
---
--- Returns 0 written, 1 nothing new, 2 expired or not a mark.
--- @include "common"
--- @include "user-index"

local at, till, except = string.match(ARGV[1], '^(%d+)|(%d+)|(.*)$')
if not at then return 2 end
return user_merge_mark(KEYS[1], tonumber(at), tonumber(till), except, now_ms())
