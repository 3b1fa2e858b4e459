--- Reads the whole state of a batch of sessions at once (one atomic call, so a session's value and
--- metadata are read at the same moment even while the region takes writes): what a copy of a region
--- (src/admin/session-state.ts) needs to rebuild the session elsewhere.
---
--- KEYS[2i-1] session value key of the i-th session
--- KEYS[2i]   its metadata key (same slot)
--- ARGV[1]    "all": every session; "bare": only values without metadata (written by connect-redis or
---            before geosession), the others answer as absent
---
--- Returns four entries per session, in KEYS order:
---   the value (nil when absent), the metadata text (nil when absent),
---   the metadata key's PEXPIRETIME (-1 never, -2 absent), the value key's PEXPIRETIME (likewise; -2
---   when the metadata exists: the value then expires at the metadata's x)
--- (Under Redis Cluster a batch must hold one slot's sessions only.)

local bare_only = ARGV[1] == 'bare'
local out = {}
for i = 1, #KEYS / 2 do
  local vkey = KEYS[2 * i - 1]
  local mkey = KEYS[2 * i]
  local meta = redis.call('GET', mkey)
  if bare_only and meta then
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = -2
    out[#out + 1] = -2
  else
    out[#out + 1] = redis.call('GET', vkey)
    out[#out + 1] = meta
    if meta then
      -- A value with metadata expires when the metadata says (x): its own expiry is not needed.
      out[#out + 1] = redis.call('PEXPIRETIME', mkey)
      out[#out + 1] = -2
    else
      out[#out + 1] = -2
      out[#out + 1] = redis.call('PEXPIRETIME', vkey)
    end
  end
end
return out
