"""A Flask app behind tollgate's WSGI middleware (served by gunicorn)."""

from __future__ import annotations

import os

from flask import Flask, jsonify

from tollgate import WindowQuota
from tollgate.middleware import Policy, RateLimiter, api_key
from tollgate.middleware.flask import init_app, verdict

HOUR = 3600 * 10**9


def stopped() -> int:
    """A clock stopped at 0: the ShopBase bucket does not drain while a test counts."""
    return 0


app = Flask(__name__)
init_app(
    app,
    RateLimiter(
        routes=[
            ("/_ready", None),
            ("/keyed", Policy(WindowQuota(5, HOUR), key=api_key(), name="keyed")),
            ("/admin/*", Policy.shopbase(clock=stopped, ticks_per_second=1000)),
        ]
    ),
)


@app.after_request
def worker_pid(response):
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.get("/_ready")
def ready():
    return jsonify(ready=True)


@app.get("/keyed")
def keyed():
    v = verdict()
    return jsonify(used=v.decision.used if v is not None and v.decision else None)


@app.get("/admin/orders.json")
def orders():
    return jsonify(orders=[])
