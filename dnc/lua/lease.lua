-- The sync lease: only its holder may claim and write to CXone. Times are Redis's clock (ms).
-- KEYS[1] lease STRING (token, TTL)  KEYS[2] lease history HASH (holder, expiresMs,
-- released, fenceUntilMs; no TTL: it outlives the lease so a successor knows how it ended)
-- ARGV[1] 'acquire' | 'renew' | 'release'  ARGV[2] token  ARGV[3] TTL (ms)
-- ARGV[4] takeover grace (ms): how long after an unreleased lease expired no one may write
-- (acquire: the acquirer's; the holder's own is kept and the longer applies); release: the
-- grace from now when the holder abandoned a request, else 0
-- acquire: take it when free (or keep it when already ours); renew: extend it when ours;
-- release: drop it when ours. Returns {1, wait ms} when the caller holds (or released) it,
-- else {0, 0}; wait ms (acquire only) is how long the new holder must wait before writing:
-- until the previous holder's unreleased lease expiry + grace, or an earlier such bound that
-- is not over yet (it is handed on from holder to holder).
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode, token, ttl_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local holder = redis.call('GET', KEYS[1])

if mode == 'acquire' then
  if holder and holder ~= token then
    return {0, 0}
  end
  local last = redis.call('HMGET', KEYS[2], 'holder', 'expiresMs', 'released', 'fenceUntilMs',
    'graceMs')
  local fence = tonumber(last[4]) or 0
  if last[1] and last[1] ~= token and last[3] ~= '1' then
    -- the longer of the old holder's grace (its own attempt bound) and ours
    local grace = math.max(tonumber(ARGV[4]), tonumber(last[5]) or 0)
    fence = math.max(fence, (tonumber(last[2]) or 0) + grace)
  end
  redis.call('SET', KEYS[1], token, 'PX', ttl_ms)
  redis.call('HSET', KEYS[2], 'holder', token, 'expiresMs', now_ms + ttl_ms, 'released', '0',
    'fenceUntilMs', fence, 'graceMs', ARGV[4])
  return {1, math.max(0, fence - now_ms)}
end
if holder ~= token then
  return {0, 0}
end
if mode == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
  redis.call('HSET', KEYS[2], 'expiresMs', now_ms + ttl_ms)
else
  -- release: a holder that gave up on a request (cut off, cancelled) passes its grace, so the
  -- next holder still waits until that request can no longer land
  redis.call('DEL', KEYS[1])
  local fence = tonumber(redis.call('HGET', KEYS[2], 'fenceUntilMs')) or 0
  local grace = tonumber(ARGV[4]) or 0
  if grace > 0 then
    fence = math.max(fence, now_ms + grace)
  end
  redis.call('HSET', KEYS[2], 'released', '1', 'fenceUntilMs', fence)
end
return {1, 0}
