--- Gives one session written by connect-redis (a value without metadata) geosession's metadata, so
--- that the store and replication treat it as one of their own. The value is not rewritten and its
--- expiry is not changed (nobody is logged out, no expiry is shortened): the metadata takes the value
--- key's own expiry, a new version of this region, the lifetime rule (the rule given, or the remaining
--- lifetime when that is longer, as set.lua's caller does) and the content fingerprint the host computed
--- from the value it read. Nothing is appended to the outbox: the other regions learn of the session by
--- a resync or its next write. A session that already has metadata (or a tombstone) is left alone.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata key (same slot; see read_meta in includes/common.lua)
---
--- ARGV[1] region id (for the version)
--- ARGV[2] SHA-1 (hex) of the value the host read and fingerprinted: the value is not migrated when it
---         changed since
--- ARGV[3] content fingerprint of that value (src/internal/fingerprint.ts)
--- ARGV[4] lifetime rule in ms: the cookie's originalMaxAge, or the ttl
--- ARGV[5] the host's clock, epoch ms (may count towards the version's wall time, see common.lua)
--- ARGV[6] largest clock skew between regions, ms
---
--- Returns {code, version} (MigrateResult in src/redis/commands.ts):
---   0  migrated: metadata written with `version`
---   1  skipped: the session has metadata already (or a tombstone)
---   2  skipped: the value is gone (expired or deleted)
---   3  skipped: the value changed since the host read it
--- @include "common"

if redis.call('EXISTS', KEYS[2]) == 1 then return {1, ''} end
local value = redis.call('GET', KEYS[1])
if not value then return {2, ''} end
if redis.sha1hex(value) ~= ARGV[2] then return {3, ''} end

local now = now_ms()
local x = redis.call('PEXPIRETIME', KEYS[1])
local rule = tonumber(ARGV[4])
if x <= 0 then
  -- No expiry: the session never expires, and neither may a touch limit it.
  x = 0
  rule = 0
elseif x - now > rule + 1000 then
  rule = x - now
end
local version = next_version(false, ARGV[1], wall_time(now, tonumber(ARGV[5]), tonumber(ARGV[6])))
local sx = fmt(x)
write_meta(KEYS[2], false, version, x, nil, rule, ARGV[3], sx, fmt(rule), nil, x)
return {0, version}
