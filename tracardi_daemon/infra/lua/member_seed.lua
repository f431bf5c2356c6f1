-- Start the records of members that have none from what a scan read, skipping a member
-- whose write is under way (its intent exists): that write's announcement starts the
-- record itself, from the state before the write.
-- KEYS: members hash, intents hash
-- ARGV, repeated: member id, its values as a JSON array, intent field ("" for none)
-- Returns the number of records started.
local members, intents = KEYS[1], KEYS[2]
local started = 0
for i = 1, #ARGV, 3 do
  local intent = ARGV[i + 2]
  if intent == '' or redis.call('HEXISTS', intents, intent) == 0 then
    started = started + redis.call('HSETNX', members, ARGV[i], ARGV[i + 1])
  end
end
return started
