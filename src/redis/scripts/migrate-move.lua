--- The sharded layout's half of migrate (src/admin/migrate-sharded.ts): writes connect-redis sessions,
--- read by the host from their unsharded keys (`P<sid>`, another slot), into their shard's keys
--- (`P{T}<sid>`, `{T}:m:P{T}<sid>`), with the expiry they had and the metadata migrate.lua gives: a new
--- version of this region, the lifetime rule (the rule given, or the remaining lifetime when that is
--- longer) and the content fingerprint the host computed from the value it read, through write_meta. A
--- session the sharded layout holds already (a value, metadata or a tombstone) is never overwritten:
--- geosession's own data wins. Nothing is appended to the outbox, as with migrate.lua. The host deletes
--- the old key afterwards (migrate-drop.lua). All keys of one call in one slot (one shard).
---
--- KEYS[2i-1] session i's value key in its shard
--- KEYS[2i]   session i's metadata key in its shard
---
--- ARGV[1] region id (for the versions)
--- ARGV[2] the host's clock, epoch ms (may count towards a version's wall time, see common.lua)
--- ARGV[3] largest clock skew between regions, ms
--- then four per session i, from ARGV[4i]:
---   the value as read from its old key
---   the old key's absolute expiry, epoch ms (its PEXPIRETIME), or 0 for never
---   content fingerprint of the value (src/session/fingerprint.ts)
---   lifetime rule in ms: the cookie's originalMaxAge, or the ttl
---
--- Returns one answer per session (MoveResult in src/redis/state-commands.ts):
---   the new version (a string): moved
---   1  skipped: the shard's keys hold the session already (a value, metadata or a tombstone)
---   2  skipped: the expiry has passed
--- @include "common"

local now = now_ms()
local wall = wall_time(now, tonumber(ARGV[2]), tonumber(ARGV[3]))
local answers = {}
for i = 1, #KEYS / 2 do
  local value_key, meta_key = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 4 * i
  local x = tonumber(ARGV[a + 1])
  local rule = tonumber(ARGV[a + 3])
  if redis.call('EXISTS', meta_key, value_key) > 0 then
    answers[i] = 1
  elseif x > 0 and x <= now then
    answers[i] = 2
  else
    x, rule = migrated_life(x, rule, now)
    local sx = fmt(x)
    store_value(value_key, ARGV[a], x, sx)
    local version = next_version(false, ARGV[1], wall)
    write_meta(meta_key, false, version, x, nil, rule, ARGV[a + 2], sx, fmt(rule), nil, x)
    answers[i] = version
  end
end
return answers
