"""The framework-free server core: key functions, routes, replies, shadow mode, backends."""

from __future__ import annotations

import asyncio
import json

import pytest

import tollgate as tg
from tollgate.middleware import (
    AsyncBackend,
    Backend,
    BadRequest,
    Policy,
    RateLimiter,
    Refusal,
    Reply,
    Request,
    api_key,
    client_address,
    compose,
    header,
    ids,
    query_param,
    route,
)

HOUR = 3600 * 1000
TICKS = [0]


def clock() -> int:
    return TICKS[0]


def req(
    path: str = "/",
    method: str = "GET",
    query: str = "",
    client: str | None = "10.0.0.1",
    **headers: str,
) -> Request:
    return Request(
        method, path, query, {k.replace("_", "-").lower(): v for k, v in headers.items()}, client
    )


def window(limit: int, **kw) -> Policy:
    kw.setdefault("clock", clock)
    kw.setdefault("ticks_per_second", 1000)
    return Policy(tg.WindowQuota(limit, HOUR), **kw)


def test_key_functions() -> None:
    r = req(
        "/a",
        query="key=q1&x=2",
        X_Api_Key="k1",
        Authorization="Bearer tok",
        X_Forwarded_For="1.2.3.4, 5.6.7.8",
        X_App_Id="7",
        X_Shop_Id="42",
    )
    assert header("X-Api-Key")(r) == "k1"
    assert api_key()(r) == "k1"
    assert api_key("Authorization")(r) == "tok"
    assert query_param("key")(r) == "q1"
    assert client_address()(r) == "10.0.0.1"
    assert client_address(forwarded_for=True)(r) == "1.2.3.4"
    assert ids()(r) == (7, 42)
    assert route()(r._replace(route="/a")) == "GET /a"
    assert header("X-Missing", default=client_address())(r) == "10.0.0.1"
    with pytest.raises(BadRequest):
        header("X-Missing")(r)
    with pytest.raises(BadRequest):
        ids()(req(X_App_Id="7", X_Shop_Id="18446744073709551616"))  # 2**64
    with pytest.raises(BadRequest):
        ids()(req(X_App_Id="-1", X_Shop_Id="2"))
    with pytest.raises(BadRequest):
        client_address()(req(client=None))
    # compose folds parts unambiguously: ("ab", "c") and ("a", "bc") differ.
    k1 = compose(lambda r: "ab", lambda r: "c")(r)
    k2 = compose(lambda r: "a", lambda r: "bc")(r)
    assert isinstance(k1, bytes) and k1 != k2
    assert compose(lambda r: "a", lambda r: None)(r) is None
    assert ids(api=True)(r._replace(route="/x")) != ids(api=True)(r._replace(route="/y"))


def test_routes_first_match_and_exemptions() -> None:
    a, b, c = window(1, name="a"), window(1, name="b"), window(1, name="c")
    limiter = RateLimiter(
        c,
        routes=[
            ("/health", None),
            ("POST /orders", a),
            ("/orders/{order_id}", b),
            ("/files/{rest:path}", a),
            ("/static/*", None),
            (lambda r: r.headers.get("x-internal") == "1", None),
        ],
    )
    assert limiter.match(req("/health"))[0] is None
    assert limiter.match(req("/orders", "POST"))[0] is a
    assert limiter.match(req("/orders", "GET"))[0] is c
    policy, r = limiter.match(req("/orders/17"))
    assert policy is b and r.route == "/orders/{order_id}"
    assert limiter.match(req("/orders/17/items"))[0] is c  # one segment only
    assert limiter.match(req("/files/a/b/c"))[0] is a
    assert limiter.match(req("/static/app.js"))[0] is None
    assert limiter.match(req("/x", X_Internal="1"))[0] is None
    assert limiter.policies == [c, a, b, a]
    exempt = limiter.check(req("/health"))
    assert exempt.policy is None and exempt.headers == [] and exempt.reply is None


def test_exact_counts_headers_and_default_body() -> None:
    TICKS[0] = 0
    limiter = RateLimiter(window(3, key=api_key(), name="api"))
    verdicts = [limiter.check(req(X_Api_Key="k")) for _ in range(5)]
    assert [v.reply is None for v in verdicts] == [True, True, True, False, False]
    assert [v.decision.used for v in verdicts] == [1, 2, 3, 3, 3]
    first = dict(verdicts[0].headers)
    assert first == {"RateLimit": '"api";r=2;t=3600', "RateLimit-Policy": '"api";q=3;w=3600'}
    refused = verdicts[3]
    assert dict(refused.headers)["Retry-After"] == "3600"
    assert refused.reply.status == 429
    assert json.loads(refused.reply.body) == {
        "error": "rate_limited",
        "message": "rate limit exceeded",
        "retry_after": 3600,
    }
    assert refused.would_limit and not verdicts[0].would_limit
    assert limiter.check(req(X_Api_Key="other")).reply is None  # per key
    bad = limiter.check(req())
    assert bad.reply.status == 400 and not bad.would_limit


def test_shadow_policy_and_limiter() -> None:
    TICKS[0] = 0
    seen = []
    limiter = RateLimiter(
        window(1, key=api_key(), shadow=True), observer=lambda r, v: seen.append(v.would_limit)
    )
    vs = [limiter.check(req(X_Api_Key="s")) for _ in range(3)]
    assert all(v.reply is None for v in vs)
    assert [v.would_limit for v in vs] == [False, True, True]
    assert vs[1].decision.shadow and vs[1].decision.verdict is tg.Outcome.LIMITED
    assert all("Retry-After" not in dict(v.headers) for v in vs)
    assert seen == [False, True, True]
    # Limiter-wide shadow; a bad request is still refused.
    limiter = RateLimiter(window(1, key=api_key()), shadow=True)
    assert [limiter.check(req(X_Api_Key="t")).reply for _ in range(2)] == [None, None]
    assert limiter.check(req()).reply.status == 400


def test_custom_responder_and_vendor_preset() -> None:
    def responder(refusal: Refusal) -> Reply:
        return Reply(
            refusal.status, f"{refusal.reason}:{refusal.retry_after}".encode(), "text/plain"
        )

    policy = Policy.shopbase(clock=clock, ticks_per_second=1000)
    limiter = RateLimiter(policy, responder=responder)
    TICKS[0] = 0
    ok = [limiter.check(req(X_App_Id="1", X_Shop_Id="2")) for _ in range(30)]
    assert dict(ok[-1].headers)["X-Sb-Shop-Api-Call-Limit"] == "30/30"
    refused = limiter.check(req(X_App_Id="1", X_Shop_Id="2"))
    assert refused.reply == Reply(429, b"rate_limited:1", "text/plain")
    TICKS[0] = 500  # half a second drains one
    assert limiter.check(req(X_App_Id="1", X_Shop_Id="2")).reply is None
    deep = limiter.check(req(query="limit=250&page=401", X_App_Id="1", X_Shop_Id="3"))
    assert deep.reply == Reply(429, b"never:None", "text/plain")
    assert deep.decision is None and deep.headers == []
    assert limiter.check(req(query="limit=x", X_App_Id="1", X_Shop_Id="3")).reply.status == 400
    tiktok = Policy.tiktok_shop(clock=clock, ticks_per_second=1000)
    assert tiktok.policy_header == '"tiktok";q=50;w=1'


def test_full_table_is_503_and_concurrency_cap() -> None:
    TICKS[0] = 0
    limiter = RateLimiter(window(5, key=api_key(), capacity=1))
    # A table asked for one slot has one group of five: five keys fill it.
    for k in "abcde":
        assert limiter.check(req(X_Api_Key=k)).reply is None
    full = limiter.check(req(X_Api_Key="f"))
    assert full.reply.status == 503 and json.loads(full.reply.body)["error"] == "overloaded"
    capped = RateLimiter(window(100, key=api_key()), max_in_flight=1)
    first = capped.check(req(X_Api_Key="a"))
    assert first.permit
    second = capped.check(req(X_Api_Key="a"))
    assert second.reply.status == 503 and dict(second.headers)["Retry-After"] == "1"
    capped.release(first)
    third = capped.check(req(X_Api_Key="a"))
    assert third.permit
    capped.release(third)


def test_cost_function_and_backends() -> None:
    TICKS[0] = 0
    table = tg.KeyTable(64, tg.WindowQuota(10, HOUR), clock=clock, ticks_per_second=1000)
    assert isinstance(table, Backend)
    policy = window(10, key=api_key(), backend=table, cost=lambda r: int(r.headers["x-cost"]))
    limiter = RateLimiter(policy)
    assert limiter.check(req(X_Api_Key="a", X_Cost="6")).decision.used == 6
    assert limiter.check(req(X_Api_Key="a", X_Cost="5")).reply.status == 429
    never = limiter.check(req(X_Api_Key="a", X_Cost="11"))
    assert never.reply.status == 429 and json.loads(never.reply.body)["error"] == "never"
    assert "Retry-After" not in dict(never.headers)

    class Remote:
        """An awaitable backend (as a network store would be)."""

        ticks_per_second = 1000

        def __init__(self) -> None:
            self.inner = tg.KeyTable(
                64, tg.WindowQuota(2, HOUR), clock=clock, ticks_per_second=1000
            )

        async def decide(self, key, cost=1, now=None, *, tier=0):
            await asyncio.sleep(0)
            return self.inner.decide(key, cost, now, tier=tier)

    remote = Remote()
    assert isinstance(remote, AsyncBackend)
    alimiter = RateLimiter(Policy(tg.WindowQuota(2, HOUR), key=api_key(), backend=remote))

    async def three() -> list:
        return [await alimiter.check_async(req(X_Api_Key="r")) for _ in range(3)]

    assert [v.reply is None for v in asyncio.run(three())] == [True, True, False]
    with pytest.raises(TypeError):
        alimiter.check(req(X_Api_Key="r"))


def _environ(path: str = "/", **headers: str) -> dict:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "REMOTE_ADDR": "1.2.3.4"}
    env.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    return env


def test_wsgi_adapter_headers_permits_and_errors() -> None:
    from tollgate.middleware import ENVIRON_KEY
    from tollgate.middleware.wsgi import RateLimitMiddleware

    TICKS[0] = 0
    seen = {}

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        seen["verdict"] = environ[ENVIRON_KEY]
        start_response("200 OK", [("Content-Type", "text/plain"), ("RateLimit", "stale")])
        return [b"ok"]

    limiter = RateLimiter(window(2, key=api_key(), name="w"), max_in_flight=1)
    mw = RateLimitMiddleware(app, limiter)
    answers = []

    def start_response(status, headers, exc_info=None):
        answers.append((status, dict(headers)))

    first = mw(_environ(X_API_KEY="k"), start_response)
    assert answers[-1][0] == "200 OK"
    assert answers[-1][1]["RateLimit"] == '"w";r=1;t=3600'  # the app's stale value replaced
    assert seen["verdict"].decision.used == 1
    busy = mw(_environ(X_API_KEY="k"), start_response)  # the first still holds the permit
    assert answers[-1][0] == "503 Service Unavailable" and answers[-1][1]["Retry-After"] == "1"
    assert json.loads(b"".join(busy))["error"] == "overloaded"
    first.close()
    assert limiter.concurrency.in_flight == 0
    with pytest.raises(RuntimeError):
        mw(_environ("/boom", X_API_KEY="k"), start_response)
    assert limiter.concurrency.in_flight == 0  # released on the app's exception
    mw(_environ(X_API_KEY="k"), start_response)  # the shed request spent nothing: 2 of 2 used
    assert answers[-1][0] == "429 Too Many Requests"
    assert limiter.concurrency.in_flight == 0  # a refused request holds no permit


def test_asgi_adapter_without_a_framework() -> None:
    from tollgate.middleware.asgi import RateLimitMiddleware

    TICKS[0] = 0

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            scope["seen_lifespan"] = True
            return
        assert scope["state"]["tollgate"] is scope["tollgate.verdict"]
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"text/plain"), (b"ratelimit", b"stale")],
            }
        )
        await send({"type": "http.response.body", "body": b"made"})

    mw = RateLimitMiddleware(app, default=window(1, key=header("X-Caller"), name="a"))

    async def call(scope: dict) -> list:
        sent: list = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b""}

        async def send(message: dict) -> None:
            sent.append(message)

        await mw(scope, receive, send)
        return sent

    def http(caller: str) -> dict:
        return {
            "type": "http",
            "method": "GET",
            "path": "/x",
            "query_string": b"",
            "headers": [(b"x-caller", caller.encode())],
            "client": ("9.9.9.9", 1),
        }

    ok = asyncio.run(call(http("c")))
    headers = dict(ok[0]["headers"])
    assert ok[0]["status"] == 201 and headers[b"ratelimit"] == b'"a";r=0;t=3600'
    assert headers[b"ratelimit-policy"] == b'"a";q=1;w=3600'
    refused = asyncio.run(call(http("c")))
    assert refused[0]["status"] == 429
    assert dict(refused[0]["headers"])[b"retry-after"] == b"3600"
    assert json.loads(refused[1]["body"])["error"] == "rate_limited"
    lifespan = {"type": "lifespan"}
    assert asyncio.run(call(lifespan)) == [] and lifespan["seen_lifespan"]
    with pytest.raises(TypeError):
        RateLimitMiddleware(app, RateLimiter(), default=None)
