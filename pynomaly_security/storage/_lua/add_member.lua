-- Distinct members seen within a window: a sorted set scored by time. Old
-- members are trimmed, the set is capped, and its TTL follows the window.
-- KEYS[1] set; ARGV[1] member, ARGV[2] now (s), ARGV[3] window (s), ARGV[4] cap
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[4])
if count > cap then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, count - cap - 1)
  count = cap
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return count
