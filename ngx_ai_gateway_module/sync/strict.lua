if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function period(k, i)
  if ARGV[i + 2] == '1' then return k .. ':d:' .. ARGV[i + 5] end
  if ARGV[i + 2] == '2' then return k .. ':m:' .. ARGV[i + 6] end
  return k .. ':total'
end
local function spend(k, i)
  return redis.call('GET', period(k, i)) or '0',
    redis.call('GET', k .. ':d:' .. ARGV[i + 5]) or '0',
    redis.call('GET', k .. ':m:' .. ARGV[i + 6]) or '0',
    redis.call('GET', k .. ':total') or '0'
end
local st = {}
local i = 1
local n = 0
while i <= #ARGV do
  n = n + 1
  local ty = ARGV[i]
  if ty == 'R' then
    local rpm = tonumber(ARGV[i + 2])
    local tpm = tonumber(ARGV[i + 3])
    local nr = tonumber(ARGV[i + 4])
    local nt = tonumber(ARGV[i + 5])
    local v = redis.call('HMGET', ARGV[i + 1], 'r', 't', 'ts')
    local ms = now - (tonumber(v[3]) or now)
    if ms < 0 then ms = 0 end
    local r = math.max(0, (tonumber(v[1]) or 0) - rpm * ms)
    local tk = math.max(0, (tonumber(v[2]) or 0) - tpm * ms)
    local why = 0
    local wait = 0
    if rpm > 0 and r + nr > rpm * 60000 then
      why = 1
      wait = math.ceil((r + nr - rpm * 60000) / rpm)
    end
    if tpm > 0 and tk + nt > tpm * 60000 then
      why = why + 2
      wait = math.max(wait, math.ceil((tk + nt - tpm * 60000) / tpm))
    end
    if why > 0 then return {0, n, r, tk, why, wait} end
    st[n] = {r + nr, tk + nt}
    i = i + 6
  elseif ty == 'A' then
    local k = ARGV[i + 1]
    local s = tonumber(redis.call('GET', period(k, i)) or '0')
    if s >= tonumber(ARGV[i + 3]) then
      local a, b, c, d = spend(k, i)
      return {0, n, a, b, c, d}
    end
    i = i + 7
  else
    return redis.error_reply('aigw: invalid reservation')
  end
end
local out = {1, now}
i = 1
n = 0
while i <= #ARGV do
  n = n + 1
  local k = ARGV[i + 1]
  if ARGV[i] == 'R' then
    redis.call('HSET', k, 'r', string.format('%.0f', st[n][1]),
      't', string.format('%.0f', st[n][2]), 'ts', now)
    redis.call('PEXPIRE', k, 120000)
    out[#out + 1] = st[n][1]
    out[#out + 1] = st[n][2]
    i = i + 6
  else
    if ARGV[i + 4] ~= '0' then
      redis.call('INCRBY', k .. ':d:' .. ARGV[i + 5], ARGV[i + 4])
      redis.call('EXPIRE', k .. ':d:' .. ARGV[i + 5], 172800)
      redis.call('INCRBY', k .. ':m:' .. ARGV[i + 6], ARGV[i + 4])
      redis.call('EXPIRE', k .. ':m:' .. ARGV[i + 6], 5356800)
      redis.call('INCRBY', k .. ':total', ARGV[i + 4])
    end
    local a, b, c, d = spend(k, i)
    out[#out + 1] = a
    out[#out + 1] = b
    out[#out + 1] = c
    out[#out + 1] = d
    i = i + 7
  end
end
return out
