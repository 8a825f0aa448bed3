#!/usr/bin/env python3
"""The nginx suite: a real nginx (Debian's, with the Lua module) with 4 workers on loopback in
front of a small upstream, the tollgate access handler on its locations, driven by curl and wrk.

    python3 tests/nginx/test_nginx.py            # needs nginx, the Lua module, curl, wrk
    TOLLGATE_LIB=... to use another libtollgate.so (default target/release/libtollgate.so)

Exactness is checked against the decisions' own clock: the test policies send X-Tollgate-Now
(CLOCK_MONOTONIC, microseconds), so for every key, whatever worker answered, admitted <= 30 +
floor(2 x span) (ShopBase) and <= 50 per window (TikTok Shop) can be checked exactly.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "nginx")
LIB = os.environ.get("TOLLGATE_LIB", os.path.join(ROOT, "target", "release", "libtollgate.so"))
MODULES = os.environ.get("NGINX_MODULES", "/usr/lib/nginx/modules")
US = 1_000_000

failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, template="nginx.conf.in", **extra):
        self.template = template
        self.extra = extra
        self.prefix = tempfile.mkdtemp(prefix="tollgate-nginx-")
        os.makedirs(os.path.join(self.prefix, "logs"))
        self.port, self.uport = free_port(), free_port()
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.render(capacity=4096)

    def render(self, capacity):
        with open(os.path.join(HERE, self.template), encoding="utf-8") as f:
            text = f.read()
        for k, v in {"MODULES": MODULES, "PREFIX": self.prefix, "LUA": os.path.join(ROOT, "lua"),
                     "LIB": LIB, "PORT": self.port, "UPORT": self.uport,
                     "CAPACITY": capacity, **self.extra}.items():
            text = text.replace(f"@{k}@", str(v))
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(text)

    def cmd(self, *args):
        return subprocess.run(["nginx", "-p", self.prefix, "-c", self.conf, "-e",
                               os.path.join(self.prefix, "logs", "error.log"), *args],
                              capture_output=True, text=True, timeout=30)

    def start(self):
        r = self.cmd()
        if r.returncode != 0:
            raise SystemExit("nginx did not start:\n" + r.stderr + self.log())
        for _ in range(100):
            if len(self.workers()) == 4:
                return
            time.sleep(0.05)
        raise SystemExit("nginx: 4 workers did not come up\n" + self.log())

    def master(self):
        try:
            with open(os.path.join(self.prefix, "nginx.pid"), encoding="utf-8") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def workers(self):
        m = self.master()
        if not m:
            return []
        r = subprocess.run(["pgrep", "-P", str(m)], capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()]

    def stop(self):
        m = self.master()
        if m:
            self.cmd("-s", "stop")
            for _ in range(100):
                try:
                    os.kill(m, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.kill(m, signal.SIGKILL)

    def log(self):
        try:
            with open(os.path.join(self.prefix, "logs", "error.log"), encoding="utf-8") as f:
                return f.read()
        except OSError:
            return ""

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def curl(ngx, path, app="1", shop="1", extra=()):
    """One request: (status, {lower-case header: value}, body)."""
    args = ["curl", "-s", "-i", "--max-time", "5"]
    if app is not None:
        args += ["-H", f"X-App-Id: {app}"]
    if shop is not None:
        args += ["-H", f"X-Shop-Id: {shop}"]
    out = subprocess.run(args + list(extra) + [ngx.url(path)], capture_output=True,
                         timeout=10).stdout.decode("latin-1")
    head, _, body = out.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def curl_parallel(ngx, path, n, app, shop, parallel=True):
    """n requests at once from one curl (--parallel), or one after the other on one
    connection: [(status, now_us, worker, retry_after, call_limit)]."""
    fmt = ("## %{http_code} %header{x-tollgate-now} %header{x-worker} %header{retry-after} "
           "%header{x-sb-shop-api-call-limit}\\n")
    out = subprocess.run(
        ["curl", "-s"] + (["--parallel", "--parallel-immediate", "--parallel-max", str(n)]
                          if parallel else []) + ["--max-time", "10", "-H", f"X-App-Id: {app}", "-H", f"X-Shop-Id: {shop}", "-w", fmt,
         ngx.url(path) + f"?n=[1-{n}]"], capture_output=True, timeout=30).stdout.decode()
    rows = []
    for line in out.splitlines():
        if line.startswith("## "):
            f = line[3:].split(" ")
            f += [""] * (5 - len(f))
            rows.append((int(f[0]), int(f[1]) if f[1] else None, f[2], f[3], f[4]))
    return rows


def wrk(ngx, path, keys, app, shop0, seconds, threads=2, conns=32, depth=1):
    """Runs wrk with tests/nginx/count.lua: ({key: {status: n, first:, last:, windows: {}}},
    {worker: (n, last)}, summary)."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "-s",
         os.path.join(HERE, "count.lua"), ngx.url(""), "--", path, str(keys), str(app),
         str(shop0), str(depth)], capture_output=True, text=True, timeout=seconds + 60).stdout
    return parse_wrk(out)


def parse_wrk(out):
    keys, workers, summary = {}, {}, {}
    for line in out.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "KEY":
            k = {"windows": {}}
            for item in f[2:]:
                name, _, v = item.partition("=")
                if name.startswith("w"):
                    k["windows"][int(name[1:])] = int(v)
                elif name.isdigit():
                    k[int(name)] = int(v)
                else:
                    k[name] = int(v)
            keys[f[1]] = k
        elif f[0] == "WORKER":
            workers[f[1]] = (int(f[2]), int(f[3]))
        elif f[0] == "SUMMARY":
            summary = {a: int(b) for a, b in (x.split("=") for x in f[1:])}
    return keys, workers, summary


def server_log(ngx):
    """nginx's own account of every answer (TEST_LOG in nginx.conf.in): {(location, key):
    {status: n, "first200": us, "last200": us, "windows": {second: admitted}}}, each admitted
    request counted in the second whose window judged it (TEST_LOG). Unlike wrk's
    view, it has every answer whose request completed, whether or not wrk read it before its
    time was up."""
    out = {}
    for line in curl(ngx, "/testlog", None, None)[2].splitlines():
        f = line.split()
        if len(f) == 4:
            loc, key, what, v = f
            e = out.setdefault((loc, key), {"windows": {}})
            v = int(float(v))
            if what.isdigit():
                e[int(what)] = e.get(int(what), 0) + v
            elif what.startswith("w"):
                e["windows"][int(what[1:])] = v
        elif len(f) == 5:  # per worker: loc key pid first200|last200 value
            loc, key, _pid, what, v = f
            e = out.setdefault((loc, key), {"windows": {}})
            v = int(float(v))
            if what == "first200":
                e[what] = min(e.get(what, v), v)
            else:
                e[what] = max(e.get(what, v), v)
    return out


def shopbase_bound(first, last, burst=30, rate=2):
    """The most a (30, 2/s) bucket admits to decisions whose clocks lie in [first, last]."""
    return burst + (rate * (last - first)) // US


def uniq():
    """A shop id no earlier run of this nginx has used."""
    uniq.n += 1
    return int(time.time()) % 100000 * 1000 + uniq.n


uniq.n = 0


# --- The tests -------------------------------------------------------------------------------

def test_headers_and_refusals(ngx):
    shop = uniq()
    s, h, body = curl(ngx, "/shopbase/orders", "1", shop)
    check(s == 200 and body == "upstream\n", f"ShopBase first request passes upstream: {s}")
    check(h.get("x-sb-shop-api-call-limit") == "1/30", f"call limit 1/30: {h}")
    check(h.get("ratelimit") == '"shopbase";r=29;t=1', f"RateLimit: {h.get('ratelimit')}")
    check(h.get("ratelimit-policy") == '"shopbase";q=30;w=15', "RateLimit-Policy shopbase")
    check("retry-after" not in h, "no Retry-After on a pass")
    rows = curl_parallel(ngx, "/shopbase/orders", 29, "1", shop, parallel=False)
    check([r[4] for r in rows] == [f"{i}/30" for i in range(2, 31)],
          f"call limit counts 2/30 .. 30/30: {[r[4] for r in rows]}")
    s, h, _ = curl(ngx, "/shopbase/orders", "1", shop)
    check(s == 429, f"31st at once: 429 ({s})")
    check(h.get("retry-after") == "1", f"Retry-After 1: {h.get('retry-after')}")
    check(h.get("x-sb-shop-api-call-limit") == "30/30", "call limit 30/30 on the 429")
    check(h.get("ratelimit") == '"shopbase";r=0;t=15', f"RateLimit on the 429: {h.get('ratelimit')}")

    shop = uniq()
    s, h, _ = curl(ngx, "/tiktok/product/search", "2", shop)
    check(s == 200, "TikTok first request passes")
    check(h.get("ratelimit") == '"tiktok";r=49;t=1', f"TikTok RateLimit: {h.get('ratelimit')}")
    check(h.get("ratelimit-policy") == '"tiktok";q=50;w=1', "TikTok RateLimit-Policy")
    check("x-sb-shop-api-call-limit" not in h, "no ShopBase header on TikTok")
    s, h, _ = curl(ngx, "/tiktok/order/list", "2", shop)
    check(h.get("ratelimit") == '"tiktok";r=49;t=1', "another API of the same shop: its own window")

    for app, shop, what in [("1x", "1", "non-digit app"), ("1", "", "empty shop"),
                            ("-1", "1", "negative app"), ("1", "18446744073709551616", "2^64"),
                            ("1", "7 8", "space inside"), ("1", "0x10", "hex"), (None, "1", "missing app")]:
        s, h, _ = curl(ngx, "/shopbase/orders", app, shop)
        check(s == 400, f"malformed id ({what}) -> 400, got {s}")
    s, _, _ = curl(ngx, "/shopbase/orders", "18446744073709551615", "18446744073709551615")
    check(s == 200, "ids of 2^64 - 1 are fine")

    shop = uniq()
    s, h, _ = curl(ngx, "/shopbase/orders?limit=250&page=401", "3", shop)
    check(s == 429 and "retry-after" not in h, f"page too deep: 429 without Retry-After ({s})")
    check(h.get("x-sb-shop-api-call-limit") == "0/30", "too deep spends nothing: 0/30")
    s, h, _ = curl(ngx, "/shopbase/orders?limit=250&page=400", "3", shop)
    check(s == 200 and h.get("x-sb-shop-api-call-limit") == "1/30", "page 400 passes: 1/30")
    s, _, _ = curl(ngx, "/shopbase/orders?limit=x&page=1", "3", shop)
    check(s == 400, "non-numeric page parameters: 400")
    s, _, _ = curl(ngx, "/shopbase/orders?limit=250&page=401", "3", shop, ["-X", "POST"])
    check(s == 200, "the pagination rule is for GET only")

    shop = uniq()
    s, h, _ = curl(ngx, f"/byarg/x?app=5&shop={shop}", None, None)
    check(s == 200 and h.get("x-sb-shop-api-call-limit") == "1/30", "ids from the query string")
    s, _, _ = curl(ngx, "/byarg/x?app=5", None, None)
    check(s == 400, "missing query id: 400")


def test_burst_then_rate(ngx):
    shop = uniq()
    rows = curl_parallel(ngx, "/shopbase/burst", 60, "10", shop)
    check(len(rows) == 60, f"60 answers ({len(rows)})")
    stamps = [r[1] for r in rows if r[1] is not None]
    admitted = sum(1 for r in rows if r[0] == 200)
    span = max(stamps) - min(stamps)
    bound = shopbase_bound(min(stamps), max(stamps))
    workers = {r[2] for r in rows if r[0] == 200}
    print(f"  burst: 60 at once over {span / 1000:.1f} ms -> {admitted} admitted "
          f"(exact: {bound}), by {len(workers)} workers")
    # Exact when the 60 arrive within half a second (one drained unit); after a stall of the
    # machine, two workers' clock readings may reach the table out of order: one fewer.
    slack = 0 if span < US // 2 else 1
    check(bound - slack <= admitted <= bound,
          f"a fresh key gets exactly {bound} at once, got {admitted}")
    check(len(workers) >= 2, f"the burst was answered by several workers: {workers}")
    check(all(r[3] == "1" for r in rows if r[0] == 429), "every 429 says Retry-After: 1")

    _, workers, summary = wrk(ngx, "/shopbase/rate", 1, 10, shop, 4)
    k = server_log(ngx).get(("shopbase", f"10:{shop}"), {})
    first, last = k["first200"], k["last200"]
    total = k.get(200, 0)
    bound = shopbase_bound(first, last)
    print(f"  then wrk {summary['requests']} requests: {total} admitted in all, the last "
          f"{(last - first) / US:.2f} s after the first (exact: {bound}), {len(workers)} workers")
    check(total <= bound, f"never more than 30 + 2/s: {total} > {bound}")
    check(total >= bound - 1, f"and no fewer (bucket kept full): {total} < {bound - 1}")
    check(len(workers) >= 2, f"several workers answered: {len(workers)}")


def test_tiktok_windows(ngx):
    shop = uniq()
    _, workers, summary = wrk(ngx, "/tiktok/order/list", 1, 20, shop, 3)
    wins = server_log(ngx).get(("tiktok", f"20:{shop}"), {}).get("windows", {})
    inner = [w for w in wins if min(wins) < w < max(wins)]
    print(f"  tiktok: {summary['requests']} requests, admitted per second: "
          f"{[wins[w] for w in sorted(wins)]}, {len(workers)} workers")
    check(all(n <= 50 for n in wins.values()), f"at most 50 in every window: {wins}")
    check(len(inner) >= 1 and all(wins[w] == 50 for w in inner),
          f"exactly 50 in every full window: {wins}")
    check(len(workers) >= 2, f"several workers answered: {len(workers)}")


def test_shadow(ngx):
    shop = uniq()
    fmt = "## %{http_code} %header{x-tollgate-shadow} %header{x-sb-shop-api-call-limit} " \
          "%header{retry-after}\n"
    out = subprocess.run(["curl", "-s", "--max-time", "10", "-H", "X-App-Id: 30", "-H",
                          f"X-Shop-Id: {shop}", "-w", fmt, ngx.url("/shadow/x?n=[1-35]")],
                         capture_output=True, timeout=30).stdout.decode()
    rows = [line[3:].split(" ") for line in out.splitlines() if line.startswith("## ")]
    check(len(rows) == 35 and all(r[0] == "200" for r in rows), "shadow mode refuses nothing")
    marks = [r[1] for r in rows]
    check(marks.count("pass") == 30 and marks.count("would-limit") == 5,
          f"30 pass, 5 would-limit: {marks.count('pass')}, {marks.count('would-limit')}")
    check(rows[-1][2] == "30/30", f"shadow reports the numbers: {rows[-1][2]}")
    check(all(r[3] == "" for r in rows), "shadow sends no Retry-After")
    s, h, _ = curl(ngx, "/shadow/x?limit=250&page=401", "30", shop)
    check(s == 200 and h.get("x-tollgate-shadow") == "would-limit", "shadow pagination too")


def test_flood(ngx, results):
    """More keys than the table / zone holds: tollgate stays exact (fail-closed 503) or flags
    (fail-open); limit_req's evictions hand out fresh bursts."""
    nkeys, secs = 400, 4
    base = uniq() * 1000
    for path, name in [("/small/f", "tollgate fail-closed (64 slots)"),
                       ("/limit_req_small/f", "limit_req (32 KiB zone)"),
                       ("/small_open/f", "tollgate fail-open (64 slots)")]:
        base += 1000
        _, _, summary = wrk(ngx, path, nkeys, 40, base, secs)
        loc = path.split("/")[1]
        keys = {key: e for (l, key), e in server_log(ngx).items()
                if l == loc and key.startswith("40:")
                and base <= int(key.split(":")[1]) < base + nkeys}
        admitted = [k.get(200, 0) for k in keys.values()]
        s503 = sum(k.get(503, 0) for k in keys.values())
        due = 30 + 2 * secs
        over = [a for a in admitted if a > due + 1]
        row = (name, len(keys), summary["requests"], sum(admitted), max(admitted), s503, len(over))
        results.append(row)
        print(f"  flood {name}: {len(keys)} keys, {summary['requests']} requests, "
              f"{sum(admitted)} admitted, max {max(admitted)} per key (due <= {due}), "
              f"503: {s503}, keys over: {len(over)}")
        if path == "/small/f":
            exact = all(k.get(200, 0) <= shopbase_bound(k["first200"], k["last200"])
                        for k in keys.values() if k.get(200, 0))
            check(exact, "fail-closed flood: every key within 30 + 2/s of its own span")
            check(s503 > 0, "fail-closed flood: the keys that find no room get 503")
            st = curl(ngx, "/stats?policy=small", None, None)[2]
            check('"rejected":0' not in st, f"the table counts its refusals: {st}")
    return results


def test_fail_open_flagged(ngx):
    base = uniq() * 1000 + 500
    flagged = 0
    for i in range(80):
        _, h, _ = curl(ngx, "/small_open/x", "41", base + i)
        flagged += h.get("x-tollgate-fail-open") == "table-full"
    check(flagged > 0, f"fail-open passes are flagged (X-Tollgate-Fail-Open): {flagged}")


def test_reload(ngx):
    shop = uniq()
    rows = curl_parallel(ngx, "/shopbase/r", 30, "50", shop, parallel=False)
    t1 = rows[0][1]
    s, _, _ = curl(ngx, "/shopbase/r", "50", shop)
    check(s == 429, "bucket full before the reload")
    old = set(ngx.workers())
    r = ngx.cmd("-s", "reload")
    check(r.returncode == 0, "nginx -s reload")
    wait_new_workers(ngx, old)
    s, h, _ = curl(ngx, "/shopbase/r", "50", shop)
    # Kept: the level is what 30 requests at t1 drained at 2/s leave (plus this one if it
    # passed); reset would say 1/30.
    used = int(h.get("x-sb-shop-api-call-limit", "0/30").split("/")[0])
    level = 30 - 2 * (int(h.get("x-tollgate-now", "0")) - t1) / US
    want = min(30, int(level) + 1 + (s == 200))
    print(f"  reloaded {(int(h.get('x-tollgate-now', '0')) - t1) / US:.2f} s after the burst: "
          f"{s} {used}/30 (kept: ~{want}/30, reset: 1/30)")
    check(abs(used - want) <= 1 and used > 1,
          f"same configuration reloaded: the state is kept ({s}, {used}/30, want ~{want})")
    s, h, _ = curl(ngx, "/tiktok/r", "50", shop)
    check(s == 200, "tiktok still served after the reload")

    ngx.render(capacity=8192)
    old = set(ngx.workers())
    r = ngx.cmd("-s", "reload")
    check(r.returncode == 0, "reload with a changed capacity")
    wait_new_workers(ngx, old)
    s, h, _ = curl(ngx, "/shopbase/r", "50", shop)
    check(s == 200 and h.get("x-sb-shop-api-call-limit") == "1/30",
          f"a policy whose parameters changed starts empty ({s}, {h.get('x-sb-shop-api-call-limit')})")
    ngx.render(capacity=4096)


def wait_new_workers(ngx, old):
    for _ in range(200):
        w = set(ngx.workers())
        if len(w) == 4 and not (w & old):
            time.sleep(0.2)
            return
        time.sleep(0.05)
    check(False, f"new workers after reload: {ngx.workers()} (old {old})")


def test_sigkill(ngx):
    """A worker killed with SIGKILL during load: the others go on, the limit holds."""
    base = uniq() * 1000 + 900
    nkeys, secs = 20, 5
    proc = subprocess.Popen(
        ["wrk", "-t2", "-c32", f"-d{secs}s", "--timeout", "5s", "-s",
         os.path.join(HERE, "count.lua"), ngx.url(""), "--", "/shopbase/k", str(nkeys), "60",
         str(base)], stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    victim = ngx.workers()[0]
    kill_at = time.monotonic_ns() // 1000
    os.kill(victim, signal.SIGKILL)
    out, _ = proc.communicate(timeout=secs + 60)
    _, workers, summary = parse_wrk(out)
    keys = {key: e for (l, key), e in server_log(ngx).items()
            if l == "shopbase" and key.startswith("60:")
            and base <= int(key.split(":")[1]) < base + nkeys}
    bounds = {key: shopbase_bound(k["first200"], k["last200"]) for key, k in keys.items()}
    exact = [k.get(200, 0) <= bounds[key] for key, k in keys.items()]
    # Requests the killed worker had admitted but not yet logged are missing from nginx's
    # account: a key may show up to 2 fewer than its due (never more than it).
    tight = [k.get(200, 0) >= bounds[key] - 2 for key, k in keys.items()]
    # The victim may finish a decision in the microseconds between the clock read and the
    # signal taking effect: 50 ms of grace. The others must still answer a second later.
    victim_last = workers.get(str(victim), (0, 0))[1]
    after = {pid: last for pid, (_, last) in workers.items()
             if pid != str(victim) and last > kill_at + US}
    print(f"  SIGKILL worker {victim} at 2 s of {secs}: {summary['requests']} requests, "
          f"{sum(k.get(200, 0) for k in keys.values())} admitted over {len(keys)} keys, "
          f"workers answering 1 s after the kill: {len(after)}")
    check(len(keys) == nkeys and all(exact), "every key within 30 + 2/s despite the kill")
    check(all(tight), "and every key got its due (no slot wedged by the killed worker)")
    check(victim_last < kill_at + US // 20,
          f"the killed worker answered nothing afterwards ({(victim_last - kill_at) / 1000:.1f} ms)")
    check(len(after) >= 3, f"the other workers went on: {sorted(after)}")
    check(len(ngx.workers()) == 4 and victim not in ngx.workers(), "the master replaced it")


def test_example_config():
    """examples/nginx/nginx.conf, with its paths pointed here, passes `nginx -t` (which runs its
    init_by_lua_block: the policies are made)."""
    prefix = tempfile.mkdtemp(prefix="tollgate-example-")
    try:
        os.makedirs(os.path.join(prefix, "logs"))
        with open(os.path.join(ROOT, "examples", "nginx", "nginx.conf"), encoding="utf-8") as f:
            text = f.read()
        text = (text.replace("/opt/tollgate/lua", os.path.join(ROOT, "lua"))
                .replace("/usr/local/lib/libtollgate.so", LIB)
                .replace("load_module modules/", f"load_module {MODULES}/")
                .replace("listen 8080;", f"listen 127.0.0.1:{free_port()};"))
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(text)
        r = subprocess.run(["nginx", "-t", "-p", prefix, "-c", conf, "-e",
                            os.path.join(prefix, "logs", "error.log"), "-g",
                            f"pid {prefix}/nginx.pid;"], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0 and "test is successful" in r.stderr,
              "examples/nginx/nginx.conf passes nginx -t:\n" + r.stderr)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def main():
    for tool in ("nginx", "curl", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found")
    start = time.time()
    print("--- example configuration", flush=True)
    test_example_config()
    ngx = Nginx()
    results = []
    try:
        ngx.start()
        for name, fn in [("headers and refusals", test_headers_and_refusals),
                         ("burst then rate across workers", test_burst_then_rate),
                         ("TikTok windows", test_tiktok_windows),
                         ("shadow mode", test_shadow),
                         ("key flood vs limit_req", lambda n: test_flood(n, results)),
                         ("fail-open flagged", test_fail_open_flagged),
                         ("reload", test_reload),
                         ("SIGKILL a worker under load", test_sigkill)]:
            print(f"--- {name}", flush=True)
            fn(ngx)
        alerts = [l for l in ngx.log().splitlines() if "[error]" in l or "[alert]" in l
                  or "[crit]" in l or "[emerg]" in l]
        # The SIGKILL test makes the master log the killed worker's exit; limit_req logs nothing.
        alerts = [l for l in alerts if "exited on signal 9" not in l]
        check(not alerts, "no errors in nginx's log:\n" + "\n".join(alerts[:10]))
    finally:
        ngx.stop()
        shutil.rmtree(ngx.prefix, ignore_errors=True)
    print(f"=== nginx tests: {passed} checks passed, {len(failures)} failed "
          f"({time.time() - start:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
