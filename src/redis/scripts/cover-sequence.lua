--- The handover of a resync: records in this region's sequence state (see track.lua) that the numbered
--- changes of one origin up to `low` are handled, because a copy of a region that held them all was
--- merged here after they were made. Numbers at or below it that are still on their way are then dropped
--- as duplicates (the copy holds their effect), and they are never reported as a gap. Ranges the copied
--- region itself gave up as gaps (`gaps`) stay gaps here: the copy does not hold them.
---
--- KEYS[1] this region's sequence state (hash, one field per origin)
--- KEYS[2] numbers of this origin handled out of order (sorted set, same slot)
---
--- ARGV[1] origin region
--- ARGV[2] epoch of the origin's numbering (16 digits)
--- ARGV[3] low: every number of that epoch up to it is covered
--- ARGV[4] the copied region's gaps at or below low, "a-b,c-d" ("" when none)
---
--- Returns the status: "set" (no state, or an older epoch, here: now this epoch up to low), "moved" (the
--- same epoch, low moved up), "behind" (this region was past low already; nothing changed), or
--- "old-epoch" (this region follows a later epoch of the origin; nothing changed).
--- @include "common"

local MAX_GAPS = 16
local origin = ARGV[1]
local epoch = ARGV[2]
local low = tonumber(ARGV[3])

local function ranges(text)
  local out = {}
  for a, b in string.gmatch(text or '', '(%d+)-(%d+)') do out[#out + 1] = {tonumber(a), tonumber(b)} end
  return out
end

local function render(list)
  while #list > MAX_GAPS do table.remove(list, 1) end
  local parts = {}
  for i, r in ipairs(list) do parts[i] = fmt(r[1]) .. '-' .. fmt(r[2]) end
  return table.concat(parts, ',')
end

local theirs = {}
for _, r in ipairs(ranges(ARGV[4])) do
  if r[1] <= low then
    if r[2] > low then r[2] = low end
    theirs[#theirs + 1] = r
  end
end

local raw = redis.call('HGET', KEYS[1], origin)
local e, l, t, s, h, g
if raw then e, l, t, s, h, g = string.match(raw, '^(%d+)|(%d+)|(%d+)|(%d*)|(%d+)|([%d,%-]*)$') end
if e and epoch < e then return 'old-epoch' end
if not e or epoch > e then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], origin, epoch .. '|' .. fmt(low) .. '|' .. fmt(low) .. '||0|' .. render(theirs))
  return 'set'
end

local low0, top, held = tonumber(l), tonumber(t), tonumber(h)
if low <= low0 then return 'behind' end

-- Gaps: ours above low stay; below it the copy filled them, but for the copied region's own.
local gaps = {}
for _, r in ipairs(theirs) do gaps[#gaps + 1] = r end
for _, r in ipairs(ranges(g)) do
  if r[2] > low then
    if r[1] <= low then r[1] = low + 1 end
    gaps[#gaps + 1] = r
  end
end
table.sort(gaps, function(a, b) return a[1] < b[1] end)

held = held - redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', fmt(low))
if held < 0 then held = 0 end
while held > 0 do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if tonumber(first) ~= low + 1 then break end
  redis.call('ZPOPMIN', KEYS[2])
  held = held - 1
  low = low + 1
end
if low > top then top = low end
local since = s
if low >= top then since = '' end
redis.call('HSET', KEYS[1], origin, epoch .. '|' .. fmt(low) .. '|' .. fmt(top) .. '|' .. since .. '|' ..
  fmt(held) .. '|' .. render(gaps))
return 'moved'
