-- Shared by the scripts that read or write per-number hashes (prepended by dnc.store.load_lua).
-- A per-number hash is kept in buckets (dnc.keys.number_slot): a number's entry is the field
-- <its digits before the last four> of HASH <tag>:<kind>:<its last four digits>, so each
-- bucket stays a small listpack. The flat hash written before buckets (E.164 -> value, the
-- "legacy" key) is still read while it exists; writing a number's entry moves it out of there.
-- Bucket names are built here from the legacy key's hash tag: they share it, so they are in
-- the script's slot on Redis Cluster.

-- A bucketed hash of `kind` ('state', 'owned') whose legacy flat hash is `legacy`. With
-- `later` (a function of two values: whether the first replaces the second), a number found
-- in both places reads as the later one: a process of the version before buckets (a rolling
-- deploy) may still write the flat hash after ours wrote the bucket.
local function number_hash(legacy, kind, later)
  return {
    legacy = legacy, later = later,
    prefix = string.match(legacy, '^{[^}]*}') .. ':' .. kind .. ':',
  }
end

-- Whether state value `a` replaces state value `b` (dnc.state; their watermarks, before the
-- first space): the later event time; on a tie an opt-out over an opt-in, and an opt-out
-- that protects for longer (no expiry: for ever) over one that lapses earlier.
local function later_state(a, b)
  local a_ms, a_action, a_expires = string.match(a, '^(%d+):(%a+):?(%d*)')
  local b_ms, b_action, b_expires = string.match(b, '^(%d+):(%a+):?(%d*)')
  if not a_ms or not b_ms then
    return b_ms == nil and a_ms ~= nil
  end
  a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
  if a_ms ~= b_ms then
    return a_ms > b_ms
  end
  if a_action ~= 'optOut' then
    return false
  end
  if b_action ~= 'optOut' then
    return true
  end
  return (tonumber(a_expires) or math.huge) > (tonumber(b_expires) or math.huge)
end

-- (bucket key, field) of `number` (E.164) in `h`.
local function nh_slot(h, number)
  return h.prefix .. string.sub(number, -4), string.sub(number, 2, -5)
end

-- Whether the legacy flat hash still exists (asked once per script call).
local function nh_has_legacy(h)
  if h.has_legacy == nil then
    h.has_legacy = redis.call('EXISTS', h.legacy) == 1
  end
  return h.has_legacy
end

-- `number`'s value in `h`, or false.
local function nh_get(h, number)
  local key, field = nh_slot(h, number)
  local value = redis.call('HGET', key, field)
  if nh_has_legacy(h) and (not value or h.later) then
    local old = redis.call('HGET', h.legacy, number)
    if old and (not value or h.later(old, value)) then
      value = old
    end
  end
  return value
end

-- Set `number`'s value in `h` (its bucket; any legacy entry is removed).
local function nh_set(h, number, value)
  local key, field = nh_slot(h, number)
  redis.call('HSET', key, field, value)
  if nh_has_legacy(h) then
    redis.call('HDEL', h.legacy, number)
  end
end
