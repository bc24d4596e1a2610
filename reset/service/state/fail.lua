-- Fail: count one failure and lock out when the policy says so.
--
-- KEYS: the failure window (a sorted set of times), the lockout (its end).
-- ARGV: now (unix ms, or "" for the server's TIME), failures, window ms,
--       base ms, max ms, how many failure times to keep at most.
-- Answers {failures in the window, lockout end in unix ms or 0}.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local failures, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local base, max, keep = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
-- The member only has to be unique: the time and the count so far.
redis.call('ZADD', KEYS[1], now, now .. ':' .. redis.call('ZCARD', KEYS[1]))
local n = redis.call('ZCARD', KEYS[1])
if n > keep then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - keep - 1)
  n = keep
end
redis.call('PEXPIRE', KEYS[1], window)

local d = 0
if n >= failures then
  d = base
  for i = failures, n - 1 do
    if d >= max then break end
    d = d * 2
  end
  if d > max then d = max end
end
local lock_end = tonumber(redis.call('GET', KEYS[2]) or '0')
if d > 0 and now + d > lock_end then
  lock_end = now + d
  redis.call('SET', KEYS[2], lock_end, 'PX', d)
end
if lock_end <= now then lock_end = 0 end
return {n, lock_end}
