-- Shared by the scripts that read or write per-number hashes (prepended by dnc.store.load_lua).
-- A per-number hash is kept in buckets (dnc.number_slots.number_slot): a number's entry is the field
-- <its digits before the last four> of HASH <tag>:<kind>:<its last four digits>, so each
-- bucket stays a small listpack. The flat hash written before buckets (E.164 -> value, the
-- "legacy" key) is still read while it exists; writing a number's entry moves it out of there.
-- A value longer than NH_MAX_VALUE bytes goes to the hash <tag>:<kind>-long (E.164 -> value)
-- instead: Redis keeps a hash as a listpack only while every value is at most
-- hash-max-listpack-value (64 by default), and one long value would turn its whole bucket into
-- a plain hash for good. Bucket names are built here from the legacy key's hash tag: they
-- share it, so they are in the script's slot on Redis Cluster.
local NH_MAX_VALUE = 64

-- A bucketed hash of `kind` ('state', 'owned') whose legacy flat hash is `legacy`. With
-- `later` (a function of two values: whether the first replaces the second), a number found
-- in both places reads as the later one: a process of the version before buckets (a rolling
-- deploy) may still write the flat hash after ours wrote the bucket.
local function number_hash(legacy, kind, later)
  local tag = string.match(legacy, '^{[^}]*}')
  return {
    legacy = legacy, later = later, prefix = tag .. ':' .. kind .. ':',
    long = tag .. ':' .. kind .. '-long',
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

-- Whether h[which] ('legacy' or 'long') exists (asked once per script call).
local function nh_has(h, which)
  local flag = 'has_' .. which
  if h[flag] == nil then
    h[flag] = redis.call('EXISTS', h[which]) == 1
  end
  return h[flag]
end

-- `number`'s value in `h`, or false.
local function nh_get(h, number)
  local key, field = nh_slot(h, number)
  local value = redis.call('HGET', key, field)
  if not value and nh_has(h, 'long') then
    value = redis.call('HGET', h.long, number)
  end
  if nh_has(h, 'legacy') and (not value or h.later) then
    local old = redis.call('HGET', h.legacy, number)
    if old and (not value or h.later(old, value)) then
      value = old
    end
  end
  return value
end

-- Set `number`'s value in `h` (its bucket, or the long hash; its other entries are removed).
local function nh_set(h, number, value)
  local key, field = nh_slot(h, number)
  if #value > NH_MAX_VALUE then
    redis.call('HSET', h.long, number, value)
    h.has_long = true
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, value)
    if nh_has(h, 'long') then
      redis.call('HDEL', h.long, number)
    end
  end
  if nh_has(h, 'legacy') then
    redis.call('HDEL', h.legacy, number)
  end
end
