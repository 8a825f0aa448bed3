-- Unit tests of lua/resty/tollgate.lua under plain LuaJIT (no nginx):
--   TOLLGATE_LIB=target/release/libtollgate.so luajit lua/tests/test_binding.lua
package.path = (os.getenv("TOLLGATE_LUA_PATH") or "") .. "lua/?.lua;" .. package.path
local ffi = require "ffi"
local tg = require "resty.tollgate"
local cdefs = require "resty.tollgate.cdefs"
tg.load()

local failures, checks = 0, 0
local function eq(got, want, what)
    checks = checks + 1
    if got ~= want then
        failures = failures + 1
        print(("FAIL %s: got %s, want %s"):format(what, tostring(got), tostring(want)))
    end
end

local TPS = tg.TICKS_PER_SECOND
local SEC = TPS

-- The header's table signatures are what the split-key declarations assume.
local function squash(s) return (s:gsub("%s+", " ")) end
local cdef = squash(cdefs.cdef)
for _, fn in ipairs { "tg_table_decide", "tg_table_peek" } do
    eq(cdef:find(fn .. "%(struct tg_table %*table, struct tg_key key, size_t tier, uint64_t now, "
        .. "uint64_t cost, struct tg_decision %*out%);") ~= nil, true,
        fn .. " has the signature the split-key declaration assumes")
end
eq(cdef:find("typedef struct tg_key { uint64_t hi; uint64_t lo; } tg_key;", 1, true) ~= nil, true,
    "tg_key is { hi, lo }")
eq(tg.lib.tg_version_number(), 10000 * tg.constants.TG_VERSION_MAJOR
    + 100 * tg.constants.TG_VERSION_MINOR + tg.constants.TG_VERSION_PATCH, "library version")

-- Ids.
eq(tg.parse_id("0"), 0, "id 0")
eq(tg.parse_id("123456789012345"), 123456789012345, "15 digits stay a number")
eq(tostring(tg.parse_id("18446744073709551615")), "18446744073709551615ULL", "u64 max")
eq(tostring(tg.parse_id("1234567890123456789")), "1234567890123456789ULL", "19 digits")
eq(tostring(tg.parse_id("00000000000000000001")), "1ULL", "leading zeros")
for _, bad in ipairs { "", "-1", "+1", " 1", "1 ", "1.0", "0x10", "18446744073709551616",
    "99999999999999999999", "123456789012345678901", "abc" } do
    eq(tg.parse_id(bad), nil, "malformed id '" .. bad .. "'")
end
eq(tg.parse_id(nil), nil, "absent id")

-- Exact key packing equals the engine's.
do
    local k = tg.lib.tg_key_triple(7, 123456789, 9)
    local hi, lo = tg.key_triple(7, 123456789, 9)
    eq(k.hi, ffi.cast("uint64_t", hi), "key_triple hi")
    eq(k.lo, ffi.cast("uint64_t", lo), "key_triple lo")
end

-- ShopBase: 30 at once, then 2/s; the numbers and headers.
do
    local t = tg.bucket_table { capacity = 64, tiers = { { burst = 30, count = 2, period = SEC } },
        shared = false }
    local d
    for i = 1, 30 do
        d = t:decide(1, 2, 0, 1000, 1)
        eq(d.outcome, tg.ALLOWED, "shopbase request " .. i)
    end
    eq(tg.header_call_limit(d), "30/30", "call limit after 30")
    eq(tg.header_ratelimit(d, "shopbase"), '"shopbase";r=0;t=15', "RateLimit after 30")
    eq(tg.header_retry_after(d), nil, "no Retry-After when allowed")
    d = t:decide(1, 2, 0, 1000, 1)
    eq(d.outcome, tg.LIMITED, "31st limited")
    eq(tonumber(d.retry_after), SEC / 2, "31st retry_after 0.5 s")
    eq(tg.header_retry_after(d), "1", "Retry-After rounds up")
    eq(tg.http_status(d.outcome), 429, "limited is 429")
    d = t:decide(1, 2, 0, 1000 + SEC / 2, 1)
    eq(d.outcome, tg.ALLOWED, "one more after 0.5 s")
    eq(tg.header_ratelimit_policy_bucket(t:quota(0), "shopbase"), '"shopbase";q=30;w=15',
        "RateLimit-Policy")
    d = t:decide(1, 3, 0, 1000, 1)
    eq(d.outcome, tg.ALLOWED, "another key has its own bucket")
    eq(t:stats().occupied, 2, "two keys occupied")
    -- Shadow mode.
    d = t:decide(1, 2, 0, 1000 + SEC / 2, 1)
    eq(d.outcome, tg.LIMITED, "limited again")
    tg.shadow(d)
    eq(d.outcome, tg.ALLOWED, "shadow passes")
    eq(tg.would_limit(d), true, "shadow keeps the verdict")
    eq(bit.band(d.flags, tg.FLAG_SHADOW) ~= 0, true, "shadow flag")
    -- An error is a status returned, not an exception.
    local r, err = t:decide(1, 2, 5, 1000, 1)
    eq(r == nil and err ~= nil, true, "a tier out of range is reported: " .. tostring(err))
end

-- TikTok Shop: 50 per 1 s window.
do
    local t = tg.window_table { capacity = 64, tiers = { { limit = 50, window = SEC } },
        shared = false }
    local hi, lo = t:key_ids_bytes(7, 8, "/api/orders/search")
    local hi2, lo2 = t:key_ids_bytes(7, 8, "/api/orders/get")
    eq(hi ~= hi2 or lo ~= lo2, true, "different APIs, different keys")
    local admitted = 0
    for _ = 1, 80 do
        if t:decide(hi, lo, 0, 5 * SEC + 10, 1).outcome == tg.ALLOWED then admitted = admitted + 1 end
    end
    eq(admitted, 50, "50 per window")
    local d = t:decide(hi, lo, 0, 5 * SEC + 10, 1)
    eq(tonumber(d.retry_after), SEC - 10, "retry at the window's end")
    eq(t:decide(hi, lo, 0, 6 * SEC, 1).outcome, tg.ALLOWED, "next window")
    eq(tg.header_ratelimit_policy_window(50, SEC, "tiktok"), '"tiktok";q=50;w=1', "tiktok policy")
end

-- Split and by-value declarations decide identically.
do
    local opts = { capacity = 256, tiers = { { burst = 5, count = 3, period = SEC },
        { burst = 9, count = 1, period = SEC } }, seed = { 1, 2 }, shared = false }
    local a, b = tg.bucket_table(opts), tg.bucket_table(opts)
    local same = true
    math.randomseed(42)
    local now = 0
    for _ = 1, 20000 do
        now = now + math.random(0, 200000)
        local hi = math.random(1, 3)
        local lo = ffi.cast("uint64_t", math.random(1, 50)) * 0x100000000ULL
        local tier = math.random(0, 1)
        local x = a:decide(hi, lo, tier, now, 1)
        local y = b:decide_by_value(hi, lo, tier, now, 1)
        if x.outcome ~= y.outcome or x.used ~= y.used or x.retry_after ~= y.retry_after
            or x.reset_after ~= y.reset_after then
            same = false
        end
    end
    eq(same, true, "split-key (" .. tostring(tg.split_key_abi) .. ") and by-value agree")
end

-- Cached header values equal the engine's, for every decision of a long random run.
do
    local t = tg.bucket_table { capacity = 64, tiers = { { burst = 30, count = 2, period = SEC } },
        shared = false }
    local w = tg.window_table { capacity = 64, tiers = { { limit = 50, window = SEC } },
        shared = false }
    local vb, vw = tg.header_values("shopbase"), tg.header_values("tiktok")
    local same, now = true, 0
    math.randomseed(7)
    for _ = 1, 50000 do
        now = now + math.random(0, 300000)
        for _, pair in ipairs { { t, vb }, { w, vw } } do
            local d = pair[1]:decide(1, math.random(1, 3), 0, now, 1)
            if pair[2]:call_limit(d) ~= tg.header_call_limit(d)
                or pair[2]:ratelimit(d) ~= tg.header_ratelimit(d, pair[2].name) then
                same = false
            end
        end
    end
    eq(same, true, "cached header values are the engine's")
end

-- Full table: fail-closed answers Overloaded; fail-open passes, flagged.
for _, mode in ipairs { "fail_closed", "fail_open" } do
    local t = tg.bucket_table { capacity = 4, tiers = { { burst = 30, count = 2, period = SEC } },
        full = mode, shared = false }
    local refused, flagged = 0, 0
    for k = 1, 40 do
        local d = t:decide(1, k, 0, 0, 1)
        if d.verdict == tg.OVERLOADED then refused = refused + 1 end
        if bit.band(d.flags, tg.FLAG_FAIL_OPEN) ~= 0 then flagged = flagged + 1 end
        if mode == "fail_closed" and d.verdict == tg.OVERLOADED then
            eq(d.outcome, tg.OVERLOADED, "fail-closed outcome")
            eq(tg.http_status(d.outcome), 503, "fail-closed is 503")
        end
    end
    eq(refused > 0, true, mode .. ": a full table refuses new keys")
    eq(t:stats().rejected, refused, mode .. ": counted")
    eq(flagged, mode == "fail_open" and refused or 0, mode .. ": fail-open flagged")
end

-- Pagination.
eq(tg.pagination_check_query("limit=250&page=401"), tg.NEVER, "page 401 too deep")
eq(tg.pagination_check_query("limit=250&page=400"), tg.ALLOWED, "page 400 fine")
eq(select(2, tg.pagination_check_query("limit=x&page=1")), "malformed", "malformed query")
eq(tg.pagination_check(4294967296, 4294967296), tg.NEVER, "no wrap")

-- Shared memory: one table for a parent and the children it forks afterwards.
do
    ffi.cdef [[ int fork(void); int waitpid(int pid, int *status, int options); void _exit(int);
                int getpid(void); ]]
    local t = tg.bucket_table { capacity = 64, tiers = { { burst = 30, count = 2, period = SEC } } }
    local now = 777 * SEC
    local pids = {}
    for c = 1, 3 do
        local pid = ffi.C.fork()
        if pid == 0 then
            for _ = 1, 7 do t:decide(5, 6, 0, now, 1) end
            ffi.C._exit(0)
        end
        pids[c] = pid
    end
    for _, pid in ipairs(pids) do
        local st = ffi.new("int[1]")
        ffi.C.waitpid(pid, st, 0)
    end
    local admitted = 0
    for _ = 1, 20 do
        if t:decide(5, 6, 0, now, 1).outcome == tg.ALLOWED then admitted = admitted + 1 end
    end
    eq(admitted, 30 - 21, "three forked children spent 21 of the same 30")
end

-- Shared regions: processes that open one path by name share one bucket; other parameters
-- are refused with a message naming the difference; an anonymous region is inherited.
do
    local path = ("/tmp/tollgate-lua-test-%d-%d"):format(ffi.C.getpid(), math.random(1e9))
    local b = tg.shared_bucket { path = path, burst = 30, count = 2, period = SEC, create = "new" }
    eq(b:created(), true, "the first open creates the region")
    local now = 900 * SEC
    local pids = {}
    for c = 1, 3 do
        local pid = ffi.C.fork()
        if pid == 0 then
            local mine = tg.shared_bucket { path = path, burst = 30, count = 2, period = SEC,
                create = "existing" }
            for _ = 1, 7 do mine:decide(now, 1) end
            ffi.C._exit(mine:created() and 1 or 0)
        end
        pids[c] = pid
    end
    local clean = true
    for _, pid in ipairs(pids) do
        local st = ffi.new("int[1]")
        ffi.C.waitpid(pid, st, 0)
        clean = clean and st[0] == 0
    end
    eq(clean, true, "the children opened the existing region")
    local admitted = 0
    for _ = 1, 20 do
        if b:decide(now, 1).outcome == tg.ALLOWED then admitted = admitted + 1 end
    end
    eq(admitted, 30 - 21, "three processes opening the path spent 21 of the same 30")
    local ok, err = pcall(tg.shared_bucket, { path = path, burst = 31, count = 2, period = SEC })
    eq(not ok and tostring(err):find("burst", 1, true) ~= nil, true,
        "another burst is refused, named: " .. tostring(err))
    b:close()
    os.remove(path)

    local w = tg.shared_window { limit = 50, window = SEC }
    local pid = ffi.C.fork()
    if pid == 0 then
        for _ = 1, 20 do w:decide(now, 1) end
        ffi.C._exit(0)
    end
    ffi.C.waitpid(pid, ffi.new("int[1]"), 0)
    admitted = 0
    for _ = 1, 50 do
        if w:decide(now, 1).outcome == tg.ALLOWED then admitted = admitted + 1 end
    end
    eq(admitted, 30, "an anonymous window region is shared with a forked child")
end

eq(tg.cross_process_atomics(), true, "this processor's 128-bit atomics work across processes")

-- The clock is monotonic microseconds.
do
    local a = tg.now()
    local b = tg.now()
    eq(b >= a, true, "monotonic")
    eq(a % 1 == 0 and a > 0, true, "whole microseconds")
end

print(("binding: %d checks, %d failed (split-key ABI: %s)"):format(checks, failures,
    tostring(tg.split_key_abi)))
os.exit(failures == 0 and 0 or 1)
