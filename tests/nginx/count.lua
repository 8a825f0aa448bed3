-- wrk script: sends requests for `keys` distinct (app, shop) keys in turn and counts, per key,
-- the answers by status, with the decisions' own clock (X-Tollgate-Now, microseconds) when
-- the policy sends it. The server echoes the key in X-Key and its worker in X-Worker.
--   wrk -t2 -c32 -d3s -s tests/nginx/count.lua http://127.0.0.1:PORT -- PATH KEYS APP SHOP0 [DEPTH]
-- (DEPTH > 1: that many requests pipelined per write, each for the next key.)
-- Prints one line per key:  KEY <app:shop> <status>=<n>... first=<us> last=<us> w<k>=<n>...
-- (w<k>: admitted answers whose clock falls in second k), per worker WORKER <pid> <n> <last>,
-- and SUMMARY with wrk's totals and latency percentiles.
local path, nkeys, app, shop0, depth

function init(args)
    path = args[1] or "/shopbase/x"
    nkeys = tonumber(args[2] or "1")
    app = args[3] or "1"
    shop0 = tonumber(args[4] or "1")
    depth = tonumber(args[5] or "1")
    -- Flat tables of strings and numbers only: wrk's thread:get cannot copy nested tables.
    counts, first, last, windows, workers, wlast = {}, {}, {}, {}, {}, {}
    i = 0
end

local function one()
    i = i + 1
    local shop = shop0 + (i % nkeys)
    return wrk.format("GET", path, { ["X-App-Id"] = app, ["X-Shop-Id"] = tostring(shop) })
end

function request()
    if depth == 1 then
        return one()
    end
    local r = {}
    for k = 1, depth do r[k] = one() end
    return table.concat(r)
end

local function h(headers, name)
    return headers[name] or headers[name:lower()]
end

function response(status, headers, body)
    local key = h(headers, "X-Key") or "?"
    local ck = key .. " " .. status
    counts[ck] = (counts[ck] or 0) + 1
    local now = tonumber(h(headers, "X-Tollgate-Now") or "")
    if now then
        if not first[key] or now < first[key] then first[key] = now end
        if not last[key] or now > last[key] then last[key] = now end
        if status == 200 then
            local wk = key .. " " .. math.floor(now / 1000000)
            windows[wk] = (windows[wk] or 0) + 1
        end
    end
    local pid = h(headers, "X-Worker")
    if pid then
        workers[pid] = (workers[pid] or 0) + 1
        if now and (not wlast[pid] or now > wlast[pid]) then wlast[pid] = now end
    end
end

threads = {}
function setup(thread)
    table.insert(threads, thread)
end

function done(summary, latency, requests)
    local C, F, L, W, K, KL = {}, {}, {}, {}, {}, {}
    local function add(dst, src)
        for k, v in pairs(src or {}) do dst[k] = (dst[k] or 0) + v end
    end
    for _, t in ipairs(threads) do
        add(C, t:get("counts"))
        add(W, t:get("windows"))
        add(K, t:get("workers"))
        for k, v in pairs(t:get("first") or {}) do if not F[k] or v < F[k] then F[k] = v end end
        for k, v in pairs(t:get("last") or {}) do if not L[k] or v > L[k] then L[k] = v end end
        for k, v in pairs(t:get("wlast") or {}) do if not KL[k] or v > KL[k] then KL[k] = v end end
    end
    local keys = {}
    for ck, n in pairs(C) do
        local key, status = ck:match("^(.*) (%d+)$")
        keys[key] = keys[key] or { "KEY", key }
        table.insert(keys[key], status .. "=" .. n)
    end
    for wk, n in pairs(W) do
        local key, w = wk:match("^(.*) (%d+)$")
        table.insert(keys[key], ("w%s=%d"):format(w, n))
    end
    for key, line in pairs(keys) do
        if F[key] then table.insert(line, ("first=%d last=%d"):format(F[key], L[key])) end
        print(table.concat(line, " "))
    end
    for pid, n in pairs(K) do print(("WORKER %s %d %d"):format(pid, n, KL[pid] or 0)) end
    local e = summary.errors
    print(("SUMMARY requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d"):format(
        summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
