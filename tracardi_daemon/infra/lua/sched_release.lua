-- Hand claims the owner holds back to due at their own due time (shutdown, interrupted
-- dispatch), so another daemon fires them without waiting for the lease to lapse.
-- KEYS: due, jobs, claimed, owner
-- ARGV: owner, ids...
-- Returns how many were handed back
local due, jobs, claimed, owners = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local released = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', owners, id) == ARGV[1] then
    redis.call('ZREM', claimed, id)
    redis.call('HDEL', owners, id)
    local body = redis.call('HGET', jobs, id)
    if body then
      local ok, job = pcall(cjson.decode, body)
      local due_ms = ok and type(job) == 'table' and tonumber(job['due_ms']) or 0
      -- non-finite: due now, so that the claimer sees it and dead-letters it
      if due_ms ~= due_ms or due_ms == math.huge or due_ms == -math.huge then due_ms = 0 end
      redis.call('ZADD', due, due_ms, id)
      released = released + 1
    end
  end
end
return released
