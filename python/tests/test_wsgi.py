"""The WSGI middleware against a real wsgiref server on 127.0.0.1, with http.client."""

from __future__ import annotations

import http.client
import threading
from contextlib import contextmanager
from typing import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import tollgate as tg
from tollgate.wsgi import RateLimitMiddleware, parse_id

TICKS = [0]


def clock() -> int:
    return TICKS[0]


def upstream(environ: dict, start_response) -> list[bytes]:
    if environ.get("PATH_INFO") == "/boom":
        raise RuntimeError("upstream failed")
    decision = environ["tollgate.decision"]
    start_response(
        "201 Created",
        [
            ("Content-Type", "text/plain"),
            ("X-Upstream", "yes"),
            ("X-Seen-Used", str(decision.used)),
        ],
    )
    return [b"hello from upstream"]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve(app) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def get(
    port: int,
    path: str = "/orders",
    app: str | None = "7",
    shop: str | None = "42",
    method: str = "GET",
):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {}
    if app is not None:
        headers["X-App-Id"] = app
    if shop is not None:
        headers["X-Shop-Id"] = shop
    conn.request(method, path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


@pytest.fixture()
def shopbase() -> Iterator[int]:
    TICKS[0] = 0
    app = RateLimitMiddleware(upstream, clock=clock, ticks_per_second=1000)
    with serve(app) as port:
        yield port


def test_allowed_requests_pass_through_with_headers(shopbase: int) -> None:
    status, headers, body = get(shopbase)
    assert status == 201 and body == b"hello from upstream"
    assert headers["X-Upstream"] == "yes"
    assert headers["X-Seen-Used"] == "1"  # the app saw the decision
    assert headers["X-Sb-Shop-Api-Call-Limit"] == "1/30"
    assert headers["RateLimit"] == '"shopbase";r=29;t=1'
    assert headers["RateLimit-Policy"] == '"shopbase";q=30;w=15'
    assert "Retry-After" not in headers


def test_the_31st_request_gets_429_with_retry_after(shopbase: int) -> None:
    for i in range(30):
        status, headers, _ = get(shopbase)
        assert status == 201, i
    assert headers["X-Sb-Shop-Api-Call-Limit"] == "30/30"
    status, headers, body = get(shopbase)
    assert status == 429 and b"rate limit exceeded" in body
    assert headers["Retry-After"] == "1"  # 0.5 s rounded up
    assert headers["X-Sb-Shop-Api-Call-Limit"] == "30/30"
    assert headers["RateLimit"] == '"shopbase";r=0;t=15'
    assert "X-Upstream" not in headers
    # another shop of the same app has its own bucket
    assert get(shopbase, shop="43")[0] == 201
    # half a second later one more passes
    TICKS[0] = 500
    assert get(shopbase)[0] == 201
    assert get(shopbase)[0] == 429


@pytest.mark.parametrize(
    ("app", "shop"),
    [
        (None, "42"),
        ("7", None),
        ("-1", "42"),
        ("7", "4x"),
        ("7", "18446744073709551616"),
        ("", "1"),
        ("7 7", "1"),
        ("0x10", "1"),
    ],
)
def test_malformed_ids_get_400(shopbase: int, app: str | None, shop: str | None) -> None:
    status, headers, body = get(shopbase, app=app, shop=shop)
    assert status == 400 and b"X-App-Id" in body
    assert "X-Sb-Shop-Api-Call-Limit" not in headers


def test_largest_id_is_accepted(shopbase: int) -> None:
    assert get(shopbase, app="18446744073709551615", shop="0")[0] == 201


def test_deep_pagination(shopbase: int) -> None:
    status, headers, body = get(shopbase, "/orders?limit=250&page=401")
    assert status == 429 and b"pagination" in body
    assert "Retry-After" not in headers  # retrying cannot help
    assert get(shopbase, "/orders?limit=250&page=400")[0] == 201
    assert get(shopbase, "/orders?limit=abc&page=1")[0] == 400
    # not a GET: no pagination rule
    assert get(shopbase, "/orders?limit=250&page=401", method="POST")[0] == 201


def test_full_table_answers_503() -> None:
    TICKS[0] = 0
    app = RateLimitMiddleware(upstream, capacity=5, clock=clock, ticks_per_second=1000)
    with serve(app) as port:
        for shop in "12345":  # one group of 5 slots
            assert get(port, shop=shop)[0] == 201
        status, headers, _ = get(port, shop="6")
        assert status == 503 and headers["Retry-After"] == "1"
        assert app.table.stats.rejected == 1


def test_concurrency_cap_answers_503_and_releases() -> None:
    TICKS[0] = 0
    entered = threading.Event()
    release = threading.Event()

    def slow(environ: dict, start_response) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            entered.set()
            release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = RateLimitMiddleware(slow, max_in_flight=1, clock=clock, ticks_per_second=1000)
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    # a threading server, so a second request arrives while the first is in flight
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer

    class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    server.server_close()
    server = make_server(
        "127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_port
        first: list = []
        t = threading.Thread(target=lambda: first.append(get(port, "/slow")))
        t.start()
        assert entered.wait(10)
        status, headers, body = get(port)
        assert status == 503 and headers["Retry-After"] == "1" and b"in flight" in body
        release.set()
        t.join(10)
        assert first[0][0] == 200
        assert app.concurrency.in_flight == 0
        assert get(port)[0] == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_upstream_errors_release_the_permit() -> None:
    app = RateLimitMiddleware(upstream, max_in_flight=1)
    environ = {
        "HTTP_X_APP_ID": "1",
        "HTTP_X_SHOP_ID": "2",
        "PATH_INFO": "/boom",
        "REQUEST_METHOD": "GET",
    }
    with pytest.raises(RuntimeError):
        app(environ, lambda *a: None)
    assert app.concurrency.in_flight == 0


def test_key_func_and_window_policy() -> None:
    TICKS[0] = 0

    def from_path(environ: dict) -> tuple[int, int]:
        parts = environ["PATH_INFO"].strip("/").split("/")
        if len(parts) < 2:
            raise ValueError("path must be /app/shop")
        return int(parts[0]), int(parts[1])

    app = RateLimitMiddleware(
        upstream,
        quota=tg.WindowQuota(2, 1000),
        key_func=from_path,
        name="tiktok",
        clock=clock,
        ticks_per_second=1000,
    )
    with serve(app) as port:
        status, headers, _ = get(port, "/1/2", app=None, shop=None)
        assert status == 201 and headers["RateLimit-Policy"] == '"tiktok";q=2;w=1'
        assert get(port, "/1/2", app=None, shop=None)[0] == 201
        status, headers, _ = get(port, "/1/2", app=None, shop=None)
        assert status == 429 and headers["Retry-After"] == "1"
        assert get(port, "/nope", app=None, shop=None)[0] == 400
        assert get(port, "/x/2", app=None, shop=None)[0] == 400


def test_shadow_mode_never_refuses() -> None:
    TICKS[0] = 0
    app = RateLimitMiddleware(
        upstream, quota=tg.Quota(1, 1, 1000), shadow=True, clock=clock, ticks_per_second=1000
    )
    with serve(app) as port:
        assert get(port)[0] == 201
        status, headers, _ = get(port)
        assert status == 201 and headers["X-Sb-Shop-Api-Call-Limit"] == "1/1"


def test_parse_id() -> None:
    assert parse_id("0") == 0
    assert parse_id("18446744073709551615") == 2**64 - 1
    for bad in (None, "", "+1", "1.0", "１", "18446744073709551616", "9" * 21):
        assert parse_id(bad) is None
