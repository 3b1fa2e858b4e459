--- Sets a user's "revoked before" mark (logout everywhere): every session of the user created before it
--- is refused by set.lua in this region and, once the mark is replicated, by apply.lua in every other
--- region. A mark never moves back: a later mark wins, an earlier one changes nothing. The mark lives as
--- long as a session created before it could still live or arrive: at least ARGV[4] ms, and at least the
--- stale-event horizon past every expiry in the user's index (includes/user-index.lua).
---
--- KEYS[1] the user's index (`{P|user}:<uid>`; with outbox shards one shard's, `P{T}|user:<uid>`: the
---         store runs this once per shard, src/session/users.ts)
--- KEYS[2] (optional) this region's outbox stream (the shard's, same slot): the mark is appended to it
---         (op "r", numbered like session changes, so a lost mark is a detected gap)
--- KEYS[3] (with KEYS[2]) the outbox's sequence counter
---
--- ARGV[1] region id
--- ARGV[2] user id
--- ARGV[3] the session id kept (`except`), "" for none
--- ARGV[4] shortest lifetime of the mark in ms (the longest session lifetime plus the horizon)
--- ARGV[5] the host's clock, epoch ms (see wall_time in common.lua)
--- ARGV[6] largest clock skew between regions, ms
--- ARGV[7] stale-event horizon, ms
---
--- Returns {mark ms, mark expiry ms} as text.
--- @include "common"
--- @include "user-index"

local ukey = KEYS[1]
local now = now_ms()
local wall = wall_time(now, tonumber(ARGV[5]), tonumber(ARGV[6]))
local horizon = tonumber(ARGV[7])
local till = now + tonumber(ARGV[4])
local all = redis.call('HGETALL', ukey)
for i = 1, #all, 2 do
  if all[i] ~= USER_MARK then
    local x = tonumber(string.match(all[i + 1], '|(%d+)$'))
    if x and x ~= 0 and x + horizon > till then till = x + horizon end
  end
end
local at = math.floor(wall)
local old_at, old_till = user_mark(ukey)
if old_at and old_at > at then at = old_at end
if old_till and old_till > till then till = old_till end
local sat, still = fmt(at), fmt(till)
redis.call('HSET', ukey, USER_MARK, sat .. '|' .. still .. '|' .. ARGV[3])
user_tidy(ukey, now)
if KEYS[2] then
  local version = next_version(nil, ARGV[1], at)
  local head = next_seq(KEYS[3]) .. '|r|' .. version .. '|' .. still .. '||' .. ARGV[3] .. '|' .. ARGV[2]
  redis.call('XADD', KEYS[2], '*', 'q', head)
end
return {sat, still}
