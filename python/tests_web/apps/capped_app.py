"""A FastAPI app behind a concurrency cap of 2 (served by uvicorn): requests to /held wait
until /release is called, so a test controls exactly how many are in flight."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from tollgate import WindowQuota
from tollgate.middleware import Policy, RateLimiter, route
from tollgate.middleware.asgi import RateLimitMiddleware

gate: asyncio.Event | None = None
state = {"in_flight": 0}

limiter = RateLimiter(
    Policy(WindowQuota(1_000, 3600 * 10**9), key=route(), name="capped"),
    routes=[("/_state", None), ("/release", None)],
    max_in_flight=2,
)
app = FastAPI()
app.add_middleware(RateLimitMiddleware, limiter=limiter)


def _gate() -> asyncio.Event:
    global gate
    if gate is None:
        gate = asyncio.Event()
    return gate


@app.get("/_state")
async def current() -> dict:
    return {"in_flight": state["in_flight"], "permits": limiter.concurrency.in_flight}


@app.get("/held")
async def held() -> dict:
    state["in_flight"] += 1
    try:
        await _gate().wait()
    finally:
        state["in_flight"] -= 1
    return {"held": True}


@app.get("/release")
async def release() -> dict:
    _gate().set()
    return {}


@app.get("/quick")
async def quick() -> dict:
    return {}
