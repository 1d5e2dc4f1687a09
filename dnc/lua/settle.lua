-- Settle claimed numbers: each leaves the pending set only if its watermark is still the one
-- that was claimed (compare-and-delete), so a newer event that arrived during the push stays
-- pending. With a reason, the number is also written to the dead letters.
-- KEYS[1] pending ZSET  KEYS[2] watermark HASH  KEYS[3] dead letters HASH
-- ARGV: triples of E.164, claimed watermark, dead-letter JSON ('' to acknowledge only)
-- Returns, per number, 1 when settled and 0 when it changed meanwhile (left pending).
local settled = {}
for i = 1, #ARGV, 3 do
  local member = ARGV[i]
  if redis.call('HGET', KEYS[2], member) == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], member)
    if ARGV[i + 2] ~= '' then
      redis.call('HSET', KEYS[3], member, ARGV[i + 2])
    else
      redis.call('HDEL', KEYS[3], member)  -- applied now: an older dead letter is moot
    end
    table.insert(settled, 1)
  else
    table.insert(settled, 0)
  end
end
return settled
