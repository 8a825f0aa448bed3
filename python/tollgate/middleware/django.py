"""Django: a middleware class for ``settings.MIDDLEWARE``.

::

    # settings.py
    MIDDLEWARE = ["tollgate.middleware.django.RateLimitMiddleware", ...]
    TOLLGATE_LIMITER = "myproject.limits.limiter"   # a RateLimiter, or its dotted path

Put it first, so refused requests cost no session, authentication or view. A view finds its
:class:`~tollgate.middleware.Verdict` in ``request.tollgate`` (and ``request.META``).
Django served through WSGI can equally use :mod:`tollgate.middleware.wsgi` around its
``application``.
"""

from __future__ import annotations

from typing import Any, Callable

from . import ENVIRON_KEY, RateLimiter
from .wsgi import request_from_environ

__all__ = ["RateLimitMiddleware"]


def _limiter_from_settings() -> RateLimiter:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.utils.module_loading import import_string

    value = getattr(settings, "TOLLGATE_LIMITER", None)
    if isinstance(value, str):
        value = import_string(value)
    if not isinstance(value, RateLimiter):
        raise ImproperlyConfigured(
            "settings.TOLLGATE_LIMITER must be a tollgate.middleware.RateLimiter or its dotted path"
        )
    return value


class RateLimitMiddleware:
    """Django middleware applying ``settings.TOLLGATE_LIMITER`` (or ``limiter``)."""

    def __init__(self, get_response: Callable[[Any], Any], limiter: RateLimiter | None = None):
        self.get_response = get_response
        self.limiter = limiter if limiter is not None else _limiter_from_settings()

    def __call__(self, request: Any) -> Any:
        from django.http import HttpResponse

        meta = dict(request.META)
        meta["PATH_INFO"] = request.path_info
        meta["SCRIPT_NAME"] = request.META.get("SCRIPT_NAME", "")
        verdict = self.limiter.check(request_from_environ(meta))
        reply = verdict.reply
        if reply is not None:
            response = HttpResponse(
                reply.body, status=reply.status, content_type=reply.content_type
            )
        else:
            request.tollgate = verdict
            request.META[ENVIRON_KEY] = verdict
            try:
                response = self.get_response(request)
            finally:
                self.limiter.release(verdict)
        for name, value in verdict.headers:
            response[name] = value
        return response
