"""A FastAPI app behind tollgate's ASGI middleware, one policy per route (served by uvicorn)."""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Request

from tollgate import Quota, WindowQuota
from tollgate.middleware import (
    Policy,
    RateLimiter,
    Refusal,
    Reply,
    Verdict,
    api_key,
    client_address,
    default_responder,
    route,
)
from tollgate.middleware.asgi import RateLimitMiddleware

HOUR = 3600 * 10**9


def stopped() -> int:
    """A clock stopped at 0: the ShopBase bucket does not drain while a test counts."""
    return 0


counts: Counter = Counter()


def responder(refusal: Refusal) -> Reply:
    if refusal.request.route == "/custom" and refusal.status == 429:
        body = f"slow down, try again in {refusal.retry_after} s\n".encode()
        return Reply(429, body, "text/plain; charset=utf-8")
    return default_responder(refusal)


def observer(request, verdict: Verdict) -> None:
    if verdict.policy is not None and verdict.policy.shadow and verdict.would_limit:
        counts["shadow_would_limit"] += 1


limiter = RateLimiter(
    routes=[
        ("/_stats", None),
        ("/keyed", Policy(WindowQuota(5, HOUR), key=api_key(), name="keyed")),
        ("/client", Policy(Quota(3, 1, HOUR), key=client_address(), name="by-client")),
        ("/items/{item_id}", Policy(WindowQuota(4, HOUR), key=route(), name="per-route")),
        ("/trial", Policy(WindowQuota(2, HOUR), key=api_key(), name="trial", shadow=True)),
        ("/custom", Policy(WindowQuota(1, HOUR), key=api_key(), name="custom")),
        ("/admin/*", Policy.shopbase(clock=stopped, ticks_per_second=1000)),
    ],
    responder=responder,
    observer=observer,
)

app = FastAPI()
app.add_middleware(RateLimitMiddleware, limiter=limiter)


def _used(request: Request) -> int | None:
    verdict = getattr(request.state, "tollgate", None)
    return verdict.decision.used if verdict is not None and verdict.decision else None


@app.get("/_stats")
def stats() -> dict:
    return dict(counts)


@app.get("/keyed")
def keyed(request: Request) -> dict:
    return {"used": _used(request)}


@app.get("/client")
def client(request: Request) -> dict:
    return {"used": _used(request)}


@app.get("/items/{item_id}")
def item(item_id: int, request: Request) -> dict:
    return {"item": item_id, "used": _used(request)}


@app.get("/trial")
def trial(request: Request) -> dict:
    return {"used": _used(request)}


@app.get("/custom")
def custom() -> dict:
    return {}


@app.get("/admin/orders.json")
def orders(request: Request) -> dict:
    return {"orders": [], "used": _used(request)}


@app.get("/free")
def free() -> dict:
    return {"free": True}
