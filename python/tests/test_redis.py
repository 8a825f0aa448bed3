"""The Redis backend (tollgate.redis) against a real redis-server.

Run by scripts/test-redis.sh, which starts the server (TOLLGATE_REDIS_PORT), writes the Rust
conformance suite's traces with the core's answers (TOLLGATE_TRACE_FILE) and sets
TOLLGATE_REDIS_REQUIRED=1 so that nothing here can be skipped. Elsewhere (no server, or no
``redis`` package) the module is skipped.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

REQUIRED = os.environ.get("TOLLGATE_REDIS_REQUIRED") == "1"
PORT = os.environ.get("TOLLGATE_REDIS_PORT")
if not REQUIRED:
    if PORT is None:
        pytest.skip("no Redis server: run through scripts/test-redis.sh", allow_module_level=True)
    pytest.importorskip("redis")

import redis  # noqa: E402

from tollgate import (  # noqa: E402
    FLAG_FAIL_OPEN,
    ClockOutOfRangeError,
    FixedWindow,
    LeakyBucket,
    Outcome,
    Quota,
    WindowQuota,
    ZeroCostError,
)
from tollgate.redis import (  # noqa: E402
    GCRA_LUA,
    WINDOW_LUA,
    FailurePolicy,
    RedisLimiter,
    Request,
)

URL = f"redis://127.0.0.1:{PORT}/"
SECOND = 1000


def fresh(name: str) -> str:
    return f"pytest:{name}:{uuid.uuid4().hex}:"


def limiter(name: str, tiers=(), **kw) -> RedisLimiter:
    kw.setdefault("ticks_per_second", SECOND)
    return RedisLimiter.from_url(URL, tiers, timeout=5.0, prefix=fresh(name), **kw)


def as_tuple(d) -> list:
    return [int(d.outcome), int(d.verdict), d.limit, d.used, d.remaining, d.retry_after,
            d.reset_after, d.flags]


def test_the_scripts_are_the_repository_files():
    root = os.path.join(os.path.dirname(__file__), "..", "tollgate", "lua")
    with open(os.path.join(root, "gcra.lua"), encoding="utf-8") as f:
        assert f.read() == GCRA_LUA
    with open(os.path.join(root, "fixed_window.lua"), encoding="utf-8") as f:
        assert f.read() == WINDOW_LUA


def _traces():
    path = os.environ.get("TOLLGATE_TRACE_FILE")
    if not path:
        if REQUIRED:
            raise AssertionError("TOLLGATE_TRACE_FILE is not set")
        pytest.skip("no traces: run through scripts/test-redis.sh")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_conformance_traces_decide_like_the_core():
    """Every trace of the Rust conformance generators (a fixed seed), through Python and a real
    Redis, one by one or in pipelined batches as the trace says, equals the core's answers."""
    traces = _traces()
    assert len(traces) >= 64
    lim = limiter("traces", ticks_per_second=1)
    checked = 0
    for n, t in enumerate(traces):
        if t["kind"] == "bucket":
            quotas = [
                Quota(b, c, p, min_span=0) if span is None
                else Quota(b, c, p, min_span=span, approximate=True)
                for b, c, p, span in t["quotas"]
            ]
        else:
            quotas = [WindowQuota(n_, w, o) for n_, w, o in t["quotas"]]
        requests = [
            Request(f"case{n}:{key}", quotas[qi], now, cost, peek)
            for key, qi, now, cost, peek in t["ops"]
        ]
        if t["chunk"] == 1:
            got = []
            for r in requests:
                try:
                    f = lim.peek if r.peek else lim.decide
                    got.append(f(r.key, r.cost, r.now, quota=r.limit))
                except Exception as e:  # noqa: BLE001 - compared with the core's error below
                    got.append(e)
        else:
            got = []
            for i in range(0, len(requests), t["chunk"]):
                got.extend(lim.decide_batch(requests[i : i + t["chunk"]]))
        for i, (g, e) in enumerate(zip(got, t["expected"])):
            if isinstance(e, str):
                expected_type = {"ZeroCost": ZeroCostError, "ClockOutOfRange": ClockOutOfRangeError}
                assert isinstance(g, expected_type[e]), (n, i, g, e)
            else:
                assert not isinstance(g, Exception), (n, i, g, e)
                assert as_tuple(g) == e, (n, i, t["ops"][i], t["quotas"])
            checked += 1
    assert lim.stats.policy_answers == 0
    assert checked > 1000


def test_shopbase_example_and_the_key_table_surface():
    q = Quota(30, 2, SECOND)
    lim = limiter("shopbase", q)
    for i in range(1, 30):
        d = lim.decide(("app", 42), now=0)
        assert d.allowed and d.used == i
    d = lim.peek(("app", 42), now=10 * SECOND)
    assert (d.used, d.limit, d.remaining) == (9, 30, 21)
    assert lim.decide("burst", 30, 0).allowed
    d = lim.decide("burst", 1, 0)
    assert (d.outcome, d.retry_after, d.reset_after) == (Outcome.LIMITED, 500, 15_000)
    assert lim.decide("burst", 31, 0).outcome is Outcome.NEVER
    assert not lim.allow("burst", 1, 0)
    with pytest.raises(ZeroCostError):
        lim.decide("burst", 0, 0)
    headers = lim.headers(d)
    assert headers["Retry-After"] == "1"


def test_python_and_rust_layouts_agree_with_the_core_on_windows_and_tiers():
    w = WindowQuota(2, 100)
    lim = limiter("tiers", [Quota(3, 1, SECOND), w])
    ref = FixedWindow(2, 100)
    for now in [0, 10, 20, 99, 100, 150, 201]:
        assert lim.decide("w", now=now, tier=1) == ref.decide(now=now)
    ref_b = LeakyBucket(3, 1, SECOND)
    for now in [0, 0, 0, 0, 500, 1000, 1000]:
        assert lim.decide("b", now=now) == ref_b.decide(now=now)


def test_bad_keys_are_repaired_and_one_refused_command_fails_only_its_request():
    q = Quota(5, 1, SECOND)
    for policy in FailurePolicy:
        lim = limiter("bad", q, policy=policy)
        r = redis.Redis.from_url(URL)
        p = lim.prefix.decode()
        r.set(f"{p}b:string", "x")
        r.hset(f"{p}b:huge", mapping={"s": "99999999999999999999999", "q": "5:1:1000"})
        r.hset(f"{p}b:foreign", mapping={"s": "0", "q": "someone-else"})
        batch = [Request(f"good{i}", q, 100) for i in range(20)]
        batch += [Request(k, q, 100) for k in ["string", "huge", "foreign"]]
        got = lim.decide_batch(batch)
        fresh_bucket = LeakyBucket(5, 1, SECOND)
        full = LeakyBucket(5, 1, SECOND)
        assert full.decide(5, now=100).allowed
        good, repaired = fresh_bucket.decide(now=100), full.decide(now=100)
        assert got[:20] == [good] * 20
        assert got[20:] == [repaired] * 3
        assert repaired.outcome is Outcome.LIMITED
        s = lim.stats
        assert (s.failures, s.policy_answers, s.server_errors, s.repaired) == (0, 0, 0, 3)

    # A per-key NOPERM from an ACL: the policy answers that request only.
    admin = redis.Redis.from_url(URL)
    prefix = fresh("noperm")
    user = f"tgpy{os.getpid()}"
    admin.execute_command("ACL", "SETUSER", user, "reset", "on", ">pw", f"~{prefix}b:good*",
                          "+@all")
    try:
        for policy in FailurePolicy:
            lim = RedisLimiter.from_url(f"redis://{user}:pw@127.0.0.1:{PORT}/", q, timeout=5.0,
                                        prefix=prefix, ticks_per_second=SECOND, policy=policy)
            batch = [Request(f"good{policy.value}{i}", q, 0) for i in range(20)]
            batch.insert(7, Request("bad", q, 0))
            got = lim.decide_batch(batch)
            ref = LeakyBucket(5, 1, SECOND).decide(now=0)
            assert got[:7] + got[8:] == [ref] * 20
            assert got[7] == lim.policy_decision(q)
            if policy is FailurePolicy.OPEN:
                assert got[7].flags & FLAG_FAIL_OPEN
            else:
                assert got[7].outcome is Outcome.OVERLOADED
            s = lim.stats
            assert (s.round_trips, s.failures, s.server_errors, s.policy_answers) == (1, 0, 1, 1)
            assert lim.decide(f"good{policy.value}0", 1, 0) != lim.policy_decision(q)
            assert lim.stats.round_trips == 2
    finally:
        admin.execute_command("ACL", "DELUSER", user)


def test_a_rust_written_state_is_read_by_python():
    """Both implementations write the same fields; a state written by Python is continued by the
    same arithmetic (checked through the raw hash)."""
    q = Quota(30, 2, SECOND)
    lim = limiter("layout", q)
    lim.decide("k", 3, 0)
    r = redis.Redis.from_url(URL)
    h = r.hgetall(lim.prefix + b"b:k")
    # S = now·D + c·I with D = 1, I = 500: 3 requests at 0.
    assert h == {b"s": b"1500", b"q": b"30:1:500"}
    assert 0 < r.pttl(lim.prefix + b"b:k") <= 1500 + 1000 + 2
    # Tuple keys are joined with "/": ("app", 42) is the key Rust names "app/42".
    lim.decide(("app", 42), 1, 0)
    assert r.exists(lim.prefix + b"b:app/42")


def test_a_stopped_redis_is_answered_by_the_policy_within_the_timeout(tmp_path):
    """A server of the test's own, stopped with SIGSTOP: every call ends within the timeout plus
    a small slack, answered by the policy; after SIGCONT decisions resume."""
    import signal
    import socket
    import subprocess

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = os.environ.get("TOLLGATE_REDIS_SERVER", "redis-server")
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        timeout = 0.4
        q = Quota(100, 1, SECOND)
        lim = RedisLimiter.from_url(f"redis://127.0.0.1:{port}/", q, timeout=timeout,
                                    ticks_per_second=SECOND, retry_interval=0.001)
        assert lim.decide("k", now=0).allowed
        proc.send_signal(signal.SIGSTOP)
        slowest = 0.0
        for _ in range(8):
            t0 = time.monotonic()
            d = lim.decide("k", now=0)
            took = time.monotonic() - t0
            slowest = max(slowest, took)
            assert d.outcome is Outcome.OVERLOADED
            time.sleep(0.002)
        assert slowest < timeout + 0.08, slowest
        assert lim.stats.failures >= 4
        proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while lim.decide("k", now=0).verdict is Outcome.OVERLOADED:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()


# --- Redis Cluster: the 3-primary cluster scripts/test-redis.sh starts (TOLLGATE_REDIS_CLUSTER) ---

CLUSTER = os.environ.get("TOLLGATE_REDIS_CLUSTER")


def cluster_client(timeout: float = 5.0):
    from redis.backoff import NoBackoff
    from redis.cluster import ClusterNode, RedisCluster
    from redis.retry import Retry

    if not CLUSTER:
        if REQUIRED:
            raise AssertionError("TOLLGATE_REDIS_CLUSTER is not set")
        pytest.skip("no Redis Cluster: run through scripts/test-redis.sh")
    nodes = [ClusterNode(h, int(p)) for h, p in (n.split(":") for n in CLUSTER.split(","))]
    return RedisCluster(startup_nodes=nodes, socket_timeout=timeout,
                        socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))


def test_conformance_traces_through_a_cluster():
    """The same traces through a RedisCluster client: keys spread over the three primaries (one
    declared key per script, so each command goes to its key's node)."""
    client = cluster_client()
    traces = _traces()[:64]
    lim = RedisLimiter(client, ticks_per_second=1, prefix=fresh("clustertraces"))
    for n, t in enumerate(traces):
        if t["kind"] == "bucket":
            quotas = [
                Quota(b, c, p, min_span=0) if span is None
                else Quota(b, c, p, min_span=span, approximate=True)
                for b, c, p, span in t["quotas"]
            ]
        else:
            quotas = [WindowQuota(n_, w, o) for n_, w, o in t["quotas"]]
        requests = [
            Request(f"case{n}:{key}", quotas[qi], now, cost, peek)
            for key, qi, now, cost, peek in t["ops"]
        ]
        got = []
        for i in range(0, len(requests), t["chunk"]):
            got.extend(lim.decide_batch(requests[i : i + t["chunk"]]))
        for i, (g, e) in enumerate(zip(got, t["expected"])):
            if isinstance(e, str):
                assert isinstance(g, Exception), (n, i, g, e)
            else:
                assert as_tuple(g) == e, (n, i, t["ops"][i], t["quotas"])
    assert lim.stats.policy_answers == 0
    held = [
        len(redis.Redis(host=h, port=int(p)).keys(lim.prefix + b"*"))
        for h, p in (x.split(":") for x in CLUSTER.split(","))
    ]
    assert all(k > 0 for k in held), held


def test_a_killed_cluster_primary_fails_only_its_own_keys():
    """SIGKILL one primary: its keys are answered by the policy within the timeout, the keys of
    the other primaries keep their exact answers; after a restart its keys are decided again.
    Runs last (it restarts a node of the shared cluster)."""
    import signal
    import subprocess

    timeout = 0.4
    client = cluster_client(timeout)
    q = Quota(3, 1, SECOND)
    lim = RedisLimiter(client, q, ticks_per_second=SECOND, prefix=fresh("clusterkill"),
                       retry_interval=0.1)
    keys = [f"k{i}" for i in range(30)]
    victim = CLUSTER.split(",")[1]
    on_victim = [client.get_node_from_key(lim.prefix + b"b:" + k.encode()).name == victim
                 for k in keys]
    assert any(on_victim) and not all(on_victim)
    ref = LeakyBucket(3, 1, SECOND)
    first = ref.decide(now=0)
    assert lim.decide_batch([Request(k, q, 0) for k in keys]) == [first] * 30

    host, port = victim.split(":")
    pid = redis.Redis(host=host, port=int(port)).info("server")["process_id"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.05)
    for _ in range(3):
        exact = ref.decide(now=0)
        t0 = time.monotonic()
        got = lim.decide_batch([Request(k, q, 0) for k in keys])
        took = time.monotonic() - t0
        assert took < timeout + 0.08, took
        for k, g, v in zip(keys, got, on_victim):
            if v:
                assert g.outcome is Outcome.OVERLOADED, k
            else:
                assert g == exact, k
    assert lim.stats.failures >= 1

    subprocess.run(
        [os.environ.get("TOLLGATE_REDIS_SERVER", "redis-server"), "--bind", "127.0.0.1",
         "--port", port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
         "--cluster-require-full-coverage", "no", "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--logfile", "redis.log", "--pidfile", "redis.pid"],
        cwd=os.path.join(os.environ["TOLLGATE_REDIS_CLUSTER_DIR"], port), check=True,
    )
    k = keys[on_victim.index(True)]
    deadline = time.monotonic() + 20
    while True:
        d = lim.decide(k, 1, 10 * SECOND)
        if d.verdict is not Outcome.OVERLOADED:
            assert (d.outcome, d.used) == (Outcome.ALLOWED, 1)
            break
        assert time.monotonic() < deadline, "the restarted primary was not used again"
        time.sleep(0.05)


def test_tls_with_a_throwaway_certificate_authority(tmp_path):
    """A redis-server of the test's own on a TLS port only, with a CA and a server certificate
    made here by openssl: decisions over ``rediss://`` equal the core's, and a client that does
    not trust the CA gets no answer from Redis (the policy answers)."""
    import shutil
    import socket
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        if REQUIRED:
            raise AssertionError("openssl is needed for the TLS test")
        pytest.skip("no openssl")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=tmp_path, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tollgate test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
        "-out", "server.csr")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-extfile", "san.ext", "-out", "server.crt")

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = os.environ.get("TOLLGATE_REDIS_SERVER", "redis-server")
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"rediss://127.0.0.1:{port}/"
        ca = str(tmp_path / "ca.crt")
        probe = redis.Redis.from_url(url, ssl_ca_certs=ca, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the TLS server did not come up"
                time.sleep(0.05)
        q = Quota(3, 1, SECOND)
        lim = RedisLimiter.from_url(url, q, timeout=5.0, ticks_per_second=SECOND,
                                    client_options={"ssl_ca_certs": ca})
        ref = LeakyBucket(3, 1, SECOND)
        for now in [0, 0, 0, 0, 500, 1000]:
            assert lim.decide("k", now=now) == ref.decide(now=now)
        untrusting = RedisLimiter.from_url(url, q, timeout=5.0, ticks_per_second=SECOND)
        d = untrusting.decide("k", now=0)
        assert d.outcome is Outcome.OVERLOADED and untrusting.stats.failures == 1
    finally:
        proc.kill()
        proc.wait()


def test_hybrid_mode_answers_sure_denials_locally_and_equals_the_core_on_one_process():
    from tollgate.redis import HybridLimiter

    q = Quota(5, 1, SECOND)
    w = WindowQuota(3, SECOND)
    hybrid = HybridLimiter(limiter("hybrid"), capacity=4)
    ref_b, ref_w = LeakyBucket(5, 1, SECOND), FixedWindow(3, SECOND)
    for now in [0] * 8 + [999, 1000, 1000, 1000, 2500] + [2500] * 6:
        assert hybrid.decide("b", 1, now, quota=q) == ref_b.decide(now=now)
        assert hybrid.decide("w", 1, now, quota=w) == ref_w.decide(now=now)
    assert hybrid.local_denials >= 10
    trips = hybrid.shared.stats.round_trips
    assert hybrid.decide("b", 1, 2500, quota=q).outcome is Outcome.LIMITED
    assert hybrid.shared.stats.round_trips == trips  # answered locally
    # A bounded mirror forgets safely: many keys, answers still exact.
    for k in range(10):
        assert hybrid.decide(f"m{k}", 1, 0, quota=q) == LeakyBucket(5, 1, SECOND).decide(now=0)


def test_the_generic_middleware_shares_one_limit_through_redis():
    """Two WSGI apps (two hosts) with tollgate.middleware over one Redis: one ShopBase limit."""
    from tollgate.middleware import Policy, RateLimiter, ids
    from tollgate.middleware.wsgi import RateLimitMiddleware

    q = Quota(30, 2, 1_000_000_000)
    prefix = fresh("middleware")

    def host() -> RateLimitMiddleware:
        # Hosts share Redis, so they share a clock too: the (synchronised) wall clock.
        backend = RedisLimiter.from_url(URL, q, timeout=5.0, prefix=prefix,
                                        ticks_per_second=1_000_000_000, clock=time.time_ns)
        limiter = RateLimiter(Policy(q, key=ids(), name="shopbase", backend=backend,
                                     vendor_header=True))

        def upstream(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        return RateLimitMiddleware(upstream, limiter)

    a, b = host(), host()
    statuses = []
    headers = []
    for i in range(40):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders", "QUERY_STRING": "",
                   "HTTP_X_APP_ID": "7", "HTTP_X_SHOP_ID": "42", "wsgi.url_scheme": "http",
                   "SERVER_NAME": "localhost", "SERVER_PORT": "80"}

        def start_response(status, hdrs, exc_info=None):
            statuses.append(int(status.split()[0]))
            headers.append(dict(hdrs))

        list((a if i % 2 else b)(environ, start_response))
    # The 40 requests took well under a second: 30 of them (the bucket) pass, whichever host.
    assert statuses.count(200) in (30, 31), statuses
    assert statuses[:30] == [200] * 30
    assert all(s == 429 for s in statuses[31:]), statuses
    assert headers[29]["X-Sb-Shop-Api-Call-Limit"] == "30/30"
