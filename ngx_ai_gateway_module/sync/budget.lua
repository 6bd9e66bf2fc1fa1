if redis.replicate_commands then redis.replicate_commands() end
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hk = p .. 'hosts'
redis.call('ZADD', hk, now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', hk, '-inf', now - 10000)
redis.call('PEXPIRE', hk, 60000)
local hosts = redis.call('ZCARD', hk)
local spend = tonumber(redis.call('GET', p .. 'a:' .. ARGV[3] .. ':'
  .. ARGV[4]) or '0') or 0
local bk = p .. 'b:' .. ARGV[3] .. ':' .. ARGV[4]
local v = redis.call('HGETALL', bk)
local others = 0
for i = 1, #v, 2 do
  if v[i] ~= ARGV[2] then
    local n, e = string.match(v[i + 1], '^(%d+):(%d+)$')
    if n and tonumber(e) > now then
      others = others + tonumber(n)
    else
      redis.call('HDEL', bk, v[i])
    end
  end
end
local budget = tonumber(ARGV[5])
local want = tonumber(ARGV[6])
local least = tonumber(ARGV[7])
local held = tonumber(ARGV[8])
local life = tonumber(ARGV[9])
local left = budget - spend - others - held
local g = 0
if want > 0 and left > 0 then
  g = math.min(want, math.floor(left / hosts))
  if g < least then g = least end
end
local mine = held + g
if mine > 0 then
  redis.call('HSET', bk, ARGV[2],
    string.format('%.0f:%.0f', mine, now + life))
  redis.call('PEXPIRE', bk, life)
else
  redis.call('HDEL', bk, ARGV[2])
end
return {g, 0, spend, others, hosts, now}
