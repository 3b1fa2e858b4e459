--- Takes back sessions migrate-move.lua wrote into the sharded layout whose old key changed before it
--- could be deleted (src/admin/migrate-sharded.ts), so that no stale copy hides the newer value: each
--- session's value and metadata are deleted only while they are exactly what the move wrote (the value
--- it moved, the version it made, no tombstone). A session a store has written since is kept.
---
--- KEYS[2i-1] session i's value key in its shard
--- KEYS[2i]   session i's metadata key in its shard
---
--- ARGV[2i-1] SHA-1 (hex) of the value moved
--- ARGV[2i]   the version migrate-move.lua answered
---
--- Returns one code per session: 0 taken back, 1 kept (changed since the move)
--- @include "common"

local codes = {}
for i = 1, #KEYS / 2 do
  local value_key, meta_key = KEYS[2 * i - 1], KEYS[2 * i]
  local value = redis.call('GET', value_key)
  local meta = read_meta(meta_key)
  if value and redis.sha1hex(value) == ARGV[2 * i - 1] and meta.v == ARGV[2 * i] and not meta.t then
    redis.call('DEL', value_key, meta_key)
    codes[i] = 0
  else
    codes[i] = 1
  end
end
return codes
