-- Put dead-lettered numbers back in the pending set at their latest event time.
-- KEYS[1] dead letters HASH  KEYS[2] pending ZSET  KEYS[3] watermark HASH
-- ARGV: E.164 numbers (none: every dead letter)
-- Returns how many were requeued.
local members = ARGV
if #members == 0 then
  members = redis.call('HKEYS', KEYS[1])
end
local count = 0
for _, member in ipairs(members) do
  if redis.call('HDEL', KEYS[1], member) == 1 then
    local watermark = redis.call('HGET', KEYS[3], member)
    if watermark then
      local sep = string.find(watermark, ':', 1, true)
      redis.call('ZADD', KEYS[2], string.sub(watermark, 1, sep - 1), member)
      count = count + 1
    end
  end
end
return count
