-- Settle claimed numbers by compare-and-delete: each is settled only if its state (dnc.state:
-- watermark, receive time, id) is still the one that was claimed, so a newer event that arrived
-- during the push stays pending. KEYS[1] pending ZSET  KEYS[2] legacy state HASH (the states are in
-- buckets beside it: number_hash.lua)  KEYS[3] dead letters HASH
-- KEYS[4] deferred ZSET (E.164 -> not-before ms)  KEYS[5] retry state HASH (E.164 ->
-- "<attempts>:<waiting since ms>:<first counted failure ms, 0 before one>")
-- KEYS[6] applications STREAM (dnc.applications: one entry per number pushed to CXone)
-- ARGV[1] now (UTC ms)  ARGV[2] max attempts  ARGV[3] max age (ms)  ARGV[4] backoff base (ms)
-- ARGV[5] backoff cap (ms), then quints: E.164, claimed watermark, kind, payload, application
-- (the JSON of what CXone was asked and answered for it, or '' when there was no push): each
-- application is appended to KEYS[6] with what settling did ('outcome': acknowledged,
-- dead_lettered, deferred, or changed: a newer event arrived, the number stays pending) and
-- 'settledMs', in this same call, so no number is settled without its record. The stream has
-- no cap: only the archive trims it, once copied (dnc.audit.archive). Kinds and payloads:
--   'ack'   payload ''                 acknowledged: leaves the pending set
--   'dead'  payload dead-letter JSON   refused for good: moved to the dead letters
--   'retry' payload "<jitter 0..1> <retry-after ms> <counts 0|1> <dead-letter JSON>": failed
--           for now; waits a backoff (equal jitter: half of min(cap, base * 2^(attempts-1))
--           plus a random share of the other half, at least the retry-after) in the deferred
--           set; with counts = 1, the number is dead-lettered instead (the JSON's
--           "{attempts}" replaced by the count) once it reached max attempts or max age;
--           with counts = 0 (its whole batch failed: CXone down) the wait is the base alone
--           and nothing is counted, so an outage neither dead-letters nor stretches waits
-- Returns, per number: 0 changed meanwhile (left pending), 1 settled as asked, 2 dead-lettered
-- at the retry limit, 3 deferred.
local now = tonumber(ARGV[1])
local max_attempts, max_age = tonumber(ARGV[2]), tonumber(ARGV[3])
local base, cap = tonumber(ARGV[4]), tonumber(ARGV[5])

local function forget(member)
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[4], member)
  redis.call('HDEL', KEYS[5], member)
end

local function retry(member, payload)
  local jitter, retry_after, counts, dead = string.match(payload, '^(%S+) (%d+) (%d) (.*)$')
  local state = redis.call('HGET', KEYS[5], member)
  local attempts, since, first = 0, nil, 0
  if state then
    local a, s, f = string.match(state, '^(%d+):(%d+):(%d+)$')
    attempts, since, first = tonumber(a), tonumber(s), tonumber(f)
  end
  since = since or tonumber(redis.call('ZSCORE', KEYS[1], member)) or now
  local step = base  -- a failed batch (counts 0): a fixed wait, nothing counted
  if counts == '1' then
    attempts = attempts + 1
    if first == 0 then
      first = now
    end
    if attempts >= max_attempts or now - first >= max_age then
      forget(member)
      local text = string.gsub(dead, '{attempts}', tostring(attempts))
      redis.call('HSET', KEYS[3], member, text)
      return 2
    end
    step = math.min(cap, base * 2 ^ (attempts - 1))
  end
  local delay = math.max(tonumber(retry_after), math.floor(step / 2 + tonumber(jitter) * step / 2))
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZADD', KEYS[4], now + delay, member)
  redis.call('HSET', KEYS[5], member, attempts .. ':' .. since .. ':' .. first)
  return 3
end

local OUTCOMES = {
  [0] = 'changed', [1] = {ack = 'acknowledged', dead = 'dead_lettered'}, [2] = 'dead_lettered',
  [3] = 'deferred',
}

local STATES = number_hash(KEYS[2], 'state', later_state)

local function settle(member, watermark, kind, payload)
  if nh_get(STATES, member) ~= watermark then
    return 0
  elseif kind == 'retry' then
    return retry(member, payload)
  end
  forget(member)
  if kind == 'dead' then
    redis.call('HSET', KEYS[3], member, payload)
  else
    redis.call('HDEL', KEYS[3], member)  -- applied now: an older dead letter is moot
  end
  return 1
end

local settled = {}
for i = 6, #ARGV, 5 do
  local kind, application = ARGV[i + 2], ARGV[i + 4]
  local flag = settle(ARGV[i], ARGV[i + 1], kind, ARGV[i + 3])
  table.insert(settled, flag)
  if application ~= '' then
    local outcome = OUTCOMES[flag]
    if type(outcome) == 'table' then
      outcome = outcome[kind]
    end
    redis.call('XADD', KEYS[6], '*', 'outcome', outcome, 'settledMs', ARGV[1],
      'application', application)
  end
end
return settled
