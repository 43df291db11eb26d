-- Bounded logs by stream (storage/redis.py RedisLog): one list per stream, newest
-- first, trimmed to its most entries; a sorted set of streams ordered by last
-- append, trimmed to its most streams (a dropped stream's list is deleted).
-- KEYS[1] streams (zset), KEYS[2] append counter.
-- ARGV[1] prefix of the lists, ARGV[2] entries per stream, ARGV[3] streams,
-- then per chunk: stream, n, n entries (oldest first).
local prefix = ARGV[1]
local max_entries = tonumber(ARGV[2])
local i = 4
while i <= #ARGV do
  local stream, n = ARGV[i], tonumber(ARGV[i + 1])
  local list = prefix .. stream
  for j = i + 2, i + 1 + n do
    redis.call('LPUSH', list, ARGV[j])
  end
  redis.call('LTRIM', list, 0, max_entries - 1)
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), stream)
  i = i + 2 + n
end
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if extra > 0 then
  for _, stream in ipairs(redis.call('ZRANGE', KEYS[1], 0, extra - 1)) do
    redis.call('DEL', prefix .. stream)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
end
return 1
