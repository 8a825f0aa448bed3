-- LuaJIT FFI binding of libtollgate: leaky buckets, fixed windows, key tables with tiers,
-- header values, the deep-pagination rule, a monotonic microsecond clock, and memory shared by
-- the processes forked after it is mapped (nginx workers).
--
-- The C declarations come from lua/resty/tollgate/cdefs.lua, generated from include/tollgate.h
-- (lua/tools/gen_cdefs.py; the nginx test suite fails if it is stale). This module adds no
-- semantics of its own: every number is the engine's (docs/semantics.md).
--
-- Works under plain LuaJIT as well as inside nginx; nothing here uses `ngx`.

local ffi = require "ffi"
local bit = require "bit"
local cdefs = require "resty.tollgate.cdefs"

local C = ffi.C
local tonumber = tonumber
local ffi_string = ffi.string
local ffi_cast = ffi.cast
local error = error
local type = type
local byte = string.byte

local _M = { _VERSION = cdefs.header_version }

-- The header's constants (TG_*), and its enum values through ffi.C.
_M.constants = cdefs.constants
local K = cdefs.constants

-- Declarations are global to the LuaJIT state: declare once, even if this module is loaded
-- again (package.loaded cleared in a test, two copies on the path).
if not pcall(ffi.typeof, "struct tg_decision") then
    ffi.cdef(cdefs.cdef)
end

-- libc: the monotonic clock and anonymous shared mappings.
if not pcall(ffi.typeof, "struct tollgate_timespec") then
    ffi.cdef [[
        struct tollgate_timespec { long tv_sec; long tv_nsec; };
        int clock_gettime(int clk_id, struct tollgate_timespec *tp);
        void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset);
        int munmap(void *addr, size_t length);
    ]]
end

-- The table functions take `struct tg_key` (two uint64_t) by value. LuaJIT's JIT compiler does
-- not compile calls with a struct argument by value (NYI: the trace aborts and the whole
-- handler runs interpreted, ~5x slower). On the System V x86-64 and AArch64 calling
-- conventions a 16-byte struct of two integers travels exactly like two uint64_t arguments
-- (hi then lo, in two registers), so on those targets the same symbols are also declared with
-- the key split; elsewhere the by-value declaration is used. lua/tests/test_binding.lua checks
-- that both give identical decisions and that the header's signatures still match these.
local split_abi = ffi.abi("64bit") and ffi.abi("le") and ffi.os ~= "Windows"
    and (jit.arch == "x64" or jit.arch == "arm64")
if not pcall(ffi.typeof, "struct tollgate_split_marker") then
    ffi.cdef [[
        struct tollgate_split_marker { int unused; };
        tg_status tollgate_table_decide_split(struct tg_table *table, uint64_t key_hi,
            uint64_t key_lo, size_t tier, uint64_t now, uint64_t cost,
            struct tg_decision *out) __asm__("tg_table_decide");
        tg_status tollgate_table_peek_split(struct tg_table *table, uint64_t key_hi,
            uint64_t key_lo, size_t tier, uint64_t now, uint64_t cost,
            struct tg_decision *out) __asm__("tg_table_peek");
    ]]
end
_M.split_key_abi = split_abi

local decision_t = ffi.typeof("struct tg_decision")
local decision_arr_t = ffi.typeof("struct tg_decision[1]")
local key_t = ffi.typeof("struct tg_key")
local quota_arr_t = ffi.typeof("struct tg_quota[?]")
local wquota_arr_t = ffi.typeof("struct tg_window_quota[?]")
local table_pp_t = ffi.typeof("struct tg_table *[1]")
local stats_t = ffi.typeof("struct tg_table_stats[1]")
local size_t_arr_t = ffi.typeof("size_t[1]")
local u64_arr_t = ffi.typeof("uint64_t[1]")
local outcome_arr_t = ffi.typeof("uint32_t[1]")
local timespec_t = ffi.typeof("struct tollgate_timespec[1]")
local u64_t = ffi.typeof("uint64_t")

----------------------------------------------------------------------------------------------
-- Loading the library

local lib -- the ffi namespace of libtollgate once loaded

--- Loads libtollgate. `path` first, then $TOLLGATE_LIB, then the loader's search path
--- ("tollgate": libtollgate.so on LD_LIBRARY_PATH, /usr/local/lib, ...). Loading twice is a
--- no-op. Checks that the library's version is the one the declarations were generated for.
function _M.load(path)
    if lib then
        return lib
    end
    path = path or os.getenv("TOLLGATE_LIB") or "tollgate"
    local ok, l = pcall(ffi.load, path)
    if not ok then
        error("tollgate: cannot load libtollgate from '" .. path .. "' (" .. tostring(l)
            .. "); set TOLLGATE_LIB or pass the path", 2)
    end
    local want = K.TG_VERSION_MAJOR * 10000 + K.TG_VERSION_MINOR * 100 + K.TG_VERSION_PATCH
    local have = l.tg_version_number()
    if have ~= want then
        error(("tollgate: libtollgate is version %s but the Lua declarations are for %s: "
            .. "regenerate lua/resty/tollgate/cdefs.lua or load the matching library")
            :format(ffi_string(l.tg_version_string()), cdefs.header_version), 2)
    end
    lib = l
    _M.lib = l
    return l
end

local function L()
    return lib or _M.load()
end

--- The description of a status code (any number, unknown ones included).
function _M.status_str(status)
    return ffi_string(L().tg_status_str(status))
end

local function check(status, what)
    if status ~= 0 then
        error("tollgate: " .. what .. ": " .. _M.status_str(status), 3)
    end
end

----------------------------------------------------------------------------------------------
-- The clock

--- Ticks per second of `now()`: microseconds.
_M.TICKS_PER_SECOND = 1000000

local ts = timespec_t()
local CLOCK_MONOTONIC = 1 -- Linux

--- CLOCK_MONOTONIC in microseconds: one clock for every process of the host (a worker's time
--- and another's are comparable), never stepped by NTP or by the date being set, read through
--- the vDSO (no system call), and a plain Lua number (exact: 2^53 us is 285 years of uptime).
--- nginx's own `ngx.now()` is the wall clock cached per event-loop iteration at millisecond
--- resolution, too coarse and not monotonic.
function _M.now()
    C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts[0].tv_sec) * 1000000 + math.floor(tonumber(ts[0].tv_nsec) / 1000)
end

----------------------------------------------------------------------------------------------
-- Ids and keys

local U64_MAX_STR = "18446744073709551615"
local E15 = ffi_cast(u64_t, 1000000000000000)

--- A decimal id (1 to 20 ASCII digits, value at most 2^64 - 1) as a Lua number when below
--- 10^15, else a uint64_t cdata; nil for anything else (empty, sign, space, too large).
--- (A byte loop rather than a pattern: LuaJIT compiles it, a pattern would stop the trace.)
function _M.parse_id(s)
    if type(s) ~= "string" then
        return nil
    end
    local n = #s
    if n == 0 or n > 20 then
        return nil
    end
    local v = 0
    local m = n <= 15 and n or n - 15
    for i = 1, m do
        local b = byte(s, i)
        if b < 48 or b > 57 then
            return nil
        end
        v = v * 10 + (b - 48)
    end
    if n <= 15 then
        return v
    end
    local w = 0
    for i = m + 1, n do
        local b = byte(s, i)
        if b < 48 or b > 57 then
            return nil
        end
        w = w * 10 + (b - 48)
    end
    if n == 20 and s > U64_MAX_STR then
        return nil
    end
    return ffi_cast(u64_t, v) * E15 + w
end

local function u64(v)
    return ffi_cast(u64_t, v)
end

--- The exact key of an (app, shop) pair, as `tg_key_pair`: returns hi, lo.
function _M.key_pair(app, shop)
    return app, shop
end

--- The exact key of an (app, shop, api) triple with app and api below 2^32, as
--- `tg_key_triple`: returns hi, lo (app in bits 96..128, api in 64..96, shop in 0..64).
function _M.key_triple(app, shop, api)
    return bit.bor(bit.lshift(u64(app), 32), u64(api)), shop
end

----------------------------------------------------------------------------------------------
-- Quotas, buckets, windows

--- A validated leaky-bucket quota (`tg_quota`): `burst`, draining `count` per `period` ticks.
function _M.quota(burst, count, period)
    local q = quota_arr_t(1)
    check(L().tg_quota_init(q, burst, count, period), "tg_quota_init")
    return q
end

local Bucket = {}
Bucket.__index = Bucket

--- A single leaky bucket in memory of this process (see `shared_memory` to share one).
function _M.bucket(burst, count, period, memory)
    local b = memory and ffi_cast("struct tg_bucket *", memory) or ffi.new("struct tg_bucket")
    check(L().tg_bucket_init(b, burst, count, period), "tg_bucket_init")
    return setmetatable({ cdata = b, out = decision_t() }, Bucket)
end

--- Decides on a request of `cost` (default 1) at `now` (default `now()`); returns the
--- `tg_decision` (a cdata reused by the next call on this object: copy what you keep).
function Bucket:decide(now, cost)
    check(lib.tg_bucket_decide(self.cdata, now or _M.now(), cost or 1, self.out),
        "tg_bucket_decide")
    return self.out
end

function Bucket:peek(now, cost)
    check(lib.tg_bucket_peek(self.cdata, now or _M.now(), cost or 1, self.out), "tg_bucket_peek")
    return self.out
end

local Window = {}
Window.__index = Window

--- A single fixed window: at most `limit` per `window` ticks, windows starting at `offset`.
function _M.window(limit, window, offset, memory)
    local w = memory and ffi_cast("struct tg_window *", memory) or ffi.new("struct tg_window")
    check(L().tg_window_init(w, limit, window, offset or 0), "tg_window_init")
    return setmetatable({ cdata = w, out = decision_t() }, Window)
end

function Window:decide(now, cost)
    check(lib.tg_window_decide(self.cdata, now or _M.now(), cost or 1, self.out),
        "tg_window_decide")
    return self.out
end

function Window:peek(now, cost)
    check(lib.tg_window_peek(self.cdata, now or _M.now(), cost or 1, self.out), "tg_window_peek")
    return self.out
end

----------------------------------------------------------------------------------------------
-- Shared regions: one limiter for several processes, named by a path or inherited

local Shared = {}
Shared.__index = Shared

local CREATE = { if_missing = 0, new = 1, existing = 2 }

local function open_shared(kind, opts)
    local l = L()
    local create = CREATE[opts.create or "if_missing"]
    if not create then
        error("tollgate: create must be 'if_missing', 'new' or 'existing'", 3)
    end
    local s = ffi.new("struct tg_shared")
    local err = ffi.new("struct tg_region_error")
    local path, mode = opts.path, opts.mode or 0
    local status
    if kind == "bucket" then
        local q = _M.quota(opts.burst, opts.count, opts.period)
        status = l.tg_shared_open_bucket(s, path, q, mode, create, err)
    elseif kind == "window" then
        status = l.tg_shared_open_window(s, path, opts.limit, opts.window, opts.offset or 0, mode,
            create, err)
    else
        status = l.tg_shared_open_log(s, path, opts.limit, opts.window, mode, create, err)
    end
    if status ~= 0 then
        local msg = ffi_string(err.message)
        error("tollgate: shared " .. kind .. (path and (" at " .. path) or "") .. ": "
            .. (msg ~= "" and msg or _M.status_str(status)), 3)
    end
    return setmetatable({ cdata = ffi.gc(s, l.tg_shared_close), out = decision_t() }, Shared)
end

--- A leaky bucket in a shared region (`docs/semantics.md#shared-regions`): `opts.path` names a
--- file (under /dev/shm for memory only) that any process opening the same path with the same
--- quota shares; without a path, an anonymous mapping shared with the processes forked
--- afterwards. `burst`, `count`, `period`; `mode` (permission bits, default 0600);
--- `create`: "if_missing" (default), "new" or "existing". A region holding other parameters is
--- an error naming the difference.
function _M.shared_bucket(opts)
    return open_shared("bucket", opts)
end

--- A fixed window in a shared region: `limit`, `window`, `offset`; as `shared_bucket`.
function _M.shared_window(opts)
    return open_shared("window", opts)
end

--- A strict sliding log in a shared region: `limit`, `window`; as `shared_bucket`.
function _M.shared_log(opts)
    return open_shared("log", opts)
end

function Shared:decide(now, cost)
    check(lib.tg_shared_decide(self.cdata, now or _M.now(), cost or 1, self.out),
        "tg_shared_decide")
    return self.out
end

function Shared:peek(now, cost)
    check(lib.tg_shared_peek(self.cdata, now or _M.now(), cost or 1, self.out), "tg_shared_peek")
    return self.out
end

--- Did this call create the region (rather than open an existing one)?
function Shared:created()
    local b = ffi.new("bool[1]")
    check(lib.tg_shared_created(self.cdata, b), "tg_shared_created")
    return b[0]
end

--- Unmaps the region (its state stays for the other processes).
function Shared:close()
    ffi.gc(self.cdata, nil)
    check(lib.tg_shared_close(self.cdata), "tg_shared_close")
end

----------------------------------------------------------------------------------------------
-- Memory shared with the processes forked after it is mapped

local PROT_READ_WRITE = 3        -- PROT_READ | PROT_WRITE
local MAP_SHARED_ANONYMOUS = 0x21 -- MAP_SHARED | MAP_ANONYMOUS (Linux, every architecture)
local MAP_FAILED = ffi_cast("void *", -1)

--- `size` bytes of zeroed memory in an anonymous MAP_SHARED mapping (page-aligned). Every
--- process forked after this call sees the same memory at the same address: mapped in nginx's
--- `init_by_lua*` (the master, before it forks the workers) it is one memory for all of them,
--- and for the workers the master starts again after a crash. Not visible to unrelated
--- processes, and not kept across `nginx -s reload` (the master runs `init_by_lua*` again on a
--- new configuration). Unmapped when the returned cdata is garbage-collected.
function _M.shared_memory(size)
    local p = C.mmap(nil, size, PROT_READ_WRITE, MAP_SHARED_ANONYMOUS, -1, 0)
    if p == MAP_FAILED or p == nil then
        error("tollgate: mmap of " .. tostring(size) .. " shared bytes failed: errno "
            .. ffi.errno(), 2)
    end
    return ffi.gc(ffi_cast("uint8_t *", p), function(q) C.munmap(q, size) end)
end

-- Processes share a table only if its atomics are the processor's own instructions. The key
-- table updates 128-bit words; on x86-64 that needs CMPXCHG16B (the `cx16` flag: every x86-64
-- processor since about 2008, but a hypervisor can hide it), without which the library falls back
-- to a lock inside its own, per-process memory: right for threads, wrong across processes.
-- AArch64's 128-bit atomics need no such flag.
local function cross_process_atomics()
    if jit.arch ~= "x64" then
        return true
    end
    local f = io.open("/proc/cpuinfo", "r")
    if not f then
        return true -- not Linux: nothing to check here
    end
    local info = f:read("*a")
    f:close()
    return info:find("%f[%w]cx16%f[%W]") ~= nil
end
_M.cross_process_atomics = cross_process_atomics

----------------------------------------------------------------------------------------------
-- Key tables

local Table = {}
Table.__index = Table

local POLICIES = { fail_closed = 0, fail_open = 1 }

local function random_seed()
    local f = io.open("/dev/urandom", "rb")
    if not f then
        error("tollgate: cannot read /dev/urandom for the table's seed; pass seed = {k0, k1}", 3)
    end
    local s = f:read(16)
    f:close()
    local v = ffi.new("uint64_t[2]")
    ffi.copy(v, s, 16)
    return v[0], v[1]
end

-- Is `name` declared and exported? (A declaration missing from cdefs.lua raises on access.)
local function has_symbol(l, name)
    return (pcall(function() return l[name] end))
end

local function new_table(kind, opts)
    local capacity = assert(opts.capacity, "tollgate: table needs capacity")
    local tiers = assert(opts.tiers, "tollgate: table needs tiers")
    local n = #tiers
    local policy = POLICIES[opts.full or "fail_closed"]
    if not policy then
        error("tollgate: full must be 'fail_closed' or 'fail_open'", 3)
    end
    local l = L()
    local size = tonumber(l.tg_table_size(capacity, n))
    if size == 0 then
        error("tollgate: no table of capacity " .. tostring(capacity) .. " with " .. n
            .. " tiers (see tg_table_size)", 3)
    end
    local arr
    if kind == "bucket" then
        arr = quota_arr_t(n)
        for i = 1, n do
            local t = tiers[i]
            check(l.tg_quota_init(arr + (i - 1), t.burst, t.count, t.period), "tg_quota_init")
        end
    else
        arr = wquota_arr_t(n)
        for i = 1, n do
            local t = tiers[i]
            arr[i - 1].limit = t.limit
            arr[i - 1].window = t.window
            arr[i - 1].offset = t.offset or 0
        end
    end
    if opts.shared ~= false and not cross_process_atomics() then
        error("tollgate: this x86-64 processor has no CMPXCHG16B (cx16): a table cannot be "
            .. "shared between processes here; use shared = false (one table per process)", 3)
    end
    local memory
    if opts.memory then
        -- Caller memory of `size` bytes aligned to TG_TABLE_ALIGN, kept alive by the caller.
        memory = { ptr = ffi_cast("uint8_t *", opts.memory) }
    elseif opts.shared == false then
        -- Private memory: over-allocate for the alignment, keep the owner alive.
        local raw = ffi.new("uint8_t[?]", size + K.TG_TABLE_ALIGN)
        local addr = ffi_cast("uintptr_t", raw)
        local pad = tonumber((K.TG_TABLE_ALIGN - addr % K.TG_TABLE_ALIGN) % K.TG_TABLE_ALIGN)
        memory = { owner = raw, ptr = raw + pad }
    else
        local m = _M.shared_memory(size)
        memory = { owner = m, ptr = m }
    end
    local k0, k1
    if opts.seed then
        k0, k1 = opts.seed[1], opts.seed[2]
    else
        k0, k1 = random_seed()
    end
    local ptr
    if opts.initialized then
        -- A table initialised earlier in this memory with the same options (see
        -- resty.tollgate.nginx): checked — by tg_table_attach where the library has it (magic,
        -- layout version, size, tiers, checksum), else by its counters — and used as it is.
        if has_symbol(l, "tg_table_attach") then
            local out = table_pp_t()
            check(l.tg_table_attach(memory.ptr, size, out), "tg_table_attach")
            ptr = out[0]
        else
            ptr = ffi_cast("struct tg_table *", memory.ptr)
        end
        local s = stats_t()
        check(l.tg_table_get_stats(ptr, s), "tg_table_get_stats")
        -- (A library may round the capacity up, e.g. to whole groups of slots.)
        if tonumber(s[0].capacity) < capacity then
            error("tollgate: the table in this memory has capacity " .. tonumber(s[0].capacity)
                .. ", not " .. capacity, 3)
        end
    else
        local out = table_pp_t()
        local init = kind == "bucket" and l.tg_table_init_buckets or l.tg_table_init_windows
        check(init(memory.ptr, size, capacity, arr, n, policy, k0, k1, out),
            "tg_table_init_" .. kind .. "s")
        ptr = out[0]
    end
    return setmetatable({
        kind = kind,
        ptr = ptr,
        memory = memory,
        size = size,
        capacity = capacity,
        tiers = tiers,
        quotas = arr,
        out = decision_t(),
        key = ffi.new("struct tg_key[1]"),
        keybuf = nil,
    }, Table)
end

--- A table of leaky buckets. `opts`: `capacity` (slots), `tiers` (a list of
--- `{burst=, count=, period=}`, referred to by 0-based index), `full` ("fail_closed", the
--- default, or "fail_open"), `seed` ({k0, k1}; default random), `shared` (default true: in
--- `shared_memory`, one table for the processes forked afterwards; false: private memory),
--- `memory` (a pointer to `tg_table_size(capacity, #tiers)` bytes aligned to TG_TABLE_ALIGN
--- that the caller keeps alive; with `initialized = true`, a table already initialised there
--- with the same options, which is checked and used as it is).
function _M.bucket_table(opts)
    return new_table("bucket", opts)
end

--- A table of fixed windows: as `bucket_table` with tiers `{limit=, window=, offset=}`.
function _M.window_table(opts)
    return new_table("window", opts)
end

local decide_split = split_abi
local tmp_key = key_t()

--- Decides for the key (hi, lo) on tier `tier` (0-based) at `now` for `cost`. Returns the
--- `tg_decision` (reused by the next call on this table: copy what you keep), or nil and the
--- status description on an error (a clock out of range).
function Table:decide(hi, lo, tier, now, cost)
    local status
    if decide_split then
        status = lib.tollgate_table_decide_split(self.ptr, hi, lo, tier, now, cost, self.out)
    else
        tmp_key.hi = hi
        tmp_key.lo = lo
        status = lib.tg_table_decide(self.ptr, tmp_key, tier, now, cost, self.out)
    end
    if status ~= 0 then
        return nil, _M.status_str(status)
    end
    return self.out
end

--- As `decide`, spending nothing.
function Table:peek(hi, lo, tier, now, cost)
    local status
    if decide_split then
        status = lib.tollgate_table_peek_split(self.ptr, hi, lo, tier, now, cost, self.out)
    else
        tmp_key.hi = hi
        tmp_key.lo = lo
        status = lib.tg_table_peek(self.ptr, tmp_key, tier, now, cost, self.out)
    end
    if status ~= 0 then
        return nil, _M.status_str(status)
    end
    return self.out
end

--- The by-value declaration, whatever the ABI (for the tests).
function Table:decide_by_value(hi, lo, tier, now, cost)
    tmp_key.hi = hi
    tmp_key.lo = lo
    check(lib.tg_table_decide(self.ptr, tmp_key, tier, now, cost, self.out), "tg_table_decide")
    return self.out
end

--- The key of a byte string, hashed with the table's secret seed: returns hi, lo.
function Table:key_bytes(s, len)
    local k = self.key
    check(lib.tg_table_key_bytes(self.ptr, s, len or #s, k), "tg_table_key_bytes")
    return k[0].hi, k[0].lo
end

--- The key of (app, shop, api) ids of any 64-bit values, hashed with the table's seed.
function Table:key_triple(app, shop, api)
    local k = self.key
    check(lib.tg_table_key_triple(self.ptr, app, shop, api, k), "tg_table_key_triple")
    return k[0].hi, k[0].lo
end

--- The key of two 64-bit ids followed by a byte string (TikTok Shop's app, shop and API path),
--- hashed with the table's seed in one call. Returns hi, lo.
function Table:key_ids_bytes(a, b, s)
    local n = #s
    local buf = self.keybuf
    if not buf or self.keybuf_len < 16 + n then
        self.keybuf_len = math.max(256, 16 + n)
        buf = ffi.new("uint64_t[?]", math.ceil(self.keybuf_len / 8))
        self.keybuf = buf
    end
    buf[0] = a
    buf[1] = b
    ffi.copy(ffi_cast("uint8_t *", buf) + 16, s, n)
    local k = self.key
    check(lib.tg_table_key_bytes(self.ptr, ffi_cast("uint8_t *", buf), 16 + n, k),
        "tg_table_key_bytes")
    return k[0].hi, k[0].lo
end

--- The table's counters: {capacity=, occupied=, reclaimed=, rejected=} (Lua numbers).
function Table:stats()
    local s = stats_t()
    check(lib.tg_table_get_stats(self.ptr, s), "tg_table_get_stats")
    return {
        capacity = tonumber(s[0].capacity),
        occupied = tonumber(s[0].occupied),
        reclaimed = tonumber(s[0].reclaimed),
        rejected = tonumber(s[0].rejected),
    }
end

--- The `tg_quota` of tier `tier` (0-based) of a bucket table.
function Table:quota(tier)
    return self.quotas + tier
end

----------------------------------------------------------------------------------------------
-- Decisions and header values

--- Turns a refusal into a shadow-mode pass (`would_limit` kept in the verdict), in place.
function _M.shadow(d)
    check(L().tg_decision_shadow(d), "tg_decision_shadow")
    return d
end

--- Did the limiter itself refuse (whatever the outcome says after shadow mode / fail-open)?
function _M.would_limit(d)
    return d.verdict ~= 0
end

--- The HTTP status for an outcome: 0 (pass), 429 or 503.
function _M.http_status(outcome)
    local s = ffi.new("uint16_t[1]")
    check(L().tg_outcome_http_status(outcome, s), "tg_outcome_http_status")
    return s[0]
end

local hbuf_len = 256
local hbuf = ffi.new("char[?]", hbuf_len)
local hlen = size_t_arr_t()

local function header(status, what)
    check(status, what)
    return ffi_string(hbuf, hlen[0])
end

--- `X-Sb-Shop-Api-Call-Limit`: "used/limit".
function _M.header_call_limit(d)
    return header(lib.tg_header_shop_api_call_limit(d, hbuf, hbuf_len, hlen),
        "tg_header_shop_api_call_limit")
end

--- `Retry-After` seconds as a string, or nil when the decision calls for none.
function _M.header_retry_after(d, tps)
    local s = header(lib.tg_header_retry_after(d, tps or _M.TICKS_PER_SECOND, hbuf, hbuf_len,
        hlen), "tg_header_retry_after")
    if s == "" then
        return nil
    end
    return s
end

--- `RateLimit`: "\"name\";r=remaining;t=seconds".
function _M.header_ratelimit(d, name, tps)
    return header(lib.tg_header_ratelimit(d, name, #name, tps or _M.TICKS_PER_SECOND, hbuf,
        hbuf_len, hlen), "tg_header_ratelimit")
end

--- `RateLimit-Policy` for a bucket quota (a `tg_quota *`).
function _M.header_ratelimit_policy_bucket(quota, name, tps)
    return header(L().tg_header_ratelimit_policy_bucket(quota, name, #name,
        tps or _M.TICKS_PER_SECOND, hbuf, hbuf_len, hlen), "tg_header_ratelimit_policy_bucket")
end

--- `RateLimit-Policy` for a window of `limit` per `window` ticks.
function _M.header_ratelimit_policy_window(limit, window, name, tps)
    return header(L().tg_header_ratelimit_policy_window(limit, window, name, #name,
        tps or _M.TICKS_PER_SECOND, hbuf, hbuf_len, hlen), "tg_header_ratelimit_policy_window")
end

-- Header values repeat (ShopBase: 31 call limits, 31 x 16 RateLimit values), so a gateway keeps
-- the strings the engine formatted, by the numbers they show: a table lookup instead of an FFI
-- call and a new Lua string per request. Bounded: numbers beyond CACHE_MAX are formatted each
-- time. lua/tests/test_binding.lua checks the cached strings against the engine's.
local CACHE_MAX = 4096
local ceil = math.ceil

local Values = {}
Values.__index = Values

--- Cached header values for the RateLimit name `name` on a clock of `tps` ticks per second:
--- `:call_limit(d)` and `:ratelimit(d)` return what `header_call_limit` and `header_ratelimit`
--- return.
function _M.header_values(name, tps)
    return setmetatable({ name = name, tps = tps or _M.TICKS_PER_SECOND, cl = {}, rl = {} },
        Values)
end

function Values:call_limit(d)
    local used = tonumber(d.used)
    local limit = tonumber(d.limit)
    if used > CACHE_MAX or limit > CACHE_MAX then
        return _M.header_call_limit(d)
    end
    local k = used * (CACHE_MAX + 1) + limit
    local s = self.cl[k]
    if not s then
        s = _M.header_call_limit(d)
        self.cl[k] = s
    end
    return s
end

function Values:ratelimit(d)
    local r = tonumber(d.remaining)
    -- The seconds the value shows, ceil(reset_after / tps): the cache key, not the value.
    local t = ceil(tonumber(d.reset_after) / self.tps)
    if r > CACHE_MAX or t > CACHE_MAX then
        return _M.header_ratelimit(d, self.name, self.tps)
    end
    local k = r * (CACHE_MAX + 1) + t
    local s = self.rl[k]
    if not s then
        s = _M.header_ratelimit(d, self.name, self.tps)
        self.rl[k] = s
    end
    return s
end

----------------------------------------------------------------------------------------------
-- Deep pagination

local outcome_out = outcome_arr_t()

--- The deep-pagination rule on a query string (without `?`): returns the outcome
--- (`TG_OUTCOME_ALLOWED` 0 or `TG_OUTCOME_NEVER` 3), or nil and "malformed" for a `limit` or
--- `page` that is not a decimal number fitting 64 bits.
function _M.pagination_check_query(query, max_offset)
    local status = L().tg_pagination_check_query(query, #query,
        max_offset or K.TG_PAGINATION_DEFAULT_MAX_OFFSET, outcome_out)
    if status == C.TG_STATUS_MALFORMED then
        return nil, "malformed"
    end
    check(status, "tg_pagination_check_query")
    return outcome_out[0]
end

--- The deep-pagination rule on numbers: `TG_OUTCOME_NEVER` iff limit x page > max_offset.
function _M.pagination_check(limit, page, max_offset)
    check(L().tg_pagination_check(limit, page, max_offset or K.TG_PAGINATION_DEFAULT_MAX_OFFSET,
        outcome_out), "tg_pagination_check")
    return outcome_out[0]
end

_M.ALLOWED = 0
_M.LIMITED = 1
_M.OVERLOADED = 2
_M.NEVER = 3
_M.FLAG_SHADOW = K.TG_DECISION_SHADOW
_M.FLAG_FAIL_OPEN = K.TG_DECISION_FAIL_OPEN
_M.decision_t = decision_t
_M.decision_arr_t = decision_arr_t
_M.u64_arr_t = u64_arr_t

return _M
