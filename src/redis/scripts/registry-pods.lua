--- The live connections of one user, pruning the dead ones (src/registry/registry.ts: podsOf).
---
--- KEYS[1] the registry's leases (ZSET, see includes/registry.lua)
--- KEYS[2] the registry's incarnations (HASH)
--- KEYS[3] the user's connections (HASH)
---
--- No ARGV. Returns { region, pod, connection id, session id or '', ... } for every live connection.
--- Also sweeps a few lapsed leases.
--- @include "common"
--- @include "registry"

local now = now_ms()
reg_sweep(KEYS[1], KEYS[2], now)
return reg_prune(KEYS[1], KEYS[2], KEYS[3], now)
