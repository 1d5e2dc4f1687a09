-- The sync lease: only its holder may claim. KEYS[1] lease STRING.
-- ARGV[1] 'acquire' | 'renew' | 'release'  ARGV[2] token  ARGV[3] TTL (ms)
-- acquire: take it when free (or keep it when already ours); renew: extend it when ours;
-- release: drop it when ours. Returns 1 when the caller holds (or released) it, else 0.
local holder = redis.call('GET', KEYS[1])
if ARGV[1] == 'acquire' and (not holder or holder == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if holder ~= ARGV[2] then
  return 0
end
if ARGV[1] == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
return 1
