-- Claim delayed jobs due within the horizon for one owner; first hand lapsed claims
-- (their owner stopped renewing) back to due at their own due time. Redis clock.
-- KEYS: due, jobs, claimed, owner
-- ARGV: owner, horizon_ms, lease_ms, limit
-- Returns {now_ms, {id, job JSON, id, job JSON, ...}}
local due, jobs, claimed, owners = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local owner, horizon_ms, lease_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', claimed, '-inf', now_ms, 'LIMIT', 0, limit)) do
  redis.call('ZREM', claimed, id)
  redis.call('HDEL', owners, id)
  local body = redis.call('HGET', jobs, id)
  if body then
    -- an unreadable body must not fail the claim of every other job: due now, and
    -- the claimer dead-letters it
    local ok, job = pcall(cjson.decode, body)
    local due_ms = ok and type(job) == 'table' and tonumber(job['due_ms']) or now_ms
    -- a non-finite due time (1e400 decodes to inf) would park the job forever
    if due_ms ~= due_ms or due_ms == math.huge or due_ms == -math.huge then due_ms = now_ms end
    redis.call('ZADD', due, due_ms, id)
  end
end
local taken = {}
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now_ms + horizon_ms, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  redis.call('ZREM', due, id)
  local body = redis.call('HGET', jobs, id)
  if body then -- an id without a body was cancelled half-way: nothing to run
    redis.call('ZADD', claimed, now_ms + lease_ms, id)
    redis.call('HSET', owners, id, owner)
    table.insert(taken, id)
    table.insert(taken, body)
  end
end
return {now_ms, taken}
