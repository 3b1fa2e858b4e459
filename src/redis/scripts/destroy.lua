--- Ends a session for good: deletes the value and leaves a tombstone that outlives it, so that no later
--- or stale write (a slow request, a delayed replica event) can bring the session back.
---
--- The tombstone lives at least its own lifetime (ARGV[1]), at least as long as any expiry known here
--- for the id, and at least as long as the credential that could bring the session back (ARGV[6]: a
--- token's remaining validity).
---
--- A session id born in this region (ARGV[7] = "1") of which this region knows nothing (no metadata, no
--- value) was never saved anywhere (express-session and fastify hand out an id only with a session saved
--- in the region that made it): ending it costs one local tombstone living ARGV[8] ms (as long as a
--- request can be in flight, so a slow save after the logout is still refused) and no replicated event.
---
--- KEYS[1] session value key
--- KEYS[2] session metadata (same slot)
--- KEYS[3] (optional) this region's outbox stream
--- KEYS[4] (with KEYS[3]) the outbox's sequence counter (next_seq in includes/common.lua)
--- KEYS[5] (optional, with KEYS[3]) this region's digest key (digests in includes/common.lua); its
---         window hashes are it and `:<window>` (same slot)
---
--- ARGV[1] shortest tombstone lifetime in ms (twice the stale-event horizon: the digests count a
---         tombstone in the window of its version's time plus half of it)
--- ARGV[2] region id
--- ARGV[3] session id
--- ARGV[4] the host's clock, epoch ms (see wall_time in common.lua)
--- ARGV[5] largest clock skew between regions, ms
--- ARGV[6] (optional) remaining lifetime in ms of the credential the session came from ("0" or absent:
---         none); the tombstone lives at least that long
--- ARGV[7] (optional) "1" when the id was born in this region
--- ARGV[8] (optional) lifetime in ms of the local tombstone of a never-saved id (with ARGV[7])
--- ARGV[9] (optional) the store's revocation channel: a session ended here (code 0, and it was no
---         tombstone before) is published there (publish_revoked in common.lua); absent or "": nothing
--- ARGV[10] (optional) the reason ("logout" when absent or ""; "logout-everywhere", "revoked-before"):
---         published, and carried by the replicated event (in its fingerprint field) to every region
--- ARGV[11] (optional, with such a reason) the user id, published and carried the same way
--- ARGV[12] (optional) the region published as where the session was ended, when it is not this one
---         (a logout everywhere asked in another region, whose mark ends the session here)
---
--- Returns {code, version} (DestroyResult in src/redis/commands.ts):
---   0  destroyed (a tombstone was written even when no session existed: the session may live in a
---      region whose write has not arrived yet)
---   1  already destroyed; nothing changed
---   2  never saved: a local tombstone was written, nothing replicated
--- @include "common"

if KEYS[3] then
  digest_key = KEYS[5]
  digest_horizon = tonumber(ARGV[1]) / 2
end
local meta = read_meta(KEYS[2])
local now = now_ms()
local credential = tonumber(ARGV[6] or '0') or 0
-- The value key's own expiry counts too: a session written by connect-redis has no metadata, and
-- touches of a store that does not replicate move only the value key.
local expires = redis.call('PEXPIRETIME', KEYS[1])

-- A local tombstone is marked by r = 0 (a replicated one has no r); a remote event that reaches it
-- rewrites it without the mark.
if ARGV[7] == '1' and expires == -2 and (meta.x == nil or (meta.t and meta.r == 0)) then
  local until_ms = now + tonumber(ARGV[8])
  if credential > 0 and now + credential > until_ms then until_ms = now + credential end
  if meta.x and meta.x > until_ms then until_ms = meta.x end
  local version = meta.v or next_version(nil, ARGV[2], wall_time(now, tonumber(ARGV[4]), tonumber(ARGV[5])))
  write_meta(KEYS[2], true, version, until_ms, 0, nil, nil)
  return {2, version}
end

-- The tombstone lives at least its own lifetime and at least as long as any expiry known for the id.
local until_ms = now + tonumber(ARGV[1])
if credential > 0 and now + credential > until_ms then until_ms = now + credential end
if meta.x and meta.x ~= 0 and meta.x > until_ms then until_ms = meta.x end
if expires > until_ms then until_ms = expires end
-- The metadata key lives as long as the latest expiry seen for the id, older versions' too.
local keep = redis.call('PEXPIRETIME', KEYS[2])
if keep > until_ms then until_ms = keep end

if meta.t then
  redis.call('DEL', KEYS[1])
  -- Destroyed already. Told of a credential (the token middleware, on every request of a revoked token),
  -- only a credential that outlives the tombstone lengthens it: nothing is written otherwise.
  local need = until_ms
  if credential > 0 then
    need = now + credential
    if expires > need then need = expires end
  end
  if meta.x and meta.x >= need then return {1, meta.v or ''} end
end

local prev_v = expiry_version(meta)
if meta.v and vcmp(meta.v, prev_v) > 0 then prev_v = meta.v end
local version = next_version(prev_v, ARGV[2], wall_time(now, tonumber(ARGV[4]), tonumber(ARGV[5])))
redis.call('DEL', KEYS[1])
local sx = fmt(until_ms)
write_meta(KEYS[2], true, version, until_ms, nil, nil, nil, sx)
local reason = ARGV[10]
local user = nil
if reason ~= 'logout-everywhere' and reason ~= 'revoked-before' then reason = 'logout' end
if reason ~= 'logout' and ARGV[11] and ARGV[11] ~= '' then user = ARGV[11] end
if KEYS[3] then
  local carried = ''
  if reason ~= 'logout' then carried = reason end
  if user then carried = carried .. ' ' .. user end
  append_event(KEYS[3], 'd', version, sx, '', carried, ARGV[3])
end
local origin = ARGV[2]
if ARGV[12] and ARGV[12] ~= '' then origin = ARGV[12] end
if not meta.t then publish_revoked(ARGV[9], KEYS[1], origin, reason, user) end
return {0, version}
