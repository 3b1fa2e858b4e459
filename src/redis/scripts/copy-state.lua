--- Merges the state of a batch of sessions read from another region (read-state.lua) into this region,
--- by the applier's own join (apply.lua), part by part:
---   data     the value of the highest version wins, with its fingerprint, lifetime rule and the expiry
---            written with it (metadata w, so `get` still reports the right cookie.expires)
---   expiry   travels with the version its metadata says it belongs to (e, else v): the higher wins,
---            the same version merges to the later expiry (0 = never); so does what the other regions
---            were told (r)
---   logout   a tombstone on either side absorbs the other, keeping the highest version and the latest
---            expiry seen; the metadata key lives as long as the longer of the two
--- so a copy is idempotent and order-independent against live replication racing it, and a copy can
--- never revive an id logged out here. Nothing is appended to the outbox: the state came from a region
--- that has it already.
---
--- Unlike apply.lua there is no stale-event horizon: that horizon protects against an old *change*
--- arriving after the tombstone it should meet was forgotten. A copy carries another region's *current*
--- state, which already went through that region's rules: a live session there is live now, whatever
--- the age of its version (sessions may outlive the horizon), and its tombstone, if any, comes with it.
--- The clock-skew check is kept: a version too far ahead of this Redis's clock is refused here as it
--- would be when replicated, so a copy and replication agree on what they accept.
---
--- ARGV[1] largest clock skew between regions, ms
--- For the i-th session (i = 1..#KEYS/2), at a = 1 + 5(i-1):
--- KEYS[2i-1] session value key
--- KEYS[2i]   session metadata (same slot)
--- ARGV[a+1]  "1" when the other region holds a value, else "0"
--- ARGV[a+2]  the value ("" when none)
--- ARGV[a+3]  the other region's metadata text ("" when none: a bare value without metadata)
--- ARGV[a+4]  the other region's metadata key's PEXPIRETIME (-1 never, -2 absent)
--- ARGV[a+5]  the other region's value key's PEXPIRETIME (-1 never, -2 absent)
--- KEYS[#KEYS] when #KEYS is odd: this region's digest key (digests in includes/common.lua); ARGV[#ARGV]
---            is then the stale-event horizon in ms (a tombstone's digest window depends on it)
--- (Under Redis Cluster a batch must hold one slot's sessions only.)
---
--- Returns one code per session (CopyResult in src/redis/commands.ts):
---   0  changed here
---   1  nothing changed (this region had it already, or newer)
---   2  nothing to copy: expired, or absent there
---  -1  absorbed by a tombstone here (the tombstone kept the highest version and expiry)
---   4  refused: a version too far ahead of this region's clock
---   6  refused: metadata that does not parse
--- @include "common"

local function keep_meta_until(mkey, keep)
  if keep > 0 then redis.call('PEXPIREAT', mkey, fmt(keep), 'GT') end
end

local function copy_bare(vkey, mkey, has_value, data, vexp, now)
  if has_value ~= '1' or (vexp >= 0 and vexp <= now) then return 2 end
  if redis.call('EXISTS', mkey) == 1 or redis.call('EXISTS', vkey) == 1 then return 1 end
  if vexp < 0 then
    redis.call('SET', vkey, data)
  else
    redis.call('SET', vkey, data, 'PXAT', fmt(vexp))
  end
  return 0
end

local function copy_tombstone(vkey, mkey, s, t, mkeep, now)
  local v = expiry_version(t)
  if s.v and (not v or s.v > v) then v = s.v end
  local until_ms = s.x
  if mkeep > until_ms then until_ms = mkeep end
  if t.x and t.x ~= 0 and t.x > until_ms then until_ms = t.x end
  local keep = redis.call('PEXPIRETIME', mkey)
  if keep > until_ms then until_ms = keep end
  if t.t and until_ms == t.x and v == t.v and t.r == nil then return 1 end
  if until_ms <= now then
    redis.call('DEL', vkey)
    delete_meta(mkey)
    return 2
  end
  redis.call('DEL', vkey)
  write_meta(mkey, true, v, until_ms, nil, nil, nil)
  return 0
end

local function copy_one(vkey, mkey, has_value, data, mtext, mkeep, vexp, now, skew)
  if mtext == '' then return copy_bare(vkey, mkey, has_value, data, vexp, now) end
  local s = parse_meta(mtext)
  if s.t == nil or s.x == nil then return 6 end
  if s.v and not version_ms(s.v) then return 6 end
  if s.e and not version_ms(s.e) then return 6 end
  if (s.v and version_ms(s.v) > now + skew) or (s.e and version_ms(s.e) > now + skew) then return 4 end

  local t = read_meta(mkey)
  if t.t == nil and (s.x == 0 or s.x > now or s.t) then
    -- Nothing of it here (a new or emptied region): the join is the other region's state, as it is.
    if s.t or has_value ~= '1' then redis.call('DEL', vkey) else store_value(vkey, data, s.x, fmt(s.x)) end
    local keep = mkeep
    if s.x ~= 0 and s.x > keep then keep = s.x end
    if keep <= now and keep ~= -1 then return 2 end
    local old
    if keep == -1 or (s.x == 0 and not s.t) then
      old = redis.call('SET', mkey, mtext, 'GET')
    else
      old = redis.call('SET', mkey, mtext, 'PXAT', fmt(keep), 'GET')
    end
    if digest_key then digest_update(mkey, old, mtext) end
    return 0
  end
  if s.t then return copy_tombstone(vkey, mkey, s, t, mkeep, now) end

  if t.t then
    -- Logout is final here: the tombstone only learns the highest version and the latest expiry.
    local v = t.v
    local sv = expiry_version(s)
    if sv and (not v or sv > v) then v = sv end
    local x = t.x
    if s.x ~= 0 and t.x and s.x > t.x then x = s.x end
    if v ~= t.v or x ~= t.x or t.r ~= nil then write_meta(mkey, true, v, x, nil, nil, nil) end
    keep_meta_until(mkey, mkeep)
    return -1
  end

  -- Data: the higher version's, with what belongs to it.
  local theirs = s.v and (not t.v or s.v > t.v)
  local dv, dl, df, dw = t.v, t.l, t.f, t.w
  if theirs then dv, dl, df, dw = s.v, s.l, s.f, s.w end

  -- Expiry: the higher expiry version's; the same version merges to the later.
  local sev, tev = expiry_version(s), expiry_version(t)
  local x, r, ev
  local c = vcmp(sev, tev)
  if t.x == nil or c > 0 then
    x, r, ev = s.x, s.r, sev
  elseif c < 0 then
    x, r, ev = t.x, t.r, tev
  else
    x, r, ev = later(t.x, s.x), later(t.r, s.r), sev
  end
  local e = false
  if ev and vcmp(ev, dv) > 0 then e = ev end

  if not theirs and x == t.x and r == t.r and e == t.e then
    keep_meta_until(mkey, mkeep)
    return 1
  end
  if x ~= 0 and x <= now then
    -- The newest version's expiry has passed: the value goes, the metadata remembers that version.
    redis.call('DEL', vkey)
    write_meta(mkey, false, dv, x, r, dl, df, nil, nil, e, dw)
    keep_meta_until(mkey, mkeep)
    return 2
  end
  local sx = fmt(x)
  if theirs then
    if has_value == '1' then store_value(vkey, data, x, sx) else redis.call('DEL', vkey) end
  elseif x ~= t.x and redis.call('EXISTS', vkey) == 1 then
    expire_at(vkey, x)
  end
  write_meta(mkey, false, dv, x, r, dl, df, sx, nil, e, dw)
  keep_meta_until(mkey, mkeep)
  return 0
end

local now = now_ms()
local skew = tonumber(ARGV[1])
local codes = {}
if #KEYS % 2 == 1 then
  digest_key = KEYS[#KEYS]
  digest_horizon = tonumber(ARGV[#ARGV])
end
for i = 1, math.floor(#KEYS / 2) do
  local a = 1 + (i - 1) * 5
  codes[i] = copy_one(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
    tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), now, skew)
end
return codes
