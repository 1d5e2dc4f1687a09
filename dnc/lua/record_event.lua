-- Record one opt-in/opt-out event atomically. Returns 'queued', 'superseded', 'duplicate'
-- or 'id_conflict' (the idempotency key was already used for a different event).
-- KEYS[1] watermark HASH  KEYS[2] latest HASH  KEYS[3] pending ZSET
-- KEYS[4] event-id STRING KEYS[5] audit STREAM
-- ARGV[1] E.164  ARGV[2] event time (UTC ms)  ARGV[3] action ('optOut'|'optIn')
-- ARGV[4] event JSON  ARGV[5] fingerprint  ARGV[6] idempotency TTL (ms)
-- ARGV[7] audit stream cap (approximate MAXLEN)
if not redis.call('SET', KEYS[4], ARGV[5], 'NX', 'PX', ARGV[6]) then
  if redis.call('GET', KEYS[4]) == ARGV[5] then
    return 'duplicate'
  end
  return 'id_conflict'
end
local status = 'queued'
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local sep = string.find(current, ':', 1, true)
  local current_ms = tonumber(string.sub(current, 1, sep - 1))
  local current_action = string.sub(current, sep + 1)
  local event_ms = tonumber(ARGV[2])
  -- Latest event time wins; on a tie only an opt-out may replace an opt-in.
  if event_ms < current_ms or (event_ms == current_ms
      and not (ARGV[3] == 'optOut' and current_action == 'optIn')) then
    status = 'superseded'
  end
end
if status == 'queued' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', 'status', status, 'event', ARGV[4])
return status
