-- Record a batch of opt-in/opt-out events atomically, each under the same rules, in order.
-- Returns one status per event: 'queued', 'superseded', 'duplicate' or 'id_conflict' (the
-- idempotency key was already used for a different event). Every queued, superseded and
-- duplicate event gets an audit stream entry ("status", "event" JSON); the stream has no cap:
-- only the archive trims it, once its entries are in the audit store (dnc.audit.archive).
-- KEYS[1] legacy state HASH (E.164 -> state, written before states were bucketed; read and
-- emptied, never written: number_hash.lua; the states are in the buckets '<tag>:state:<last
-- four digits>': "<watermark> <received offset> [<id token>]", dnc.state; a bare watermark
-- when written before states were compact)  KEYS[2] latest HASH (the legacy
-- states' event JSON: read, deleted when the number's state is rewritten, never written)
-- KEYS[3] pending ZSET  KEYS[4] audit STREAM  KEYS[5] replication touch STRING (counter)
-- KEYS[6] sync wake LIST (at most one '1': the draining sync run blocks on it, BLPOP)
-- KEYS[7..]: the idempotency keys of the events that have some, in event order: per such
-- event its <id keys> id-bucket HASHes (the one written first; dnc.state.IdBuckets) then its
-- legacy event-id STRING (read only, until it expires)
-- ARGV[1] PEXPIREAT (UTC ms) of the bucket written  ARGV[2] '1' when the caller will WAIT for
-- replicas after this call, else '0'
-- ARGV[1 + 2i] event i's header: "<E.164> <event time, UTC ms> <receive time, UTC ms>
-- <action> <expiry, UTC ms, or '-'> <followers> <id keys> <id hash hex or '-'> <fingerprint
-- hash hex or '-'> <state tail>" (the state tail, dnc.state.state_tail, may hold a space)
-- ARGV[2 + 2i] event i's JSON (for the audit stream). An opt-in's expiry is ignored.
-- <id keys> 0: the id was derived from the event itself and has no key. Otherwise its field
-- in the buckets (16 bytes of the id hash) holds the fingerprint hash: the same one is
-- 'duplicate', another 'id_conflict'. An event whose id no key knows is 'duplicate' when it is
-- the number's current state (same watermark and id token); a retry of a derived-id event
-- that a newer one replaced since is 'superseded' (it changes nothing either way).
-- <followers>: how many of the next events form one group with this one (0: alone;
-- the group's other events carry 0). A group is one request's events (an opt-out and its
-- copies under the subscriber's other E.164 forms) and is recorded whole or not at all: when
-- any of its idempotency keys was already used for a different event, none of its events is
-- written and each answers 'id_conflict'.
-- The pending score is the receive time of the oldest change not yet applied (ZADD NX): the
-- sync takes numbers first-come first-served and its lag is the time an opt-out has waited,
-- whatever its event time (an old backfill is not "late").
-- Watermark: "<event ms>:<action>", or "<event ms>:optOut:<expiry ms>" for an opt-out that
-- lapses. The expiry is part of it so that two opt-outs of the same millisecond with
-- different protection leave different watermarks: the sync's compare-and-delete
-- (settle.lua) compares the whole state value.

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
    string.match(watermark, '^(%d+):(%a+):?(%d*)')
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

-- (watermark, id token) of a state value; the token is nil for a legacy bare watermark.
local function split_state(value)
  local mark, rest = string.match(value, '^(%S+) (.*)$')
  if not mark then
    return value, nil
  end
  return mark, string.match(rest, '^%S* ?(.*)$')
end

local function bytes(hex)
  return (string.gsub(hex, '%x%x', function(cc) return string.char(tonumber(cc, 16)) end))
end

-- What the event's idempotency key already stands for: 'same' (this event), 'other' or nil.
local function held(e)
  if e.id_keys == 0 then
    return nil
  end
  for k = e.first_key, e.first_key + e.id_keys - 2 do
    local found = redis.call('HGET', KEYS[k], e.id_hash)
    if found then
      return found == e.fingerprint_hash and 'same' or 'other'
    end
  end
  local legacy = redis.call('GET', KEYS[e.first_key + e.id_keys - 1])
  if legacy then
    return legacy == fingerprint_of(e.number, e.action, e.event_ms) and 'same' or 'other'
  end
  return nil
end

-- Whether the number's state `value` (false: none) is this very event (for an event whose id
-- has no key).
local function is_current(e, value)
  if not value then
    return false
  end
  local mark, token = split_state(value)
  if token then
    return mark == e.watermark and token == e.token
  end
  -- A legacy state: the bare watermark, the event JSON in KEYS[2]. The same id alone is not
  -- the same event (a caller may reuse an id once its key expired): the watermark must be too.
  if mark ~= e.watermark then
    return false
  end
  local ok, stored = pcall(cjson.decode, redis.call('HGET', KEYS[2], e.number) or 'null')
  local ok_event, event = pcall(cjson.decode, e.json)
  return ok and ok_event and type(stored) == 'table' and type(event) == 'table'
    and stored['eventId'] == event['eventId']
end

local STATES = number_hash(KEYS[1], 'state', later_state)

local function record(e)
  local id = held(e)
  if id == 'other' then
    return 'id_conflict'
  end
  local current = nh_get(STATES, e.number)
  if id == 'same' or (id == nil and is_current(e, current)) then
    redis.call('XADD', KEYS[4], '*', 'status', 'duplicate', 'event', e.json)
    return 'duplicate'
  end
  if e.id_keys > 0 then
    redis.call('HSET', KEYS[e.first_key], e.id_hash, e.fingerprint_hash)
    redis.call('PEXPIREAT', KEYS[e.first_key], ARGV[1])
  end
  local status = 'queued'
  if current
    and not replaces(e.number, current, tonumber(e.event_ms), e.action, e.expires_ms) then
    status = 'superseded'
  end
  if status == 'queued' then
    nh_set(STATES, e.number, e.watermark .. ' ' .. e.tail)
    redis.call('HDEL', KEYS[2], e.number)
    redis.call('ZADD', KEYS[3], 'NX', e.received_ms, e.number)
  end
  redis.call('XADD', KEYS[4], '*', 'status', status, 'event', e.json)
  return status
end

local events = {}
local next_key = 7
for i = 1, (#ARGV - 2) / 2 do
  local number, event_ms, received_ms, action, expires_ms, followers, id_keys, id_hash,
    fingerprint_hash, tail = string.match(ARGV[1 + 2 * i],
      '^(%S+) (%d+) (%d+) (%a+) (%S+) (%d+) (%d+) (%S+) (%S+) (.*)$')
  if action ~= 'optOut' then
    expires_ms = '-'
  end
  local watermark = event_ms .. ':' .. action
  if expires_ms ~= '-' then
    watermark = watermark .. ':' .. expires_ms
  end
  events[i] = {
    number = number, event_ms = event_ms, received_ms = received_ms, action = action,
    expires_ms = expires_ms, followers = tonumber(followers), id_keys = tonumber(id_keys),
    id_hash = bytes(id_hash), fingerprint_hash = bytes(fingerprint_hash), tail = tail,
    token = string.match(tail, '^%S* ?(.*)$'),
    watermark = watermark, json = ARGV[2 + 2 * i], first_key = next_key,
  }
  next_key = next_key + events[i].id_keys
end

-- Whether an idempotency key of events[first..last] stands for another event already.
local function conflicts(first, last)
  for j = first, last do
    if held(events[j]) == 'other' then
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
      local status = record(events[j])
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
