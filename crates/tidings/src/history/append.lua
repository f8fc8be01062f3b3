-- KEYS: per message: its channel's epoch, stream, seen key (one hash tag,
-- {ws:CHANNEL}, so one message's keys sit in one Redis Cluster slot).
-- ARGV: max_len, dedup ms, new epoch, max_age ms, maintain every ms, then
-- per message: channel to publish on ('' for none), payload.
-- Returns {epoch_1, id_1, receivers_1, ..., epoch_n, id_n, receivers_n},
-- receivers -1 when not published.
local max_age = tonumber(ARGV[4])
local due = max_age - tonumber(ARGV[5])
local maintained = {}
local reply = {}
for i = 1, #KEYS, 3 do
  local epoch_key, stream, seen = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  local m = (i - 1) / 3
  local publish_on, payload = ARGV[6 + 2 * m], ARGV[7 + 2 * m]
  local epoch = redis.call('GET', epoch_key)
  if not epoch then
    epoch = ARGV[3]
    redis.call('SET', epoch_key, epoch)
  end
  local id = redis.call('GET', seen)
  if not id then
    id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[1], '*', 'd', payload)
    redis.call('SET', seen, id, 'PX', ARGV[2])
    if max_age > 0 and not maintained[stream] then
      maintained[stream] = true
      if redis.call('PTTL', stream) < due or redis.call('PTTL', epoch_key) < due then
        local now = redis.call('TIME')
        local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - max_age
        if cutoff > 0 then
          redis.call('XTRIM', stream, 'MINID', '~', string.format('%d', cutoff))
        end
        redis.call('PEXPIRE', stream, max_age)
        redis.call('PEXPIRE', epoch_key, max_age)
      end
    end
  end
  reply[#reply + 1] = epoch
  reply[#reply + 1] = id
  if publish_on ~= '' then
    reply[#reply + 1] = redis.call('PUBLISH', publish_on, payload)
  else
    reply[#reply + 1] = -1
  end
end
return reply
