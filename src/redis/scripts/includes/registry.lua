-- Connection registry helpers (src/registry/), pulled into the registry-*.lua scripts.
--
-- A region's registry lives in three kinds of keys, all in one Redis Cluster slot (with replication on a
-- Cluster, the slot of the outbox the scripts append to: src/registry/keys.ts):
--   leases  ZSET  member "<region>|<pod>", score: the lease's absolute expiry, ms (by the Redis clock of
--                 the region that made it)
--   incs    HASH  "<region>|<pod>" -> the pod's current incarnation ("<15-digit start ms>.<hex>"): a pod
--                 that restarts takes a new one, and every connection of the old one is dead at once
--   user    HASH  per user: "<region>|<pod>|<connection id>" -> "<incarnation>|<session id or ''>"; an
--                 entry applied from another region adds "|<order>" (the event's number, see
--                 registry-apply.lua), and one it unregistered is kept a while as
--                 "<incarnation>||<order>|-<until ms>" so that its register, delivered late, is refused
-- A connection is alive while its pod's lease has not lapsed and its incarnation is the pod's current
-- one (and it is not an unregistered entry). Scripts that read or write a user's hash delete the entries that are not alive (prune on read and
-- on write), so a pod that dies without a word loses its connections within its lease, with no process's
-- help. Region, pod and connection ids hold no '|' (src/registry/ids.ts), so each field parses one way.

-- Removes up to 16 lapsed leases and their incarnations (the lapsed pods' connections are pruned from
-- the users' hashes as they are read or written).
local function reg_sweep(leases, incs, now)
  local gone = redis.call('ZRANGEBYSCORE', leases, '-inf', fmt(now), 'LIMIT', 0, 16)
  for _, member in ipairs(gone) do
    redis.call('ZREM', leases, member)
    redis.call('HDEL', incs, member)
  end
end

-- The current incarnation of `member` when its lease has not lapsed, else false.
local function reg_live_inc(leases, incs, member, now)
  local score = redis.call('ZSCORE', leases, member)
  if not score or tonumber(score) <= now then return false end
  return redis.call('HGET', incs, member) or false
end

-- A user's hash value as its parts: incarnation, session id, order ('' for a local entry) and, for an
-- unregistered entry, the ms until which it is kept (else false).
local function reg_parse(value)
  local inc, sid, order, gone = string.match(value, '^([^|]*)|([^|]*)|?([^|]*)|?(.*)$')
  if not inc then return nil end
  local until_ms = false
  if gone ~= '' then until_ms = tonumber(string.sub(gone, 2)) or 0 end
  return inc, sid, order, until_ms
end

-- Deletes the dead entries of a user's hash; returns the live ones as a flat list
-- { region, pod, connection id, session id, ... }.
local function reg_prune(leases, incs, user, now)
  local all = redis.call('HGETALL', user)
  local live, dead, cache = {}, {}, {}
  for i = 1, #all, 2 do
    local field, value = all[i], all[i + 1]
    local region, pod, conn = string.match(field, '^([^|]+)|([^|]+)|(.+)$')
    local inc, sid, _, until_ms = reg_parse(value)
    local ok, kept = false, false
    if region and inc then
      local member = region .. '|' .. pod
      local current = cache[member]
      if current == nil then
        current = reg_live_inc(leases, incs, member, now)
        cache[member] = current
      end
      ok = current == inc
      -- An unregistered entry is not listed; it stays while its pod lives, for a bounded time.
      if ok and until_ms then ok, kept = false, until_ms > now end
    end
    if kept then
      -- nothing: neither listed nor deleted
    elseif ok then
      live[#live + 1] = region
      live[#live + 1] = pod
      live[#live + 1] = conn
      live[#live + 1] = sid
    else
      dead[#dead + 1] = field
    end
  end
  if #dead > 0 then redis.call('HDEL', user, unpack(dead)) end
  return live
end

-- With replication, the registry scripts take this region's outbox and its counter as their last two
-- KEYS and append what they did as one `registry` envelope each (append_envelope, includes/common.lua),
-- in the same atomic call. Bodies (ids hold no '|'; the origin region is the envelope's):
--   l|<pod>|<inc>|<lease expiry ms>           lease claimed or renewed
--   r|<pod>|<inc>|<user>|<connection>|<sid>   connection registered
--   u|<pod>|<inc>|<user>|<connection>         connection unregistered
--   c|<pod>|<inc>                             the pod closed: its lease ended
local function reg_emit(outbox, counter, region, body)
  if outbox then append_envelope(outbox, counter, region, 'registry', body) end
end
