-- Add ownership-ledger entries for numbers the ledger does not name yet (dnc-sync reconcile
-- --adopt): an entry already there, in its bucket or the legacy flat hash, is kept as it is.
-- KEYS[1] legacy owned HASH (the ledger is in buckets beside it: number_hash.lua)
-- ARGV: pairs of E.164 number, compact entry (dnc.ownership.OwnedRecord.encode)
-- Returns how many entries were added.
local OWNED = number_hash(KEYS[1], 'owned')
local added = 0
for i = 1, #ARGV, 2 do
  if not nh_get(OWNED, ARGV[i]) then
    nh_set(OWNED, ARGV[i], ARGV[i + 1])
    added = added + 1
  end
end
return added
