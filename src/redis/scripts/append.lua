--- Appends envelopes of one kind to a region's outbox, each numbered by the outbox's sequence counter
--- (next_seq in includes/common.lua), in one atomic call (src/replication/node.ts, `append`).
---
--- KEYS[1] this region's outbox stream
--- KEYS[2] the outbox's sequence counter (the outbox's key and `:seq`)
---
--- ARGV[1] region id (for the envelope ids)
--- ARGV[2] kind (1 to 32 of a-z, 0-9, -; checked by the caller)
--- ARGV[3..] the bodies, one envelope each, in order
---
--- Returns the envelope ids, "<region>:<epoch>.<n>", in the order of the bodies.
--- @include "common"

local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = append_envelope(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[i])
end
return ids
