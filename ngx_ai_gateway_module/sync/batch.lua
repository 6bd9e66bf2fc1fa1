if redis.replicate_commands then redis.replicate_commands() end
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sk = p .. 'seen:' .. ARGV[2]
local apply = tonumber(ARGV[3]) > tonumber(redis.call('GET', sk) or '0')
if apply then redis.call('SET', sk, ARGV[3], 'PX', 604800000) end
local names = {'requests', 'errors', 'input_tokens', 'output_tokens',
  'cost_nano_usd', 'aborted', 'estimated_input_tokens',
  'estimated_cost_nano_usd'}
local out = {apply and 1 or 0, now}
local i = 4
while i <= #ARGV do
  local ty = ARGV[i]
  if ty == 'R' then
    local k = p .. 'r:' .. ARGV[i + 1]
    local rpm = tonumber(ARGV[i + 2])
    local tpm = tonumber(ARGV[i + 3])
    local v = redis.call('HMGET', k, 'r', 't', 'ts')
    local ms = now - (tonumber(v[3]) or now)
    if ms < 0 then ms = 0 end
    local r = math.max(0, (tonumber(v[1]) or 0) - rpm * ms)
    local tk = math.max(0, (tonumber(v[2]) or 0) - tpm * ms)
    if apply and (ARGV[i + 4] ~= '0' or ARGV[i + 5] ~= '0') then
      r = math.max(0, r + tonumber(ARGV[i + 4]))
      tk = math.max(0, tk + tonumber(ARGV[i + 5]))
      redis.call('HSET', k, 'r', string.format('%.0f', r),
        't', string.format('%.0f', tk), 'ts', now)
      redis.call('PEXPIRE', k, 120000)
    end
    out[#out + 1] = r
    out[#out + 1] = tk
    i = i + 6
  elseif ty == 'L' then
    if apply then
      local k = p .. 'l:' .. ARGV[i + 1]
      redis.call('HSET', k, 'key', ARGV[i + 2], 'route', ARGV[i + 3],
        'model', ARGV[i + 4])
      for j = 1, 8 do
        if ARGV[i + 4 + j] ~= '0' then
          redis.call('HINCRBY', k, names[j], ARGV[i + 4 + j])
        end
      end
    end
    i = i + 13
  elseif ty == 'A' then
    local k = p .. 'a:' .. ARGV[i + 1]
    if apply then
      if ARGV[i + 4] ~= '0' then
        redis.call('INCRBY', k .. ':d:' .. ARGV[i + 2], ARGV[i + 4])
        redis.call('EXPIRE', k .. ':d:' .. ARGV[i + 2], 172800)
      end
      if ARGV[i + 5] ~= '0' then
        redis.call('INCRBY', k .. ':m:' .. ARGV[i + 3], ARGV[i + 5])
        redis.call('EXPIRE', k .. ':m:' .. ARGV[i + 3], 5356800)
      end
      if ARGV[i + 6] ~= '0' then
        redis.call('INCRBY', k .. ':total', ARGV[i + 6])
      end
    end
    out[#out + 1] = redis.call('GET', k .. ':d:' .. ARGV[i + 7]) or '0'
    out[#out + 1] = redis.call('GET', k .. ':m:' .. ARGV[i + 8]) or '0'
    out[#out + 1] = redis.call('GET', k .. ':total') or '0'
    i = i + 9
  elseif ty == 'T' then
    local k = p .. 'totals'
    for j = 1, 8 do
      if apply and ARGV[i + j] ~= '0' then
        redis.call('HINCRBY', k, names[j], ARGV[i + j])
      end
    end
    local v = redis.call('HMGET', k, unpack(names))
    for j = 1, 8 do out[#out + 1] = v[j] or '0' end
    i = i + 9
  else
    return redis.error_reply('aigw: invalid batch')
  end
end
return out
