if redis.replicate_commands then redis.replicate_commands() end
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hk = p .. 'hosts'
redis.call('ZADD', hk, now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', hk, '-inf', now - 10000)
redis.call('PEXPIRE', hk, 60000)
local hosts = redis.call('ZCARD', hk)
local k = p .. 'r:' .. ARGV[3]
local rpm = tonumber(ARGV[4])
local tpm = tonumber(ARGV[5])
local v = redis.call('HMGET', k, 'r', 't', 'ts')
local ms = now - (tonumber(v[3]) or now)
if ms < 0 then ms = 0 end
local r = math.max(0, (tonumber(v[1]) or 0) - rpm * ms)
local tk = math.max(0, (tonumber(v[2]) or 0) - tpm * ms)
r = r + tonumber(ARGV[10])
tk = tk + tonumber(ARGV[11])
local function grant(level, lim, want, least)
  if lim == 0 then return 0 end
  local left = lim * 60000 - level
  if left < least or left <= 0 then return -1 end
  local g = math.min(want, math.floor(left / hosts))
  if g < least then g = least end
  return g
end
local gr = grant(r, rpm, tonumber(ARGV[6]), tonumber(ARGV[8]))
local gt = grant(tk, tpm, tonumber(ARGV[7]), tonumber(ARGV[9]))
if gr < 0 or gt < 0 then
  gr = 0
  gt = 0
end
r = r + gr
tk = tk + gt
redis.call('HSET', k, 'r', string.format('%.0f', r),
  't', string.format('%.0f', tk), 'ts', now)
redis.call('PEXPIRE', k, 120000)
return {gr, gt, r, tk, hosts, now}
