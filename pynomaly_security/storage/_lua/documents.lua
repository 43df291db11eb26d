-- Documents with indexed fields (storage/redis.py RedisDocuments), one atomic step.
-- A document is a hash of its top-level fields, each a JSON text written by Python.
-- The JSON texts of its indexed fields, joined as a JSON array, are its "combo":
-- a sorted set of ids per combo and a tally of documents per combo answer
-- queries and counts without reading the documents.
-- KEYS[1] ids by age (zset), KEYS[2] combo of each id (hash), KEYS[3] documents
-- per combo (hash), KEYS[4] age counter.
-- ARGV[1] 'put' | 'add' | 'update', ARGV[2] prefix of document and combo keys, ARGV[3] id,
-- ARGV[4] keep (put, add) or number of only_if pairs (update), ARGV[5] number n of
-- indexed fields, ARGV[6 .. 5+n] their names, then field/JSON pairs (update:
-- the only_if pairs first, then the changes).
-- Returns: put 1; add 1, or 0 when the id exists (nothing written); update the
-- document's fields as they are after it (a flat HGETALL list), or 0 for an unknown id.
local prefix, id = ARGV[2], ARGV[3]
local n = tonumber(ARGV[5])
local first = 6 + n

local function combo(doc)
  local parts = {}
  for i = 1, n do
    parts[i] = redis.call('HGET', doc, ARGV[5 + i]) or 'null'
  end
  return '[' .. table.concat(parts, ',') .. ']'
end

local function unindex(member)
  local old = redis.call('HGET', KEYS[2], member)
  if old then
    redis.call('ZREM', prefix .. 'c:' .. old, member)
    if redis.call('HINCRBY', KEYS[3], old, -1) <= 0 then
      redis.call('HDEL', KEYS[3], old)
    end
    redis.call('HDEL', KEYS[2], member)
  end
end

local function index(member, doc, seq)
  local c = combo(doc)
  redis.call('HSET', KEYS[2], member, c)
  redis.call('HINCRBY', KEYS[3], c, 1)
  redis.call('ZADD', prefix .. 'c:' .. c, seq, member)
end

local doc = prefix .. 'd:' .. id
if ARGV[1] == 'add' and redis.call('EXISTS', doc) == 1 then
  return 0
end
if ARGV[1] == 'put' or ARGV[1] == 'add' then
  unindex(id)
  redis.call('DEL', doc)
  for i = first, #ARGV, 2 do
    redis.call('HSET', doc, ARGV[i], ARGV[i + 1])
  end
  local seq = redis.call('INCR', KEYS[4])
  redis.call('ZADD', KEYS[1], seq, id)
  index(id, doc, seq)
  local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
  if extra > 0 then
    for _, old in ipairs(redis.call('ZRANGE', KEYS[1], 0, extra - 1)) do
      unindex(old)
      redis.call('DEL', prefix .. 'd:' .. old)
    end
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
  end
  return 1
end

if redis.call('EXISTS', doc) == 0 then
  return 0
end
local changes = first + 2 * tonumber(ARGV[4])
for i = first, changes - 1, 2 do
  if (redis.call('HGET', doc, ARGV[i]) or 'null') ~= ARGV[i + 1] then
    return redis.call('HGETALL', doc)
  end
end
if changes <= #ARGV then
  local seq = redis.call('ZSCORE', KEYS[1], id)
  unindex(id)
  for i = changes, #ARGV, 2 do
    redis.call('HSET', doc, ARGV[i], ARGV[i + 1])
  end
  index(id, doc, seq)
end
return redis.call('HGETALL', doc)
