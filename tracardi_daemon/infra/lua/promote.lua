-- Move due retries from the delay zset back into the stream.
-- KEYS: stream, retry
-- ARGV: limit
-- Returns {moved, ms until the next retry is due or -1}
local stream, retry = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', retry, '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local m = cjson.decode(member)
  local fields = {'payload', m['payload'], 'attempts', tostring(m['attempts'])}
  for _, name in ipairs({'first_error', 'last_error'}) do
    if type(m[name]) == 'string' then
      table.insert(fields, name)
      table.insert(fields, m[name])
    end
  end
  redis.call('XADD', stream, '*', unpack(fields))
  redis.call('ZREM', retry, member)
end
local next_due = redis.call('ZRANGE', retry, 0, 0, 'WITHSCORES')
local wait_ms = -1
if next_due[2] then wait_ms = math.max(0, tonumber(next_due[2]) - now_ms) end
return {#due, wait_ms}
