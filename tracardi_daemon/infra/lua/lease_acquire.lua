-- Take a lease if it is free, or extend it if this owner already holds it. A new
-- holder gets the next fencing token, so tokens grow strictly across owners.
-- KEYS: lease, fence counter
-- ARGV: owner, ttl_ms
-- Returns the token held (> 0), or 0 when another owner holds the lease
local lease, fence = KEYS[1], KEYS[2]
local owner, ttl_ms = ARGV[1], tonumber(ARGV[2])
local current = redis.call('GET', lease)
if current then
  local holder, token = string.match(current, '^(.*)|(%d+)$')
  if holder == owner then
    redis.call('PEXPIRE', lease, ttl_ms)
    return tonumber(token)
  end
  return 0
end
local token = redis.call('INCR', fence)
redis.call('SET', lease, owner .. '|' .. token, 'PX', ttl_ms)
return token
