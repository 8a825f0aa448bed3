"""A fake vendor API enforcing the real limits with tollgate's own server middleware.

Configured by the environment:

- ``FAKE_VENDOR``: ``shopbase`` (a bucket of 30 draining 2/s per (app, shop) from the
  ``X-App-Id``/``X-Shop-Id`` headers, with ``X-Sb-Shop-Api-Call-Limit``) or ``tiktok`` (a fixed
  window of 50/s per (app_key, shop_id, path) from the query string);
- ``FAKE_JITTER_MS``: each request waits a uniformly random 0..J ms before the limiter sees it
  (network latency that varies);
- ``FAKE_503``: the fraction of requests answered 503 before the limiter (nothing counted).

``GET /_stats`` answers the statuses served so far and the admitted requests per key.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter

from tollgate.middleware import Policy, RateLimiter, compose, query_param, route
from tollgate.middleware.asgi import RateLimitMiddleware

VENDOR = os.environ.get("FAKE_VENDOR", "shopbase")
JITTER = float(os.environ.get("FAKE_JITTER_MS", "0")) / 1000
FAIL = float(os.environ.get("FAKE_503", "0"))

statuses: Counter = Counter()
admitted: Counter = Counter()
rng = random.Random(int(os.environ.get("FAKE_SEED", "1")))


async def api(scope, receive, send) -> None:
    verdict = scope.get("tollgate.verdict")
    if scope["path"] == "/_stats":
        body = json.dumps(
            {
                "statuses": {str(k): v for k, v in statuses.items()},
                "admitted": {k: v for k, v in admitted.items()},
            }
        ).encode()
    else:
        h = dict(scope["headers"])
        key = (
            h.get(b"x-shop-id", b"").decode()
            + "|"
            + scope["query_string"].decode()
            + "|"
            + scope["path"]
        )
        admitted[key] += 1
        body = json.dumps({"ok": True, "used": verdict.decision.used if verdict else None}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


if VENDOR == "shopbase":
    policy = Policy.shopbase()
else:
    policy = Policy.tiktok_shop(
        key=compose(query_param("app_key"), query_param("shop_id"), route(method=False))
    )
limited = RateLimitMiddleware(api, RateLimiter(policy, routes=[("/_stats", None)]))


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    if scope["path"] != "/_stats":
        if JITTER:
            await asyncio.sleep(rng.uniform(0, JITTER))
        if FAIL and rng.random() < FAIL:
            statuses[503] += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

    async def counting_send(message) -> None:
        if message["type"] == "http.response.start" and scope["path"] != "/_stats":
            statuses[message["status"]] += 1
        await send(message)

    await limited(scope, receive, counting_send)
