-- What Redis holds for each of many numbers, in one call (reconciliation's bulk read).
-- KEYS[1] legacy state HASH (the states are in buckets beside it: number_hash.lua, dnc.state)  KEYS[2] pending ZSET  KEYS[3] deferred ZSET  KEYS[4] dead letters HASH
-- KEYS[5] legacy owned HASH (the ledger is in buckets beside it: number_hash.lua)  KEYS[6] adds-in-flight HASH  KEYS[7] latest HASH
-- ARGV: E.164 numbers, at most a few thousand a call (the caller chunks).
-- Returns two values per number, in order: its watermark ("" when none), with the expiry
-- appended from its latest event when the watermark is a two-part opt-out whose event
-- expires (watermarks written before expiries were part of them); and flags: 1 in flight
-- (pending or waiting out a backoff), 2 dead-lettered, 4 a record of it is ours (owned, or
-- an add of ours in flight).
local STATES = number_hash(KEYS[1], 'state', later_state)
local OWNED = number_hash(KEYS[5], 'owned')
local out = {}
for i = 1, #ARGV do
  local number = ARGV[i]
  -- the state's watermark part (dnc.state: what precedes the first space)
  local watermark = string.match(nh_get(STATES, number) or '', '^%S*')
  local flags = 0
  if watermark ~= '' then
    if redis.call('ZSCORE', KEYS[2], number) or redis.call('ZSCORE', KEYS[3], number) then
      flags = flags + 1
    end
    if redis.call('HEXISTS', KEYS[4], number) == 1 then
      flags = flags + 2
    end
    if string.match(watermark, '^%d+:optOut$') then
      local latest = redis.call('HGET', KEYS[7], number)
      local ok, event = pcall(cjson.decode, latest or 'null')
      if ok and type(event) == 'table' and type(event['expiresMs']) == 'number' then
        watermark = watermark .. ':' .. string.format('%.0f', event['expiresMs'])
      end
    end
  end
  if nh_get(OWNED, number) or redis.call('HEXISTS', KEYS[6], number) == 1 then
    flags = flags + 4
  end
  out[#out + 1] = watermark
  out[#out + 1] = flags
end
return out
