-- Hand a message back for a later attempt without blocking the entries behind it:
-- ack and delete it, and park it on the delay zset until it is due (Redis clock).
-- KEYS: stream, retry
-- ARGV: group, id, delay_ms, member (JSON: payload, attempts, first/last error)
local stream, retry = KEYS[1], KEYS[2]
if redis.call('XACK', stream, ARGV[1], ARGV[2]) == 0 then
  return 0 -- another consumer finished it already
end
redis.call('XDEL', stream, ARGV[2])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', retry, now_ms + tonumber(ARGV[3]), ARGV[4])
return 1
