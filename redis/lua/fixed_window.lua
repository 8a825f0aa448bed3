-- tollgate fixed window step on Redis: one atomic read-modify-write of one key.
-- Design: docs/redis.md. Called by the tollgate-redis crate.
--
-- Fields: "i" the window index (a u64 as a decimal string, compared as a string: by length,
-- then lexicographically; no arithmetic), "c" the count (at most 2^32 − 1, so count + cost
-- stays under 2^33, exact in a double), "q" the quota fingerprint.
--
-- KEYS[1] the window's key
-- ARGV[1] quota fingerprint   ARGV[2] mode: "d" decide, "r" record only (peek, Never)
-- ARGV[3] index of the window holding now   ARGV[4] cost   ARGV[5] limit N
-- ARGV[6] milliseconds to keep the key (to the end of now's window, or of the converted window
--         if later, plus grace)
-- ARGV[7..11] only after a quota change: the index, count and fingerprint the caller converted
--             from, and the converted index and count (compare-and-set)
-- Returns {"1", index, count}: the state the decision is taken on, or
-- {"0", index, count, fingerprint} when the caller must convert first.
local function gt(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end

local key, qid, mode = KEYS[1], ARGV[1], ARGV[2]
local cur = redis.call('HMGET', key, 'i', 'c', 'q')
local i, c, q = cur[1], cur[2], cur[3]
local dirty = false
if not i then
  -- A new key: written even if nothing changes, so it exists from its first decision on.
  i, c, q, dirty = '0', '0', qid, true
end
if q ~= qid then
  if ARGV[7] ~= i or ARGV[8] ~= c or ARGV[9] ~= q then
    return {'0', i, c, q}
  end
  i, c, dirty = ARGV[10], ARGV[11], true
end
local now_i = ARGV[3]
local later = gt(now_i, i)
local win, count = i, tonumber(c)
if later then
  win, count = now_i, 0
end
local wi, wc
if mode == 'd' and count + tonumber(ARGV[4]) <= tonumber(ARGV[5]) then
  wi, wc = win, count + tonumber(ARGV[4])
elseif later then
  wi, wc = now_i, 0
elseif dirty then
  wi, wc = i, tonumber(c)
end
if wi ~= nil then
  redis.call('HSET', key, 'i', wi, 'c', string.format('%.0f', wc), 'q', qid)
  if dirty or not gt(wi, now_i) then
    -- A window later than now's (time went backwards) keeps the TTL it was given, unless this
    -- call created or converted the key (the caller then sent the TTL of the window written).
    redis.call('PEXPIRE', key, ARGV[6])
  end
end
return {'1', i, c}
