-- Put dead-lettered numbers back in the pending set, waiting since now (their lag restarts).
-- KEYS[1] dead letters HASH  KEYS[2] pending ZSET  KEYS[3] watermark HASH
-- ARGV[1] now (UTC ms)  ARGV[2..]: E.164 numbers (none: every dead letter)
-- Returns how many were requeued.
local now_ms = ARGV[1]
local members = {unpack(ARGV, 2)}
if #members == 0 then
  members = redis.call('HKEYS', KEYS[1])
end
local count = 0
for _, member in ipairs(members) do
  if redis.call('HDEL', KEYS[1], member) == 1 then
    local watermark = redis.call('HGET', KEYS[3], member)
    if watermark then
      redis.call('ZADD', KEYS[2], 'NX', now_ms, member)
      count = count + 1
    end
  end
end
return count
