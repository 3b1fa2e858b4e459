--- Appends one dead letter to a region's dead-letter stream and trims the oldest until the stream holds
--- at most a number of entries and at most a number of bytes. An entry's size is the sum of the byte
--- lengths of its field names and values (Lua's # counts bytes). The running total lives in a counter
--- key beside the stream; it is rebuilt from the stream when missing, and reset when the stream is gone.
--- The newest entry is always kept, whatever its size (its body is shortened by the caller).
---
--- KEYS[1] the dead-letter stream
--- KEYS[2] its byte counter (same slot)
---
--- ARGV[1] most entries kept
--- ARGV[2] most bytes kept
--- ARGV[3..] the entry: field, value, field, value ...
---
--- Returns the number of entries trimmed.

local max_entries = tonumber(ARGV[1])
local max_bytes = tonumber(ARGV[2])

local function size_of(flat, from)
  local size = 0
  for i = from, #flat do size = size + #flat[i] end
  return size
end

local exists = redis.call('EXISTS', KEYS[1]) == 1
if not exists then
  redis.call('DEL', KEYS[2])
elseif redis.call('EXISTS', KEYS[2]) == 0 then
  -- Rebuild the total (the counter was deleted, or the stream predates it), newest first, and drop at
  -- once whatever lies past the bounds: the work is bounded by the bounds, not by the stream.
  local total, count, kept, from = 0, 0, nil, '+'
  local full = false
  while not full do
    local chunk = redis.call('XREVRANGE', KEYS[1], from, '-', 'COUNT', 100)
    if #chunk == 0 then break end
    for _, entry in ipairs(chunk) do
      local size = size_of(entry[2], 1)
      if kept and (count + 1 > max_entries or total + size > max_bytes) then
        redis.call('XTRIM', KEYS[1], 'MINID', kept)
        full = true
        break
      end
      total = total + size
      count = count + 1
      kept = entry[1]
    end
    from = '(' .. chunk[#chunk][1]
  end
  redis.call('SET', KEYS[2], total)
end

local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], '*', unpack(fields))
local total = redis.call('INCRBY', KEYS[2], size_of(ARGV, 3))
local count = redis.call('XLEN', KEYS[1])

local trimmed = 0
while count > 1 and (count > max_entries or total > max_bytes) do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 100)
  if #oldest == 0 then break end
  for _, entry in ipairs(oldest) do
    if count <= 1 or (count <= max_entries and total <= max_bytes) then break end
    redis.call('XDEL', KEYS[1], entry[1])
    total = redis.call('DECRBY', KEYS[2], size_of(entry[2], 1))
    count = count - 1
    trimmed = trimmed + 1
  end
end
if total < 0 then redis.call('SET', KEYS[2], 0) end
return trimmed
