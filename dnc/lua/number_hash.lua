-- Shared by the scripts that read or write per-number hashes (prepended by dnc.store.load_lua).
-- A per-number hash is kept in buckets (dnc.keys.number_slot): a number's entry is the field
-- <its digits before the last four> of HASH <tag>:<kind>:<its last four digits>, so each
-- bucket stays a small listpack. The flat hash written before buckets (E.164 -> value, the
-- "legacy" key) is still read while it exists; writing a number's entry moves it out of there.
-- Bucket names are built here from the legacy key's hash tag: they share it, so they are in
-- the script's slot on Redis Cluster.

-- A bucketed hash of `kind` ('state', 'owned') whose legacy flat hash is `legacy`.
local function number_hash(legacy, kind)
  return {legacy = legacy, prefix = string.match(legacy, '^{[^}]*}') .. ':' .. kind .. ':'}
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
  if not value and nh_has_legacy(h) then
    value = redis.call('HGET', h.legacy, number)
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
