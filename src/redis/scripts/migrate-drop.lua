--- Deletes old keys of sessions migrate moved into the sharded layout (src/admin/migrate-sharded.ts),
--- each only while it holds the value the host read and moved: a value written since is kept.
---
--- KEYS[i] session i's old value key (`P<sid>`); all in one slot on a Redis Cluster
---
--- ARGV[i] SHA-1 (hex) of the value the host read from KEYS[i]
---
--- Returns one code per key:
---   0  deleted (or gone already)
---   1  kept: it holds another value now
local codes = {}
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value and redis.sha1hex(value) ~= ARGV[i] then
    codes[i] = 1
  else
    if value then redis.call('DEL', KEYS[i]) end
    codes[i] = 0
  end
end
return codes
