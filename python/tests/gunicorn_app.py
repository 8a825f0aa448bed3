"""The WSGI app the gunicorn test serves: the rate-limit middleware over one SharedKeys
directory, so every pre-forked worker enforces the same per-(app, shop) limit."""

from __future__ import annotations

import os
import time

import tollgate as tg
from tollgate.shared import SharedKeys
from tollgate.wsgi import RateLimitMiddleware


def upstream(environ: dict, start_response) -> list[bytes]:
    # A request that takes a while, as a real one does: while one worker serves it, the
    # concurrent ones are accepted by the others (an instant answer lets one worker take all).
    time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Worker", str(os.getpid()))])
    return [b"ok"]


keys = SharedKeys(
    os.environ["TOLLGATE_TEST_KEYS_DIR"],
    tg.Quota(30, 2, 1_000_000_000),  # ShopBase: 30, draining 2 per second
)
app = RateLimitMiddleware(upstream, table=keys, name="shopbase")
