-- Claim the oldest pending numbers for the sync run holding the lease, without removing them.
-- Numbers waiting out a retry backoff whose time has come are first put back in the pending
-- set under the time they have waited since (so they come first again).
-- KEYS[1] sync lease STRING  KEYS[2] pending ZSET  KEYS[3] legacy state HASH (the states are
-- in buckets beside it: number_hash.lua, dnc.state)  KEYS[4] latest HASH (event JSON of states written before they were compact)
-- KEYS[5] deferred ZSET (E.164 -> not-before ms)  KEYS[6] retry state HASH (E.164 ->
-- "<attempts>:<waiting since ms>:<first failure ms>")
-- ARGV[1] lease token  ARGV[2] how many  ARGV[3] now (UTC ms)
-- Returns false when the lease is not ours, else a flat array of
-- member, score, state value, legacy event JSON ('' for a compact state: dnc.state.read_event)
-- per claimed number (oldest first).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local limit = tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[3], 'LIMIT', 0, limit)
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[5], member)
  local state = redis.call('HGET', KEYS[6], member)
  local since = state and string.match(state, '^%d+:(%d+):') or ARGV[3]
  redis.call('ZADD', KEYS[2], 'NX', since, member)
end
local STATES = number_hash(KEYS[3], 'state', later_state)
local claimed = {}
local rows = redis.call('ZRANGE', KEYS[2], 0, limit - 1, 'WITHSCORES')
for i = 1, #rows, 2 do
  local member = rows[i]
  table.insert(claimed, member)
  table.insert(claimed, rows[i + 1])
  table.insert(claimed, nh_get(STATES, member) or '')
  table.insert(claimed, redis.call('HGET', KEYS[4], member) or '')
end
return claimed
