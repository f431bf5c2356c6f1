-- Run writes only while a lease still holds the writer's value, all in one atomic
-- step: a process that lost its lease can never write a checkpoint or progress.
-- KEYS: lease, then every key the commands touch
-- ARGV: expected lease value, JSON array of commands (each an array of strings)
-- Returns 1 after running every command, 0 (nothing written) when the lease is lost
local allowed = {
  DEL = true, SET = true, PEXPIRE = true,
  HSET = true, HDEL = true, HINCRBY = true,
  ZADD = true, ZREM = true, ZREMRANGEBYSCORE = true,
  SADD = true, SREM = true, XADD = true,
}
local declared = {}
for i = 2, #KEYS do declared[KEYS[i]] = true end
declared[KEYS[1]] = nil -- the lease itself is written only by the lease scripts
local commands = cjson.decode(ARGV[2])
-- check every command before running any: a script is not rolled back on error
for i, command in ipairs(commands) do
  local name = string.upper(tostring(command[1]))
  if not allowed[name] then
    return redis.error_reply('fenced: command ' .. name .. ' is not allowed')
  end
  -- DEL takes keys only; every other command names one key, right after its name
  local last = name == 'DEL' and #command or 2
  if last < 2 then
    return redis.error_reply('fenced: command ' .. i .. ' (' .. name .. ') names no key')
  end
  for k = 2, last do
    if not declared[command[k]] then
      return redis.error_reply('fenced: key ' .. tostring(command[k]) .. ' of ' .. name ..
        ' is not declared in KEYS or is the lease')
    end
  end
  command[1] = name
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
for _, command in ipairs(commands) do
  redis.call(unpack(command))
end
return 1
