-- Announce membership changes against a durable record of each member's sets, so that
-- a change is announced only when it changes the record: an "add" of what the record
-- already holds (a value another writer erased and the caller put back) and a "remove"
-- of what it lacks are dropped. The record, the messages and the intents' removal are
-- one atomic step.
-- KEYS: stream, intents hash, members hash (one hash tag)
-- ARGV, repeated per member: member id, intent field ("" for none), seed (a JSON array
--   the record starts from when the member has none; "" when no record means none, so
--   that an empty record is deleted rather than kept), the number
--   of candidates, then per candidate: value, "add"|"remove", field count, entry fields
-- Returns {adds announced, removes announced}.
local stream, intents, members = KEYS[1], KEYS[2], KEYS[3]
local adds, removes = 0, 0
local i = 1
while i <= #ARGV do
  local member, intent, seed, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  i = i + 4
  local raw = redis.call('HGET', members, member)
  local held = {}
  local source = raw or (seed ~= '' and seed) or nil
  if source then
    for _, value in ipairs(cjson.decode(source)) do held[value] = true end
  end
  for _ = 1, count do
    local value, change, nfields = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    local fields = {}
    for f = 1, nfields do fields[f] = ARGV[i + 2 + f] end
    i = i + 3 + nfields
    if change == 'add' and not held[value] then
      held[value] = true
      adds = adds + 1
      redis.call('XADD', stream, '*', unpack(fields))
    elseif change == 'remove' and held[value] then
      held[value] = nil
      removes = removes + 1
      redis.call('XADD', stream, '*', unpack(fields))
    end
  end
  local values = {}
  for value in pairs(held) do table.insert(values, value) end
  table.sort(values)
  if #values == 0 and seed == '' then
    -- no record means no segments for this member: nothing to keep
    redis.call('HDEL', members, member)
  elseif #values == 0 then
    -- a member adopted from its document must remember it is in none (cjson would
    -- write an empty table as {})
    redis.call('HSET', members, member, '[]')
  else
    redis.call('HSET', members, member, cjson.encode(values))
  end
  if intent ~= '' then redis.call('HDEL', intents, intent) end
end
return {adds, removes}
