-- Put settled numbers back in the pending set so the next sync pushes their latest state
-- again (reconciliation's repair): only numbers with a latest state, not dead-lettered (a
-- requeue of dead letters is its own command) and not waiting out a retry backoff.
-- KEYS[1] pending ZSET  KEYS[2] legacy state HASH (the states are in
-- buckets beside it: number_hash.lua)  KEYS[3] dead letters HASH  KEYS[4] deferred ZSET
-- ARGV[1] now (UTC ms)  ARGV[2..]: E.164 numbers, at most a few hundred a call
-- Returns how many were put back (a number already pending keeps its older score).
local STATES = number_hash(KEYS[2], 'state', later_state)
local count = 0
for i = 2, #ARGV do
  local member = ARGV[i]
  if nh_get(STATES, member)
    and redis.call('HEXISTS', KEYS[3], member) == 0
    and not redis.call('ZSCORE', KEYS[4], member) then
    count = count + redis.call('ZADD', KEYS[1], 'NX', ARGV[1], member)
  end
end
return count
