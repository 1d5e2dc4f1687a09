-- What waits to be applied: pending numbers and those waiting out a retry backoff.
-- KEYS[1] pending ZSET  KEYS[2] deferred ZSET  KEYS[3] retry state HASH
-- Returns {count (a number in both sets counts once), receive time in UTC ms of the longest
-- waiting one (or false), deferred count}. O(deferred): a bounded set of stuck numbers.
local count = redis.call('ZCARD', KEYS[1])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local since = oldest[2] and tonumber(oldest[2]) or nil
local deferred = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, member in ipairs(deferred) do
  if not redis.call('ZSCORE', KEYS[1], member) then
    count = count + 1
  end
  local state = redis.call('HGET', KEYS[3], member)
  local waited = state and tonumber(string.match(state, '^%d+:(%d+):'))
  if waited and (not since or waited < since) then
    since = waited
  end
end
return {count, since and tostring(since) or false, #deferred}
