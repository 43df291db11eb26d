-- Add to a counter; the TTL is set when the counter is created (a fixed window
-- that starts at the first hit), so one round trip does both atomically.
-- KEYS[1] counter; ARGV[1] amount; ARGV[2] ttl in milliseconds
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
