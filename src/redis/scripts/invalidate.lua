--- Cache invalidation (src/invalidation/): deletes cached keys, and every key of the given tags, in one
--- atomic step, and then, in the same step, appends the invalidation to the outbox (so the other regions
--- get it: at least once, in order, numbered like session changes) and publishes it on the region's
--- pub/sub channel (so every process of the region drops its in-process entries too).
---
--- A tag is a set of full key names kept by tag.lua. Its members are deleted by name from here, so this
--- script runs on a single Redis only: on a Redis Cluster the invalidator appends the event first
--- (append.lua, the outbox's one slot) and then deletes slot by slot (src/invalidation/cluster.ts).
---
--- KEYS[1]              the invalidator's outbox stream (written in mode "send" only; the replication
---                      node's appendKeys(), src/replication/node.ts)
--- KEYS[2]              the outbox's sequence counter (append_envelope in includes/common.lua)
--- KEYS[3 .. 2+ARGV[2]] the tag sets (tag.lua), in the order of the tags in the body
--- KEYS[3+ARGV[2] ..]   the keys to delete
---
--- ARGV[1] mode: "send" (delete, append to the outbox, publish), "local" (delete and publish: no
---         transport), "apply" (an invalidation from another region: delete and publish)
--- ARGV[2] number of tag sets in KEYS
--- ARGV[3] pub/sub channel to publish on ("" publishes nothing)
--- ARGV[4] region of this invalidator (the envelope id of mode "send")
--- ARGV[5] the body: JSON {"k":[keys],"t":[tags]} as the app named them (src/invalidation/codec.ts)
--- ARGV[6] mode "apply": when the origin made it, epoch ms by the origin's Redis clock
--- ARGV[7] mode "apply": the origin region
---
--- Publishes "<origin> <time> <lag ms>\n<body>" (lag 0 for this region's own).
--- Returns {keys deleted (tag members included), envelope id ("" unless mode "send")}.
--- @include "common"

local mode = ARGV[1]
local tags = tonumber(ARGV[2])
local now = now_ms()
local deleted = 0

-- DEL takes many keys at once; unpack has a limit on the stack, so in slices.
local function del_all(names)
  local n = #names
  local i = 1
  while i <= n do
    local j = i + 499
    if j > n then j = n end
    deleted = deleted + redis.call('DEL', unpack(names, i, j))
    i = j + 1
  end
end

-- The event first: a write Redis refuses (out of memory) fails the call before anything was deleted.
local origin = ARGV[4]
local time = now
local id = ''
if mode == 'send' then
  id = append_envelope(KEYS[1], KEYS[2], ARGV[4], 'invalidate', ARGV[5])
elseif mode == 'apply' then
  origin = ARGV[7]
  time = tonumber(ARGV[6])
end

for t = 1, tags do
  local set = KEYS[2 + t]
  del_all(redis.call('SMEMBERS', set))
  redis.call('DEL', set)
end
local direct = {}
for k = 3 + tags, #KEYS do direct[#direct + 1] = KEYS[k] end
del_all(direct)

if ARGV[3] ~= '' then
  local lag = now - time
  if lag < 0 then lag = 0 end
  redis.call('PUBLISH', ARGV[3], origin .. ' ' .. fmt(time) .. ' ' .. fmt(lag) .. '\n' .. ARGV[5])
end
return {deleted, id}
