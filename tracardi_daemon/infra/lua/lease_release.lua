-- Delete a lease only while it still holds our exact value (owner and token).
-- KEYS: lease
-- ARGV: value
-- Returns 1 if deleted, 0 if it was no longer ours
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
