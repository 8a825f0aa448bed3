-- tollgate fixed window step on Redis: one atomic read-modify-write of one key.
-- Design: docs/redis.md. Called by the tollgate-redis crate and by the Python package's
-- tollgate.redis module (this file is the one copy of the script).
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
-- Returns {"1", index, count}: the state the decision is taken on; {"1", index, count,
-- "repaired"} when the key held no valid state (another type, a missing or malformed field, a
-- count above N) and was rewritten as a full window (the stored window if its index was valid
-- and later than now's, else now's); or {"0", index, count, fingerprint} when the caller must
-- convert first.
local function gt(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end

-- A u64 in canonical decimal: no sign, no leading zero, at most 18446744073709551615.
local function valid(x)
  if type(x) ~= 'string' or not string.find(x, '^[0-9]+$') then return false end
  if #x > 1 and string.sub(x, 1, 1) == '0' then return false end
  return #x < 20 or (#x == 20 and x <= '18446744073709551615')
end

local key, qid, mode = KEYS[1], ARGV[1], ARGV[2]
local cur = redis.pcall('HMGET', key, 'i', 'c', 'q')
local i, c, q, repaired = nil, nil, nil, false
if cur.err then
  -- Not a hash (WRONGTYPE): the key is this limiter's, so it is replaced.
  redis.call('DEL', key)
  repaired = true
else
  i, c, q = cur[1], cur[2], cur[3]
  if (i or c or q) and not (valid(i) and valid(c) and type(q) == 'string') then
    repaired = true
  elseif q == qid and (#c > 10 or tonumber(c) > tonumber(ARGV[5])) then
    -- More than this quota's N counted under its own fingerprint: no valid state says that.
    repaired = true
  end
end
local dirty = false
if repaired then
  -- Never a fresh window (a free burst) and never left unanswerable: a full window, in the
  -- stored window when its index is valid and later than now's (time seen ahead), else now's.
  local win = ARGV[3]
  if valid(i) and gt(i, win) then win = i end
  i, c, q, dirty = win, ARGV[5], qid, true
elseif not i then
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
  if (dirty and not repaired) or not gt(wi, now_i) then
    -- A window later than now's (time went backwards) keeps the TTL it was given, unless this
    -- call created or converted the key (the caller then sent the TTL of the window written).
    -- A key repaired into a later window keeps its TTL (none if it had none): the caller's TTL
    -- is to the end of now's window, too short for it; the key expires after its first
    -- decision in a later window.
    redis.call('PEXPIRE', key, ARGV[6])
  end
end
if repaired then return {'1', i, c, 'repaired'} end
return {'1', i, c}
