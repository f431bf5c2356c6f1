-- Reset the idle time of entries the consumer still holds, so a long job keeps its
-- claim; entries taken over by another consumer meanwhile are left alone.
-- KEYS: stream
-- ARGV: group, consumer, ids...
-- Returns the ids still held
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local held = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1, consumer)
  if #pending > 0 then
    redis.call('XCLAIM', stream, group, consumer, 0, ARGV[i], 'JUSTID')
    table.insert(held, ARGV[i])
  end
end
return held
