-- Add a message unless its key was seen within the marker's time to live, so that a
-- producer that repeats itself (a redelivered input) adds it only once.
-- KEYS: stream, marker ({<tenant>:q:<queue>}:once:<key>)
-- ARGV: ttl_ms, max_length (0: not trimmed), then field/value pairs of the entry
-- Returns the new entry's id, or false if the key was seen.
local stream, marker = KEYS[1], KEYS[2]
if redis.call('EXISTS', marker) == 1 then
  return false
end
local fields = {}
for i = 3, #ARGV do table.insert(fields, ARGV[i]) end
local id
if tonumber(ARGV[2]) > 0 then
  id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
else
  id = redis.call('XADD', stream, '*', unpack(fields))
end
-- set after the XADD: a failed XADD leaves no marker that would hide the message
redis.call('SET', marker, id, 'PX', ARGV[1])
return id
