-- tollgate leaky bucket (GCRA) step on Redis: one atomic read-modify-write of one key.
-- Design and the exactness argument: docs/redis.md. Called by the tollgate-redis crate and by
-- the Python package's tollgate.redis module (this file is the one copy of the script).
--
-- The state S is a u64 stored as a decimal string (field "s"), next to the fingerprint of the
-- quota it is expressed in (field "q"). Redis Lua numbers are doubles, exact only to 2^53, so a
-- u64 is handled here as two base-10^10 limbs {hi, lo} with hi < 1 844 674 408 and lo < 10^10:
-- every sum, difference and comparison below stays under 2^35, exact in a double. The script
-- never multiplies or divides a u64: the caller precomputes now·D, c·I and now·D + B·I − c·I.
--
-- KEYS[1] the bucket's key
-- ARGV[1] quota fingerprint   ARGV[2] mode: "d" decide, "r" record only (peek, Never)
-- ARGV[3] now·D               ARGV[4] c·I (cost in units)
-- ARGV[5] now·D + B·I − c·I (admit iff max(S, now·D) ≤ this)
-- ARGV[6] milliseconds per unit (a double, for PEXPIRE only)   ARGV[7] grace in milliseconds
-- ARGV[8] now·D + B·I: a full bucket at now, the state a corrupt key is repaired to
-- ARGV[9..11] only after a quota change: the S and fingerprint the caller converted from, and
--             the converted S (compare-and-set: applied only if the key still holds them)
-- Returns {"1", S} with S the state the decision is taken on, {"1", S, "repaired"} when the key
-- held no valid state (another type, a missing or malformed field, a number above 2^64 − 1) and
-- was rewritten as a full bucket at now, or {"0", S, fingerprint} when the key holds another
-- quota's state and the caller must convert it first.
local E = 1e10
local function parse(x)
  local n = #x
  if n <= 10 then return 0, tonumber(x) end
  return tonumber(string.sub(x, 1, n - 10)), tonumber(string.sub(x, n - 9))
end
local function fmt(hi, lo)
  if hi == 0 then return string.format('%.0f', lo) end
  return string.format('%.0f%010.0f', hi, lo)
end
local function le(ah, al, bh, bl)
  return ah < bh or (ah == bh and al <= bl)
end
local function add(ah, al, bh, bl)
  local hi, lo = ah + bh, al + bl
  if lo >= E then return hi + 1, lo - E end
  return hi, lo
end

-- A u64 in canonical decimal: no sign, no leading zero, at most 18446744073709551615.
local function valid(x)
  if type(x) ~= 'string' or not string.find(x, '^[0-9]+$') then return false end
  if #x > 1 and string.sub(x, 1, 1) == '0' then return false end
  return #x < 20 or (#x == 20 and x <= '18446744073709551615')
end

local key, qid, mode = KEYS[1], ARGV[1], ARGV[2]
local cur = redis.pcall('HMGET', key, 's', 'q')
local s, q, repaired = nil, nil, false
if cur.err then
  -- Not a hash (WRONGTYPE): the key is this limiter's, so it is replaced.
  redis.call('DEL', key)
  repaired = true
else
  s, q = cur[1], cur[2]
  if (s or q) and not (valid(s) and type(q) == 'string') then
    repaired = true
  end
end
local dirty = false
if repaired then
  -- Never a fresh bucket (a free burst) and never left unanswerable: a full bucket at now.
  s, q, dirty = ARGV[8], qid, true
elseif not s then
  -- A new key: written even if nothing changes, so it exists from its first decision on.
  s, q, dirty = '0', qid, true
end
if q ~= qid then
  if ARGV[9] ~= s or ARGV[10] ~= q then
    return {'0', s, q}
  end
  s, dirty = ARGV[11], true
end
local sh, sl = parse(s)
local nh, nl = parse(ARGV[3])
local bh, bl = sh, sl
if le(sh, sl, nh, nl) then
  bh, bl = nh, nl
end
local wh, wl
if mode == 'd' then
  local th, tl = parse(ARGV[5])
  if le(bh, bl, th, tl) then
    local ch, cl = parse(ARGV[4])
    wh, wl = add(bh, bl, ch, cl)
  end
end
if wh == nil and not le(nh, nl, sh, sl) then
  -- A later now recorded into a drained bucket (changes no level).
  wh, wl = nh, nl
end
if wh == nil and dirty then
  wh, wl = sh, sl
end
if wh ~= nil then
  redis.call('HSET', key, 's', fmt(wh, wl), 'q', qid)
  -- Expire once drained: (W − now·D) units, in milliseconds. Only this TTL uses floating point,
  -- rounded up with a margin and a grace period; it decides nothing while it is not too short.
  local excess = 0
  if not le(wh, wl, nh, nl) then
    excess = (wh - nh) * E + (wl - nl)
  end
  local ms = math.ceil(excess * tonumber(ARGV[6]) * (1 + 1e-9)) + 1 + tonumber(ARGV[7])
  if ms > 1e15 then ms = 1e15 end
  redis.call('PEXPIRE', key, ms)
end
if repaired then return {'1', s, 'repaired'} end
return {'1', s}
