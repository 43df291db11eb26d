-- Sliding window counter (the limits library's strategy): the previous
-- window's count is weighted by how much of it still overlaps the sliding
-- window. Window keys are named by window index by the caller, so there is no
-- rename and the read-check-increment is atomic here.
-- KEYS[1] previous window, KEYS[2] current window
-- ARGV[1] limit, ARGV[2] amount, ARGV[3] previous weight (0..1), ARGV[4] ttl ms
local limit = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local weight = tonumber(ARGV[3])
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if math.floor(previous * weight) + current + amount > limit then
  return {0, previous, current}
end
current = redis.call('INCRBY', KEYS[2], amount)
if current == amount then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
-- The counts come back with the verdict, so the caller needs no second round
-- trip for the RateLimit headers.
return {1, previous, current}
