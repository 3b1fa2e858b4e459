--- Gives sessions written by connect-redis (values without metadata) geosession's metadata, so that
--- the store and replication treat them as their own. A value is not rewritten and its expiry is not
--- changed (nobody is logged out, no expiry is shortened): the metadata takes the value key's own
--- expiry, a new version of this region, the lifetime rule (the rule given, or the remaining lifetime
--- when that is longer, as the store does) and the content fingerprint the host computed from the value
--- it read. Metadata is written through write_meta only. Nothing is appended to the outbox: the other
--- regions learn of a session by a resync or its next write. A session that already has metadata (or a
--- tombstone) is left alone. Several sessions per call (one pair of KEYS each), so a plain Redis only:
--- on Redis Cluster call it with one session at a time.
---
--- KEYS[2i-1] session i's value key
--- KEYS[2i]   session i's metadata key (same slot; see read_meta in includes/common.lua)
---
--- ARGV[1] region id (for the versions)
--- ARGV[2] the host's clock, epoch ms (may count towards a version's wall time, see common.lua)
--- ARGV[3] largest clock skew between regions, ms
--- then three per session i, from ARGV[3i+1]:
---   SHA-1 (hex) of the value the host read and fingerprinted: not migrated when the value changed since
---   content fingerprint of that value (src/session/fingerprint.ts)
---   lifetime rule in ms: the cookie's originalMaxAge, or the ttl
---
--- Returns one code per session (MigrateResult in src/redis/commands.ts):
---   0  migrated: metadata written with a new version
---   1  skipped: the session has metadata already (or a tombstone)
---   2  skipped: the value is gone (expired or deleted)
---   3  skipped: the value changed since the host read it
--- @include "common"

local now = now_ms()
local wall = wall_time(now, tonumber(ARGV[2]), tonumber(ARGV[3]))
local codes = {}
for i = 1, #KEYS / 2 do
  local value_key, meta_key = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 3 * i + 1
  local code = 0
  if redis.call('EXISTS', meta_key) == 1 then
    code = 1
  else
    local value = redis.call('GET', value_key)
    if not value then
      code = 2
    elseif redis.sha1hex(value) ~= ARGV[a] then
      code = 3
    else
      local x, rule = migrated_life(redis.call('PEXPIRETIME', value_key), tonumber(ARGV[a + 2]), now)
      local version = next_version(false, ARGV[1], wall)
      write_meta(meta_key, false, version, x, nil, rule, ARGV[a + 1], fmt(x), fmt(rule), nil, x)
    end
  end
  codes[i] = code
end
return codes
