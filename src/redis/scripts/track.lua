--- Records which numbered envelopes of one origin (and one epoch) this region has handled, and finds
--- gaps: numbers that never came although later ones did. Run after a batch was applied, so a batch that
--- fails and comes again is recorded only once it went through. Shared by every process of the region.
---
--- State, one hash field per origin (KEYS[1]): "epoch|low|top|since|held|gaps"
---   low    every number up to it was handled (or given up as a gap)
---   top    the highest number known to exist (handled, or announced by a heartbeat)
---   since  when numbers between low and top started missing (Redis ms), "" when none are
---   held   how many numbers above low+1 were handled out of order; they wait in the sorted set KEYS[2]
---   gaps   ranges given up as gaps and not yet filled, "a-b,c-d" (at most 16): a number that arrives
---          late inside one is applied and counted as late, and when every gap is filled the origin is
---          whole again ("healed")
--- A later epoch (the origin's Redis lost its outbox and counts from 1 again) starts over from 0; numbers
--- of an earlier epoch are not tracked. The first contact with an origin counts from 1 as well.
---
--- KEYS[1] this region's sequence state (hash)
--- KEYS[2] numbers of this origin handled out of order (sorted set, same slot)
---
--- ARGV[1] origin region
--- ARGV[2] epoch (16 digits)
--- ARGV[3] grace, ms: numbers missing this long are a gap
--- ARGV[4] highest number a heartbeat announced, "" when none
--- ARGV[5..] numbers handled
---
--- Returns {duplicates, late, low, gap_from, gap_to, healed, status, gaps}: gap_from..gap_to is the
--- range given up in this call (0, 0 when none); healed is 1 when the last open gap was filled; status
--- is "ok", "first", "new-epoch" or "old-epoch".
--- @include "common"

local MAX_GAPS = 16
local now = now_ms()
local origin = ARGV[1]
local epoch = ARGV[2]
local grace = tonumber(ARGV[3])
local announced = tonumber(ARGV[4])
local numbers = {}
for i = 5, #ARGV do numbers[#numbers + 1] = tonumber(ARGV[i]) end

local status = 'ok'
local low, top, since, held, gaps
local raw = redis.call('HGET', KEYS[1], origin)
local e, l, t, s, h, g
if raw then e, l, t, s, h, g = string.match(raw, '^(%d+)|(%d+)|(%d+)|(%d*)|(%d+)|([%d,%-]*)$') end
if e and epoch < e then
  return {0, 0, l, '0', '0', 0, 'old-epoch', g}
end
if e and epoch == e then
  low, top, held = tonumber(l), tonumber(t), tonumber(h)
  since = tonumber(s)
  gaps = {}
  for a, b in string.gmatch(g, '(%d+)-(%d+)') do gaps[#gaps + 1] = {tonumber(a), tonumber(b)} end
else
  -- A new epoch, or the first contact: both count from 1, so an origin's first changes that never came
  -- (a broker's retention, a purge, a stream trimmed before this region had a reader) are a gap too.
  if e then
    status = 'new-epoch'
    redis.call('DEL', KEYS[2])
  else
    status = 'first'
  end
  low, top, held, since, gaps = 0, 0, 0, nil, {}
end
local had_gaps = #gaps > 0

-- A number at or below low: late inside a gap given up earlier (fills it), or a duplicate.
local function fill(n)
  for i, r in ipairs(gaps) do
    if n >= r[1] and n <= r[2] then
      if r[1] == r[2] then
        table.remove(gaps, i)
      elseif n == r[1] then
        r[1] = n + 1
      elseif n == r[2] then
        r[2] = n - 1
      else
        table.insert(gaps, i + 1, {n + 1, r[2]})
        r[2] = n - 1
      end
      return true
    end
  end
  return false
end

local duplicates, late = 0, 0
for _, n in ipairs(numbers) do
  if n <= low then
    if fill(n) then late = late + 1 else duplicates = duplicates + 1 end
  elseif n == low + 1 and held == 0 then
    low = n
  elseif redis.call('ZADD', KEYS[2], 'NX', n, n) == 1 then
    held = held + 1
  else
    duplicates = duplicates + 1
  end
  if n > top then top = n end
end
if announced and announced > top then top = announced end

local function advance()
  while held > 0 do
    local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
    if tonumber(first) ~= low + 1 then return end
    redis.call('ZPOPMIN', KEYS[2])
    held = held - 1
    low = low + 1
  end
end
advance()

local gap_from, gap_to = 0, 0
if low < top then
  if not since then since = now end
  if now - since >= grace then
    local next_held = top + 1
    if held > 0 then next_held = tonumber(redis.call('ZRANGE', KEYS[2], 0, 0)[1]) end
    gap_from, gap_to = low + 1, next_held - 1
    gaps[#gaps + 1] = {gap_from, gap_to}
    if #gaps > MAX_GAPS then table.remove(gaps, 1) end
    low = gap_to
    advance()
    if low < top then since = now else since = nil end
  end
else
  since = nil
end

local parts = {}
for i, r in ipairs(gaps) do parts[i] = fmt(r[1]) .. '-' .. fmt(r[2]) end
local gap_text = table.concat(parts, ',')
local healed = 0
if had_gaps and #gaps == 0 then healed = 1 end
redis.call('HSET', KEYS[1], origin, epoch .. '|' .. fmt(low) .. '|' .. fmt(top) .. '|' ..
  (since and fmt(since) or '') .. '|' .. fmt(held) .. '|' .. gap_text)
return {duplicates, late, fmt(low), fmt(gap_from), fmt(gap_to), healed, status, gap_text}
