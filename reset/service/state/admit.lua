-- Admit: one decision of the PIN reset service, atomically.
--
-- KEYS: epoch, then the lockout keys, the one-time ID keys, the bucket keys.
-- ARGV: now (unix ms, or "" for the server's TIME), issued-at (unix ms, or
--       "" to skip the epoch check), #locks, #once, #buckets, then one
--       expiry (unix ms) per one-time ID, then burst and period (ms) per
--       bucket.
-- Answers {outcome, index, retry-after ms}; the outcome numbers are the Go
-- Outcome constants. Nothing is written unless the outcome is 0 (admitted),
-- except the epoch, which the first call after the keyspace was emptied
-- sets.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local nl, no, nb = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local epoch = redis.call('GET', KEYS[1])
if epoch then
  epoch = tonumber(epoch)
else
  epoch = now
  redis.call('SET', KEYS[1], now)
end
if ARGV[2] ~= '' and tonumber(ARGV[2]) < epoch then
  return {1, 0, 0}
end

local lk = 2          -- first lockout key
local ok = lk + nl    -- first one-time ID key
local bk = ok + no    -- first bucket key
local oa = 6          -- first expiry argument
local ba = oa + no    -- first bucket argument

for i = 1, nl do
  local lock_end = redis.call('GET', KEYS[lk + i - 1])
  if lock_end and tonumber(lock_end) > now then
    return {2, i - 1, tonumber(lock_end) - now}
  end
end

for i = 1, no do
  if tonumber(ARGV[oa + i - 1]) <= now then
    return {4, i - 1, 0}
  end
  local key = KEYS[ok + i - 1]
  local seen = redis.call('GET', key)
  if seen and tonumber(seen) > now then
    return {3, i - 1, 0}
  end
  for j = 1, i - 1 do
    if KEYS[ok + j - 1] == key then
      return {3, i - 1, 0}
    end
  end
end

local tokens = {}
for i = 1, nb do
  local burst = tonumber(ARGV[ba + 2 * (i - 1)])
  local per = tonumber(ARGV[ba + 2 * (i - 1) + 1])
  local key = KEYS[bk + i - 1]
  local st = redis.call('HMGET', key, 't', 'l')
  local t = burst
  if st[1] then
    t = tonumber(st[1])
    local el = now - tonumber(st[2])
    if el > 0 then
      t = t + el * burst / per
    end
    t = math.min(t, burst)
  end
  for j = 1, i - 1 do
    if KEYS[bk + j - 1] == key then
      t = t - 1
    end
  end
  if t < 1 then
    return {6, i - 1, math.ceil((1 - t) * per / burst)}
  end
  tokens[i] = t
end

for i = 1, no do
  local exp = tonumber(ARGV[oa + i - 1])
  redis.call('SET', KEYS[ok + i - 1], exp, 'PX', exp - now)
end
for i = 1, nb do
  local per = tonumber(ARGV[ba + 2 * (i - 1) + 1])
  local key = KEYS[bk + i - 1]
  redis.call('HSET', key, 't', tostring(tokens[i] - 1), 'l', now)
  redis.call('PEXPIRE', key, per)
end
return {0, 0, 0}
