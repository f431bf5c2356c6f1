-- Extend the lease of claims the owner still holds; claims that lapsed and went to
-- another owner, or were cancelled, are left alone. Redis clock.
-- KEYS: claimed, owner
-- ARGV: owner, lease_ms, ids...
-- Returns the ids still held
local claimed, owners = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local held = {}
for i = 3, #ARGV do
  if redis.call('HGET', owners, ARGV[i]) == ARGV[1] then
    redis.call('ZADD', claimed, 'XX', deadline, ARGV[i])
    table.insert(held, ARGV[i])
  end
end
return held
