-- Record a batch of opt-in/opt-out events atomically, each under the same rules, in order.
-- Returns one status per event: 'queued', 'superseded', 'duplicate' or 'id_conflict' (the
-- idempotency key was already used for a different event).
-- KEYS[1] watermark HASH  KEYS[2] latest HASH  KEYS[3] pending ZSET  KEYS[4] audit STREAM
-- KEYS[4 + i] event-id STRING of event i
-- ARGV[1] idempotency TTL (ms)  ARGV[2] audit stream cap (approximate MAXLEN)
-- ARGV[2 + i] event i as "<E.164> <event time, UTC ms> <receive time, UTC ms> <action> <event
-- JSON>": one argument per event keeps the client's command packing cheap; the first four
-- fields hold no space.
-- The pending score is the receive time of the oldest change not yet applied (ZADD NX): the
-- sync takes numbers first-come first-served and its lag is the time an opt-out has waited,
-- whatever its event time (an old backfill is not "late").
local function record(id_key, number, event_ms, received_ms, action, event_json)
  -- What an idempotency key stands for; equal to StoredEvent.fingerprint in Python.
  local fingerprint = number .. '|' .. action .. '|' .. event_ms
  if not redis.call('SET', id_key, fingerprint, 'NX', 'PX', ARGV[1]) then
    if redis.call('GET', id_key) == fingerprint then
      return 'duplicate'
    end
    return 'id_conflict'
  end
  local status = 'queued'
  local current = redis.call('HGET', KEYS[1], number)
  if current then
    local sep = string.find(current, ':', 1, true)
    local current_ms = tonumber(string.sub(current, 1, sep - 1))
    local current_action = string.sub(current, sep + 1)
    local ms = tonumber(event_ms)
    -- Latest event time wins; on a tie only an opt-out may replace an opt-in.
    if ms < current_ms or (ms == current_ms
        and not (action == 'optOut' and current_action == 'optIn')) then
      status = 'superseded'
    end
  end
  if status == 'queued' then
    redis.call('HSET', KEYS[1], number, event_ms .. ':' .. action)
    redis.call('HSET', KEYS[2], number, event_json)
    redis.call('ZADD', KEYS[3], 'NX', received_ms, number)
  end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'status', status, 'event', event_json)
  return status
end

local statuses = {}
for i = 1, #KEYS - 4 do
  local number, event_ms, received_ms, action, event_json =
    string.match(ARGV[2 + i], '^(%S+) (%d+) (%d+) (%a+) (.*)$')
  statuses[i] = record(KEYS[4 + i], number, event_ms, received_ms, action, event_json)
end
return statuses
