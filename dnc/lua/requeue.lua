-- Put dead-lettered numbers back in the pending set, waiting since now (their lag restarts).
-- KEYS[1] dead letters HASH  KEYS[2] pending ZSET  KEYS[3] legacy state HASH (the states are in buckets
-- beside it: number_hash.lua)
-- ARGV[1] now (UTC ms)  ARGV[2..]: E.164 numbers, at most a few hundred a call (the caller
-- chunks: one call holds Redis, and Lua unpacks a bounded number of arguments)
-- Returns how many were requeued.
local now_ms = ARGV[1]
local members = {}
for i = 2, #ARGV do
  members[#members + 1] = ARGV[i]
end
local STATES = number_hash(KEYS[3], 'state', later_state)
local count = 0
for _, member in ipairs(members) do
  if redis.call('HDEL', KEYS[1], member) == 1 then
    local watermark = nh_get(STATES, member)
    if watermark then
      redis.call('ZADD', KEYS[2], 'NX', now_ms, member)
      count = count + 1
    end
  end
end
return count
