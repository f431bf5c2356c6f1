-- Finish fired jobs the owner still holds: remove them, or re-arm a recurring one.
-- Modes: 'done' removes the job; 'rearm' stores the new body and puts it back on due;
-- 'hold' stores the new body and keeps the claim (next run within the horizon).
-- KEYS: due, jobs, claimed, owner
-- ARGV: owner, lease_ms, then (id, mode, next_due_ms, body) per job
-- Returns the ids that were still held (the others were cancelled or taken over)
local due, jobs, claimed, owners = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local finished = {}
for i = 3, #ARGV, 4 do
  local id, mode, next_due, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('HGET', owners, id) == ARGV[1] then
    if mode == 'done' then
      redis.call('HDEL', jobs, id)
      redis.call('ZREM', claimed, id)
      redis.call('HDEL', owners, id)
    elseif mode == 'rearm' then
      redis.call('HSET', jobs, id, body)
      redis.call('ZREM', claimed, id)
      redis.call('HDEL', owners, id)
      redis.call('ZADD', due, next_due, id)
    else
      redis.call('HSET', jobs, id, body)
      redis.call('ZADD', claimed, 'XX', deadline, id)
    end
    table.insert(finished, id)
  end
end
return finished
