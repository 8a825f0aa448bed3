-- The access-phase handler for nginx / OpenResty: one key table per policy in memory shared by
-- every worker, decided once per request, answered with the engine's statuses and headers.
--
--   init_by_lua_block {
--       local tollgate = require "resty.tollgate.nginx"
--       tollgate.policy("shopbase", { preset = "shopbase", capacity = 65536 })
--       tollgate.policy("tiktok", { preset = "tiktok", capacity = 65536 })
--   }
--   location /shopbase/ { access_by_lua_block { require("resty.tollgate.nginx").access("shopbase") } ... }
--
-- See docs/nginx.md for every option and for what is shared, kept and reset.

local ffi = require "ffi"
local tg = require "resty.tollgate"

local ngx = ngx
local var = ngx.var
local header = ngx.header
local exit = ngx.exit
local req_get_method = ngx.req.get_method
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local parse_id = tg.parse_id
local now_us = tg.now
local band = bit.band
local tonumber = tonumber

local ALLOWED, OVERLOADED, NEVER = tg.ALLOWED, tg.OVERLOADED, tg.NEVER
local FAIL_OPEN = tg.FLAG_FAIL_OPEN
local TPS = tg.TICKS_PER_SECOND

local _M = {}
local policies = {}
_M.policies = policies

if not pcall(ffi.typeof, "struct tollgate_ngx_marker") then
    ffi.cdef [[
        struct tollgate_ngx_marker { int unused; };
        int setenv(const char *name, const char *value, int overwrite);
        int msync(void *addr, size_t length, int flags);
    ]]
end

----------------------------------------------------------------------------------------------
-- Memory kept by the master across `nginx -s reload`

-- The master process runs init_by_lua* again on every reload, in a new Lua state. To keep the
-- keys' state when a policy's parameters are unchanged, its table's anonymous shared mapping is
-- never unmapped, and its address is remembered in the master's environment:
-- TOLLGATE_NGX_<NAME>=<address>:<size>:<token>, with the same random token written at the start
-- of the mapping. A later init adopts the mapping only if the address is mapped in this
-- process (msync), the size matches and the token in memory is the token in the environment.
-- The token begins with a hash of the policy's parameters: a policy whose parameters changed
-- gets a new, empty table (and the master unmaps the old one; workers of the old configuration
-- still finishing their requests keep their own mapping of it).
-- Bytes before the table: the token (64 hex digits); a multiple of the table's alignment.
local PREFIX = math.max(64, tg.constants.TG_TABLE_ALIGN)
local MS_ASYNC = 1

local function random_hex(n)
    local f = assert(io.open("/dev/urandom", "rb"))
    local s = f:read(n)
    f:close()
    return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function env_name(name)
    return "TOLLGATE_NGX_" .. name:upper():gsub("[^A-Z0-9]", "_")
end

-- The mapping this master made for policy `name` under an earlier configuration, if it is
-- still mapped here and carries the token the environment names: its address and size.
local function adopt(name)
    local v = os.getenv(env_name(name))
    if not v then
        return nil
    end
    local addr, sz, token = v:match("^(%d+):(%d+):(%x+)$")
    addr, sz = tonumber(addr), tonumber(sz)
    if not addr or #token ~= 64 then
        return nil
    end
    local p = ffi.cast("uint8_t *", ffi.cast("uintptr_t", addr))
    if ffi.C.msync(p, sz, MS_ASYNC) ~= 0 then
        return nil -- not mapped here (a new binary after exec): never read it
    end
    if ffi.string(p, 64) ~= token then
        return nil
    end
    return p, sz
end

local function remember(name, p, size, token)
    local v = ("%s:%d:%s"):format(tostring(ffi.cast("uintptr_t", p)):gsub("ULL$", ""),
        size + PREFIX, token)
    ffi.C.setenv(env_name(name), v, 1)
end

-- Shared memory for policy `name`'s table: adopted from a previous configuration of this
-- master when the parameters are the same, else newly mapped. Returns the table's memory and
-- whether it was adopted.
local function table_memory(name, size, signature)
    -- The token is random per mapping and bound to the signature: 32 bytes of hash of the
    -- signature (hex) followed by 32 random hex digits.
    local sig = ngx.md5(signature) -- 32 hex digits
    local p, mapped = adopt(name)
    if p and mapped == size + PREFIX and ffi.string(p, 32) == sig then
        return p + PREFIX, true
    end
    if p then
        ffi.C.munmap(p, mapped)
    end
    local m = tg.shared_memory(size + PREFIX)
    ffi.gc(m, nil) -- kept for the life of the master (and inherited by every worker)
    local token = sig .. random_hex(16)
    ffi.copy(m, token, 64)
    remember(name, m, size, token)
    return m + PREFIX, false
end

----------------------------------------------------------------------------------------------
-- Configuration (init_by_lua*)

local PRESETS = {
    shopbase = {
        kind = "bucket",
        tiers = { { burst = 30, count = 2, period = TPS } },
        key = "pair",
        pagination = true,
        call_limit_header = true,
    },
    tiktok = {
        kind = "window",
        tiers = { { limit = 50, window = TPS } },
        key = "triple",
        pagination = false,
        call_limit_header = false,
    },
}

-- A key-part source: an ngx.var name, or { header = "X-App-Id" } (the variable $http_x_app_id),
-- or { var = "arg_shop" }.
local function source(s, default)
    s = s or default
    if type(s) == "string" then
        return s
    end
    if type(s) == "table" and s.header then
        return "http_" .. s.header:lower():gsub("-", "_")
    end
    if type(s) == "table" and s.var then
        return s.var
    end
    error("tollgate: a key source is a variable name, {header = ...} or {var = ...}", 3)
end

--- Declares policy `name` (call in init_by_lua*, before the workers fork). `opts`:
--- - `preset`: "shopbase" (a bucket of 30 draining 2/s per (app, shop), the deep-pagination
---   rule, X-Sb-Shop-Api-Call-Limit) or "tiktok" (50 per 1 s window per (app, shop, api));
--- - `capacity`: key-table slots shared by all workers (default 65536);
--- - `app`, `shop`, `api`: where the key parts come from (defaults: headers X-App-Id,
---   X-Shop-Id; api: the variable `uri`);
--- - `shadow`: decide and report but never refuse (default false);
--- - `full`: "fail_closed" (default: 503 when no slot is free) or "fail_open";
--- - `name`: the RateLimit policy name (default: the preset's name);
--- - `max_offset`: the pagination maximum (default 100000; `pagination = false` turns it off);
--- - `seed`: {k0, k1} for the table's hash (default: random);
--- - `pass_headers`: false sends the rate-limit headers on refusals only (default true: on
---   every answer);
--- - `debug`: add `X-Tollgate-Now` (the decision's clock, microseconds) to every answer, for
---   tests that check exactness against the engine's own timeline.
function _M.policy(name, opts)
    if ngx.get_phase() ~= "init" then
        error("tollgate: policies are declared in init_by_lua*, before the workers fork", 2)
    end
    local preset = PRESETS[opts.preset]
    if not preset then
        error("tollgate: unknown preset '" .. tostring(opts.preset) .. "' (shopbase, tiktok)", 2)
    end
    tg.load(opts.lib)
    local capacity = opts.capacity or 65536
    local full = opts.full or "fail_closed"
    local rl_name = opts.name or opts.preset
    local topts = {
        capacity = capacity,
        tiers = preset.tiers,
        full = full,
        seed = opts.seed,
        shared = true,
    }
    local signature = ("%s|%s|%d|%s|%s"):format(opts.preset, preset.kind, capacity, full,
        opts.seed and (tostring(opts.seed[1]) .. "," .. tostring(opts.seed[2])) or "random")
    local size = tonumber(tg.lib.tg_table_size(capacity, #preset.tiers))
    local memory, adopted = table_memory(name, size, signature)
    topts.memory = memory
    topts.initialized = adopted
    local t = preset.kind == "bucket" and tg.bucket_table(topts) or tg.window_table(topts)
    local p = {
        name = name,
        preset = opts.preset,
        kind = preset.kind,
        table = t,
        adopted = adopted,
        shadow = opts.shadow and true or false,
        app_var = source(opts.app, { header = "X-App-Id" }),
        shop_var = source(opts.shop, { header = "X-Shop-Id" }),
        api_var = preset.key == "triple" and source(opts.api, "uri") or nil,
        pagination = preset.pagination and opts.pagination ~= false,
        max_offset = opts.max_offset or tg.constants.TG_PAGINATION_DEFAULT_MAX_OFFSET,
        call_limit_header = preset.call_limit_header,
        rl_name = rl_name,
        debug = opts.debug and true or false,
        pass_headers = opts.pass_headers ~= false,
        values = tg.header_values(rl_name),
    }
    if preset.kind == "bucket" then
        p.policy_header = tg.header_ratelimit_policy_bucket(t:quota(0), rl_name)
    else
        local w = preset.tiers[1]
        p.policy_header = tg.header_ratelimit_policy_window(w.limit, w.window, rl_name)
    end
    policies[name] = p
    return p
end

----------------------------------------------------------------------------------------------
-- The access phase

local function bad_request(what)
    header["Content-Type"] = "text/plain"
    ngx.status = 400
    ngx.say(what)
    return exit(400)
end

-- The decision's headers: X-Sb-Shop-Api-Call-Limit (ShopBase), RateLimit, RateLimit-Policy.
local function set_headers(p, d)
    if p.call_limit_header then
        header["X-Sb-Shop-Api-Call-Limit"] = p.values:call_limit(d)
    end
    header["RateLimit"] = p.values:ratelimit(d)
    header["RateLimit-Policy"] = p.policy_header
end

--- The access handler of policy `name`: reads the key, applies the pagination rule (ShopBase
--- GET), decides once, and either refuses (400 malformed id or page, 429 limited or too deep,
--- 503 table full fail-closed; with Retry-After where retrying helps) or lets the request go
--- on with the rate-limit headers set on the response the upstream will send.
function _M.access(name)
    local p = policies[name]
    if not p then
        ngx_log(ERR, "tollgate: no policy '", name, "' (declare it in init_by_lua*)")
        return exit(500)
    end
    local app = parse_id(var[p.app_var])
    local shop = parse_id(var[p.shop_var])
    if not app or not shop then
        return bad_request("app and shop ids: decimal, at most 2^64 - 1")
    end
    local t = p.table
    local hi, lo
    if p.api_var then
        hi, lo = t:key_ids_bytes(app, shop, var[p.api_var] or "")
    else
        hi, lo = app, shop
    end
    local now = now_us()
    if p.debug then
        header["X-Tollgate-Now"] = now
    end
    local shadow_refused = false
    if p.pagination then
        local args = req_get_method() == "GET" and var.args
        if args then
            local outcome = tg.pagination_check_query(args, p.max_offset)
            if not outcome then
                return bad_request("limit, page: decimal, at most 2^64 - 1")
            end
            if outcome == NEVER then
                if p.shadow then
                    shadow_refused = true
                else
                    local d = t:peek(hi, lo, 0, now, 1)
                    if d then
                        set_headers(p, d)
                    end
                    return exit(429)
                end
            end
        end
    end
    local d, err = t:decide(hi, lo, 0, now, 1)
    if not d then
        ngx_log(ERR, "tollgate: ", p.name, ": ", err)
        return exit(503)
    end
    local verdict = d.verdict
    if p.shadow then
        if verdict ~= ALLOWED then
            shadow_refused = true
            tg.shadow(d)
        end
        header["X-Tollgate-Shadow"] = shadow_refused and "would-limit" or "pass"
    end
    local outcome = d.outcome
    if outcome ~= ALLOWED or p.pass_headers then
        set_headers(p, d)
    end
    if outcome == ALLOWED then
        if band(d.flags, FAIL_OPEN) ~= 0 then
            header["X-Tollgate-Fail-Open"] = "table-full"
            ngx_log(WARN, "tollgate: ", p.name, ": key table full, request let through (fail-open)")
        end
        return
    end
    local ra = tg.header_retry_after(d)
    if ra then
        header["Retry-After"] = ra
    end
    if outcome == OVERLOADED then
        return exit(503)
    end
    return exit(429)
end

--- The table of policy `name` (for tests and monitoring): counters via `:stats()`.
function _M.stats(name)
    local p = policies[name]
    return p and p.table:stats()
end

return _M
