-- Take over entries idle longer than the visibility timeout; entries delivered too often
-- (their worker keeps dying before it acks) go to the dead letters instead.
-- KEYS: stream, dead
-- ARGV: group, consumer, min_idle_ms, cursor, count, max_attempts, lost_error
-- Returns {next_cursor, {{id, fields, deliveries}, ...}, dead_lettered}
local stream, dead = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local max_attempts = tonumber(ARGV[6])
local lost_error = ARGV[7]
local res = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local claimed, dead_lettered = {}, 0
for _, entry in ipairs(res[2]) do
  local id, fields = entry[1], entry[2]
  if not fields then
    -- Redis 6.2 returns deleted entries with nil fields; they are nobody's work
    redis.call('XACK', stream, group, id)
  else
    local f = {}
    for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
    local pending = redis.call('XPENDING', stream, group, id, id, 1)
    local deliveries = tonumber(pending[1][4])
    local attempt = (tonumber(f['attempts']) or 0) + deliveries
    if attempt > max_attempts then
      redis.call('XADD', dead, '*',
        'id', id, 'reason', 'worker lost the message ' .. (deliveries - 1) ..
        ' times; max_attempts ' .. max_attempts .. ' reached',
        'attempts', attempt - 1, 'first_error', f['first_error'] or lost_error,
        'last_error', lost_error, 'payload', f['payload'] or '')
      redis.call('XACK', stream, group, id)
      redis.call('XDEL', stream, id)
      dead_lettered = dead_lettered + 1
    else
      table.insert(claimed, {id, fields, deliveries})
    end
  end
end
return {res[1], claimed, dead_lettered}
