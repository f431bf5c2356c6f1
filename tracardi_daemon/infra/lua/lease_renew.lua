-- Extend a lease only while it still holds our exact value (owner and token).
-- KEYS: lease
-- ARGV: value, ttl_ms
-- Returns 1 if extended, 0 if the lease lapsed or went to another holder
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
