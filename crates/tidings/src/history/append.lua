local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[1], epoch)
end
local max_age = tonumber(ARGV[4])
local due = max_age - tonumber(ARGV[5])
local maintained = {}
local reply = {epoch}
for i = 2, #KEYS, 2 do
  local stream, seen = KEYS[i], KEYS[i + 1]
  local publish_on, payload = ARGV[4 + i], ARGV[5 + i]
  local id = redis.call('GET', seen)
  if not id then
    id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[1], '*', 'd', payload)
    redis.call('SET', seen, id, 'PX', ARGV[2])
    if max_age > 0 and not maintained[stream] then
      maintained[stream] = true
      if redis.call('PTTL', stream) < due then
        local now = redis.call('TIME')
        local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - max_age
        if cutoff > 0 then
          redis.call('XTRIM', stream, 'MINID', '~', string.format('%d', cutoff))
        end
        redis.call('PEXPIRE', stream, max_age)
      end
    end
  end
  reply[#reply + 1] = id
  if publish_on ~= '' then
    reply[#reply + 1] = redis.call('PUBLISH', publish_on, payload)
  else
    reply[#reply + 1] = -1
  end
end
return reply
