-- Claim the oldest pending numbers for the sync run holding the lease, without removing them.
-- KEYS[1] sync lease STRING  KEYS[2] pending ZSET  KEYS[3] watermark HASH  KEYS[4] latest HASH
-- ARGV[1] lease token  ARGV[2] how many
-- Returns false when the lease is not ours, else a flat array of
-- member, score, watermark, latest event JSON per claimed number (oldest first).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local claimed = {}
local rows = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
for i = 1, #rows, 2 do
  local member = rows[i]
  table.insert(claimed, member)
  table.insert(claimed, rows[i + 1])
  table.insert(claimed, redis.call('HGET', KEYS[3], member) or '')
  table.insert(claimed, redis.call('HGET', KEYS[4], member) or '')
end
return claimed
