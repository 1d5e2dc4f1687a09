-- Record a batch of opt-in/opt-out events atomically, each under the same rules, in order.
-- Returns one status per event: 'queued', 'superseded', 'duplicate' or 'id_conflict' (the
-- idempotency key was already used for a different event). Every queued, superseded and
-- duplicate event gets an audit stream entry ("status", "event" JSON); the stream has no cap:
-- only the archive trims it, once its entries are in the audit store (dnc.audit.archive).
-- KEYS[1] watermark HASH  KEYS[2] latest HASH  KEYS[3] pending ZSET  KEYS[4] audit STREAM
-- KEYS[5] replication touch STRING (counter)  KEYS[6] sync wake LIST (at most one '1': the
-- draining sync run blocks on it, BLPOP)  KEYS[6 + i] event-id STRING of event i
-- ARGV[1] idempotency TTL (ms)
-- ARGV[2] '1' when the caller will WAIT for replicas after this call, else '0'
-- ARGV[2 + i] event i as "<E.164> <event time, UTC ms> <receive time, UTC ms> <action>
-- <expiry, UTC ms, or '-'> <followers> <event JSON>": one argument per event keeps the
-- client's command packing cheap; the first six fields hold no space. An opt-in's expiry is
-- ignored. <followers>: how many of the next events form one group with this one (0: alone;
-- the group's other events carry 0). A group is one request's events (an opt-out and its
-- copies under the subscriber's other E.164 forms) and is recorded whole or not at all: when
-- any of its idempotency keys was already used for a different event, none of its events is
-- written and each answers 'id_conflict'.
-- The pending score is the receive time of the oldest change not yet applied (ZADD NX): the
-- sync takes numbers first-come first-served and its lag is the time an opt-out has waited,
-- whatever its event time (an old backfill is not "late").
-- Watermark (KEYS[1] value): "<event ms>:<action>", or "<event ms>:optOut:<expiry ms>" for an
-- opt-out that lapses. The expiry is part of it so that two opt-outs of the same millisecond
-- with different protection leave different watermarks: the sync's compare-and-delete
-- (settle.lua) compares the whole string.

-- How long an opt-out protects, comparable with '<': its expiry in ms, or math.huge when it
-- has none (never lapses).
local function protection(expires_ms)
  return tonumber(expires_ms) or math.huge
end

-- How long the number's current opt-out protects, from the expiry field of its watermark.
local function current_protection(number, expires_ms)
  if expires_ms ~= '' then
    return protection(expires_ms)
  end
  -- A two-part opt-out watermark: permanent, or written before expiries were part of the
  -- watermark; the latest event (the same event as the watermark) says which.
  local latest = redis.call('HGET', KEYS[2], number)
  return protection(latest and cjson.decode(latest)['expiresMs'])
end

-- Whether an event replaces the number's current state (its watermark): the latest event time
-- wins; on a tie an opt-out replaces an opt-in, and an opt-out replaces an opt-out that
-- protects for less (it lapses earlier, or the new one never does); otherwise the first one
-- stands.
local function replaces(number, watermark, ms, action, expires_ms)
  local current_ms, current_action, current_expires =
    string.match(watermark, '^(%d+):(%a+):?(%d*)$')
  current_ms = tonumber(current_ms)
  if ms ~= current_ms then
    return ms > current_ms
  end
  if action ~= 'optOut' then
    return false
  end
  if current_action == 'optIn' then
    return true
  end
  return protection(expires_ms) > current_protection(number, current_expires)
end

-- What an idempotency key stands for; equal to StoredEvent.fingerprint in Python.
local function fingerprint_of(number, action, event_ms)
  return number .. '|' .. action .. '|' .. event_ms
end

local function record(id_key, number, event_ms, received_ms, action, expires_ms, event_json)
  local fingerprint = fingerprint_of(number, action, event_ms)
  if not redis.call('SET', id_key, fingerprint, 'NX', 'PX', ARGV[1]) then
    if redis.call('GET', id_key) == fingerprint then
      redis.call('XADD', KEYS[4], '*', 'status', 'duplicate', 'event', event_json)
      return 'duplicate'
    end
    return 'id_conflict'
  end
  local status = 'queued'
  local current = redis.call('HGET', KEYS[1], number)
  if current and not replaces(number, current, tonumber(event_ms), action, expires_ms) then
    status = 'superseded'
  end
  if status == 'queued' then
    local watermark = event_ms .. ':' .. action
    if action == 'optOut' and expires_ms ~= '-' then
      watermark = watermark .. ':' .. expires_ms
    end
    redis.call('HSET', KEYS[1], number, watermark)
    redis.call('HSET', KEYS[2], number, event_json)
    redis.call('ZADD', KEYS[3], 'NX', received_ms, number)
  end
  redis.call('XADD', KEYS[4], '*', 'status', status, 'event', event_json)
  return status
end

local events = {}
for i = 1, #KEYS - 6 do
  local number, event_ms, received_ms, action, expires_ms, followers, event_json =
    string.match(ARGV[2 + i], '^(%S+) (%d+) (%d+) (%a+) (%S+) (%d+) (.*)$')
  if action ~= 'optOut' then
    expires_ms = '-'
  end
  events[i] = {
    number = number, event_ms = event_ms, received_ms = received_ms, action = action,
    expires_ms = expires_ms, followers = tonumber(followers), json = event_json,
  }
end

-- Whether an idempotency key of events first..last already stands for a different event.
local function conflicts(first, last)
  for j = first, last do
    local held = redis.call('GET', KEYS[6 + j])
    local event = events[j]
    if held and held ~= fingerprint_of(event.number, event.action, event.event_ms) then
      return true
    end
  end
  return false
end

local statuses = {}
local wrote = false
local queued = false
local i = 1
while i <= #events do
  local last = math.min(#events, i + events[i].followers)
  if last > i and conflicts(i, last) then
    for j = i, last do
      statuses[j] = 'id_conflict'
    end
  else
    for j = i, last do
      local e = events[j]
      local status =
        record(KEYS[6 + j], e.number, e.event_ms, e.received_ms, e.action, e.expires_ms, e.json)
      statuses[j] = status
      wrote = wrote or status == 'queued' or status == 'superseded'
      queued = queued or status == 'queued'
    end
  end
  i = last + 1
end
-- Replica confirmation: the caller runs WAIT on this connection next. Redis >= 7.2 and Valkey
-- make WAIT wait only for the replication offset of this connection's own last write; a call
-- that wrote nothing (every event a duplicate, e.g. the retry of an event that got 503 because
-- no replica confirmed it) would leave WAIT nothing to wait for, and it would count every
-- connected replica at once, even one that never received the original write. So such a call
-- writes this counter: the replication stream is ordered, and the original write of any
-- duplicate here went into it before this INCR (it was visible to this script), so a replica
-- that acknowledges the INCR's offset holds every event this call answers for. (A call that
-- wrote an event or an audit entry already has such an offset.)
if ARGV[2] == '1' and not wrote then
  redis.call('INCR', KEYS[5])
end
-- Wake the draining sync run (it blocks on this list): one token however many events, so the
-- list never grows; a token left when nobody waits only makes the next drain look once more.
if queued and redis.call('LLEN', KEYS[6]) == 0 then
  redis.call('RPUSH', KEYS[6], '1')
end
return statuses
