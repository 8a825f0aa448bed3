"""The WSGI app of the second gunicorn test: the generic middleware
(``tollgate.middleware``) with a ShopBase policy whose backend is one shared key table (a
named region every worker opens), so every pre-forked worker enforces the same per-(app, shop)
limit."""

from __future__ import annotations

import os
import time

import tollgate as tg
from tollgate.middleware import Policy, RateLimiter, ids
from tollgate.middleware.wsgi import RateLimitMiddleware
from tollgate.shared import SharedKeyTable


def upstream(environ: dict, start_response) -> list[bytes]:
    # A request that takes a while, as a real one does: while one worker serves it, the
    # concurrent ones are accepted by the others (an instant answer lets one worker take all).
    time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Worker", str(os.getpid()))])
    return [b"ok"]


quota = tg.Quota(30, 2, 1_000_000_000)  # ShopBase: 30, draining 2 per second
os.makedirs(os.environ["TOLLGATE_TEST_KEYS_DIR"], mode=0o700, exist_ok=True)
keys = SharedKeyTable(1000, quota, path=os.path.join(os.environ["TOLLGATE_TEST_KEYS_DIR"], "table"))
limiter = RateLimiter(Policy(quota, key=ids(), name="shopbase", backend=keys))
app = RateLimitMiddleware(upstream, limiter)
