--- Cache invalidation (src/invalidation/): adds keys to a tag, so that invalidating the tag deletes them
--- (invalidate.lua). The tag set keeps full key names (what reached the script through KEYS, with the
--- client's key prefix), and lives as long as the longest-lived of its members: a member without an
--- expiry keeps it forever, until the tag is invalidated. Members that expired stay listed (deleting them
--- later costs nothing), and the set goes with the last of them.
---
--- KEYS[1]     the tag set
--- KEYS[2 ..]  the keys to add to it (they need not exist yet)
---
--- ARGV[1] shortest lifetime of the tag set, ms: a tag of keys not written yet (or without an expiry
---         known) lives at least this long
--- ARGV[2] Redis Cluster only, where the keys may live in other slots than the tag set: the longest
---         PEXPIRETIME of the keys, read by the caller (-1: one never expires); the keys' full names
---         (the client's key prefix included) are then ARGV[3 ..], and KEYS holds the tag set alone
---
--- Returns the number of keys added that were not in the tag yet.
local added = 0
local set = KEYS[1]
-- -2: a new tag, -1: one that never expires, else when it expires.
local before = redis.call('PEXPIRETIME', set)
local names = {}
local known = ARGV[2]
if known then
  for a = 3, #ARGV do names[#names + 1] = ARGV[a] end
else
  for k = 2, #KEYS do names[#names + 1] = KEYS[k] end
end
local i = 1
while i <= #names do
  local j = i + 499
  if j > #names then j = #names end
  added = added + redis.call('SADD', set, unpack(names, i, j))
  i = j + 1
end

-- The set lives as long as its longest-lived member (-1: a member that never expires), and at least
-- ARGV[1] from now.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000.0 + math.floor(tonumber(t[2]) / 1000)
local keep = now + tonumber(ARGV[1])
local forever = false
local function expiring_at(at)
  if at == -1 then
    forever = true
  elseif at > keep then
    keep = at
  end
end
if known then
  expiring_at(tonumber(known))
else
  for _, name in ipairs(names) do
    expiring_at(redis.call('PEXPIRETIME', name))
    if forever then break end
  end
end
if forever or before == -1 then
  -- A member that never expires, or a tag that never expired already: keep it.
  redis.call('PERSIST', set)
elseif before < keep then
  redis.call('PEXPIREAT', set, string.format('%.0f', keep))
end
return added
