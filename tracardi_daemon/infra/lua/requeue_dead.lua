-- Put dead letters back on their queue with a fresh attempt budget.
-- KEYS: stream, dead
-- ARGV: dead-letter ids
-- Returns the number requeued (ids already gone, or without a payload, are skipped)
local stream, dead = KEYS[1], KEYS[2]
local requeued = 0
for _, id in ipairs(ARGV) do
  local entries = redis.call('XRANGE', dead, id, id)
  if #entries > 0 then
    local fields = entries[1][2]
    local payload = nil
    for i = 1, #fields, 2 do
      if fields[i] == 'payload' then payload = fields[i + 1] end
    end
    if payload then
      redis.call('XADD', stream, '*', 'payload', payload, 'attempts', '0')
      redis.call('XDEL', dead, id)
      requeued = requeued + 1
    end
  end
end
return requeued
