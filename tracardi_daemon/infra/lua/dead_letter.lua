-- Move one message the consumer holds to the dead letters.
-- KEYS: stream, dead
-- ARGV: group, id, then field/value pairs of the dead letter
local stream, dead = KEYS[1], KEYS[2]
if redis.call('XACK', stream, ARGV[1], ARGV[2]) == 0 then
  return 0 -- another consumer finished it already
end
redis.call('XDEL', stream, ARGV[2])
local fields = {'id', ARGV[2]}
for i = 3, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('XADD', dead, '*', unpack(fields))
return 1
