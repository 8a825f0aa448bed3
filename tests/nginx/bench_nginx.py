#!/usr/bin/env python3
"""Benchmark: tollgate's access handler beside nginx's limit_req and lua-resty-limit-traffic's
resty.limit.req, in one nginx (4 workers, tests/nginx/bench.conf.in), in one run.

    python3 tests/nginx/bench_nginx.py [--seconds 8] [--rounds 3]
    RESTY_LIMIT_TRAFFIC=/path/to/lua-resty-limit-traffic/lib  (its resty/limit/req.lua; not a
    Debian package: without it the resty.limit.req rows are skipped)

1. Cost: wrk over 20 000 fresh keys (every request admitted) on five locations with the same
   content handler (empty_gif): no limiter; an access handler that only reads the two key
   headers; tollgate (the decision and its three headers); resty.limit.req on top of the same
   header reads; limit_req. Worker CPU per request from /proc/<pid>/schedstat of the 4 workers
   before and after each run (nanoseconds on CPU), beside wrk's throughput and latency.
   Variants are interleaved, `rounds` times; the median round is reported.
2. Admitted counts for the same traffic: one hot key, and a flood of 2 000 keys into 32 KiB
   (limit_req's small zone; tollgate's 1 014-slot table of the same size).
"""
import argparse
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_nginx as T  # noqa: E402


def cpu_ns(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
            total += int(f.read().split()[0])
    return total


def run(ngx, path, keys, shop0, secs, conns=64, depth=1):
    pids = ngx.workers()
    c0 = cpu_ns(pids)
    k, _, summary = T.wrk(ngx, path, keys, 7, shop0, secs, threads=2, conns=conns, depth=depth)
    c1 = cpu_ns(pids)
    n = summary["requests"]
    statuses = {}
    for v in k.values():
        for s in (200, 429, 503):
            statuses[s] = statuses.get(s, 0) + v.get(s, 0)
    return {
        "requests": n,
        "rps": n / (summary["duration_us"] / 1e6),
        "p50": summary["p50_us"],
        "p99": summary["p99_us"],
        "cpu": (c1 - c0) / max(n, 1) / 1000,  # us per request
        "statuses": statuses,
        "keys": k,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--flood-seconds", type=int, default=10)
    ap.add_argument("--depth", type=int, default=16, help="requests pipelined per write")
    args = ap.parse_args()
    rlt = os.environ.get("RESTY_LIMIT_TRAFFIC", "")
    have_resty = bool(rlt) and os.path.exists(os.path.join(rlt, "resty", "limit", "req.lua"))
    ngx = T.Nginx("bench.conf.in", RLT=rlt or "/nonexistent")
    variants = (["none", "readkeys", "tollgate", "tollgate_nohdr"]
                + (["resty"] if have_resty else []) + ["limit_req"])
    results = {v: [] for v in variants}
    shop0 = int(time.time()) % 1000 * 10_000_000
    try:
        ngx.start()
        cv = ["empty", "readkeys", "tollgate", "tollgate_nohdr"] + (["resty"] if have_resty else [])
        for r in range(args.rounds):
            for v in variants:
                shop0 += 100_000
                res = run(ngx, f"/{v}/x", 20000, shop0, args.seconds, conns=32,
                          depth=args.depth)
                results[v].append(res)
                print(f"round {r + 1} {v:10s} {res['rps']:8.0f} req/s  p50 {res['p50']} us  "
                      f"p99 {res['p99']} us  worker CPU {res['cpu']:.2f} us/req  "
                      f"{res['statuses']}", flush=True)
            # The in-handler measurement, interleaved the same way (sums over all rounds).
            for v in cv:
                shop0 += 100_000
                run(ngx, f"/cpu/x?v={v}", 20000, shop0, max(2, args.seconds // 2), conns=32,
                    depth=args.depth)
        print()
        print("| location | req/s | p50 | p99 | worker CPU / request | over `readkeys` |")
        print("|---|---:|---:|---:|---:|---:|")
        med = {v: statistics.median(x["cpu"] for x in results[v]) for v in variants}
        for v in variants:
            rs = results[v]
            rps = statistics.median(x["rps"] for x in rs)
            p50 = statistics.median(x["p50"] for x in rs)
            p99 = statistics.median(x["p99"] for x in rs)
            extra = med[v] - med["readkeys"]
            print(f"| `{v}` | {rps:,.0f} | {p50 / 1000:.2f} ms | {p99 / 1000:.2f} ms | "
                  f"{med[v]:.2f} µs | {extra:+.2f} µs |")

        print()
        print("The access handlers' own CPU time (CLOCK_THREAD_CPUTIME_ID around the same code "
              "in the worker; the same traffic; minus an empty handler's; all rounds):")
        print("| handler | CPU / request | over `readkeys` |")
        print("|---|---:|---:|")
        rep = dict(line.split() for line in
                   T.curl(ngx, "/cpu_report", None, None)[2].strip().splitlines())
        per = {v: int(rep[v]) / int(rep[v + "_n"]) / 1000 for v in cv}
        for v in cv[1:]:
            print(f"| `{v}` | {per[v] - per['empty']:.2f} µs | "
                  f"{per[v] - per['readkeys']:+.2f} µs |")
        print(f"(empty handler: {per['empty']:.2f} µs: two clock reads; "
              f"{int(rep['tollgate_n']):,} requests per handler)")

        print()
        print("Admitted for the same traffic (one hot key, "
              f"{args.flood_seconds} s; due: 30 + 2/s x span):")
        print("| location | requests | admitted | due | 429 | 503 |")
        print("|---|---:|---:|---:|---:|---:|")
        for v in ["tollgate"] + (["resty"] if have_resty else []) + ["limit_req"]:
            shop0 += 100_000
            res = run(ngx, f"/{v}/hot", 1, shop0, args.flood_seconds)
            st = res["statuses"]
            due = 30 + 2 * args.flood_seconds
            print(f"| `{v}` | {res['requests']:,} | {st.get(200, 0)} | ≈{due} | "
                  f"{st.get(429, 0):,} | {st.get(503, 0):,} |", flush=True)

        print()
        due = 30 + 2 * args.flood_seconds
        print(f"Key floods into 32 KiB for {args.flood_seconds} s (due per key at most "
              f"30 + 2 x {args.flood_seconds} = {due}):")
        print("| keys | location | requests | admitted | admitted per key: median / max | "
              "keys over the due | 503 |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        for nkeys in (600, 2000):
            for v, name in [("small", "tollgate, 1 014 slots, fail-closed"),
                            ("limit_req_small", "limit_req, 32 KiB zone")]:
                shop0 += 100_000
                res = run(ngx, f"/{v}/flood", nkeys, shop0, args.flood_seconds)
                adm = sorted(k.get(200, 0) for k in res["keys"].values())
                over = sum(1 for a in adm if a > due)
                print(f"| {nkeys:,} | {name} | {res['requests']:,} | {sum(adm):,} | "
                      f"{statistics.median(adm):.0f} / {max(adm)} | {over} | "
                      f"{res['statuses'].get(503, 0):,} |", flush=True)
        alerts = [l for l in ngx.log().splitlines()
                  if "[alert]" in l or "[error]" in l or "[crit]" in l]
        print(f"\nnginx error log: {len(alerts)} [crit]/[alert]/[error] lines"
              + (f", e.g. {alerts[0][:160]}" if alerts else ""))
    finally:
        ngx.stop()
        shutil.rmtree(ngx.prefix, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
