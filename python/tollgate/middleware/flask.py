"""Flask: the WSGI middleware installed on a Flask app in one call.

::

    from flask import Flask
    from tollgate.middleware import Policy, RateLimiter, api_key
    from tollgate.middleware.flask import init_app, verdict
    from tollgate import Quota

    app = Flask(__name__)
    init_app(app, RateLimiter(Policy(Quota.per_second(20, 10), key=api_key())))

The limiter runs before Flask routes the request (it wraps ``app.wsgi_app``), so refused
requests cost no view, no session and no database. A view reads its request's
:class:`~tollgate.middleware.Verdict` with :func:`verdict`.
"""

from __future__ import annotations

from typing import Any

from . import ENVIRON_KEY, RateLimiter, Verdict
from .wsgi import RateLimitMiddleware

__all__ = ["init_app", "verdict"]


def init_app(app: Any, limiter: RateLimiter | None = None, **limiter_args: Any) -> RateLimiter:
    """Wraps ``app.wsgi_app`` with the rate limiter and returns the limiter (also stored as
    ``app.extensions["tollgate"]``)."""
    middleware = RateLimitMiddleware(app.wsgi_app, limiter, **limiter_args)
    app.wsgi_app = middleware
    app.extensions["tollgate"] = middleware.limiter
    return middleware.limiter


def verdict() -> Verdict | None:
    """The current request's verdict (None outside a request or when the app is not wrapped)."""
    from flask import has_request_context, request

    if not has_request_context():
        return None
    return request.environ.get(ENVIRON_KEY)
