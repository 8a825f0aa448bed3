"""WSGI middleware: a :class:`~tollgate.middleware.RateLimiter` in front of any WSGI app
(Flask, Django, anything PEP 3333), under any WSGI server.

An allowed request reaches the app with its :class:`~tollgate.middleware.Verdict` in
``environ["tollgate.verdict"]``; the rate-limit headers are added to the app's response. A
refused request is answered by the limiter's responder and never reaches the app.

Under a pre-forking server (gunicorn with several workers) each worker process holds its own
in-process :class:`~tollgate.KeyTable`, so each worker enforces the limit on the requests it
serves: one limit across workers needs a backend every worker shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Callable

from . import ENVIRON_KEY, REASONS, RateLimiter, Request, Verdict, merge_headers

__all__ = ["RateLimitMiddleware", "request_from_environ"]

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def request_from_environ(environ: Environ) -> Request:
    """The core's :class:`~tollgate.middleware.Request` for a WSGI environ."""
    headers: dict[str, str] = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            headers[name[5:].replace("_", "-").lower()] = value
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    path = environ.get("PATH_INFO", "")
    try:  # PEP 3333 carries the path as latin-1 decoded bytes; most paths are UTF-8.
        path = path.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return Request(
        environ.get("REQUEST_METHOD", "GET"),
        environ.get("SCRIPT_NAME", "") + path,
        environ.get("QUERY_STRING", ""),
        headers,
        environ.get("REMOTE_ADDR") or None,
    )


class RateLimitMiddleware:
    """Wraps the WSGI ``app`` with ``limiter`` (or a :class:`~tollgate.middleware.RateLimiter`
    built from ``limiter_args``)."""

    def __init__(
        self, app: WSGIApp, limiter: RateLimiter | None = None, **limiter_args: Any
    ) -> None:
        self.app = app
        if limiter is None:
            limiter = RateLimiter(**limiter_args)
        elif limiter_args:
            raise TypeError("give either a limiter or RateLimiter arguments, not both")
        self.limiter = limiter

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        verdict = self.limiter.check(request_from_environ(environ))
        reply = verdict.reply
        if reply is not None:
            start_response(
                f"{reply.status} {REASONS.get(reply.status, 'Error')}",
                [
                    ("Content-Type", reply.content_type),
                    ("Content-Length", str(len(reply.body))),
                    *verdict.headers,
                ],
            )
            return [reply.body]
        environ[ENVIRON_KEY] = verdict
        added = verdict.headers

        def start(
            status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            merged = merge_headers(response_headers, added)
            if exc_info is not None:
                return start_response(status, merged, exc_info)
            return start_response(status, merged)

        try:
            result = self.app(environ, start)
        except BaseException:
            self.limiter.release(verdict)
            raise
        if verdict.permit:
            return _Releasing(result, self.limiter, verdict)
        return result


class _Releasing:
    """The app's response iterable; returns the concurrency permit when closed (PEP 3333)."""

    def __init__(self, result: Iterable[bytes], limiter: RateLimiter, verdict: Verdict) -> None:
        self._result = result
        self._limiter: RateLimiter | None = limiter
        self._verdict = verdict

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            limiter, self._limiter = self._limiter, None
            if limiter is not None:
                limiter.release(self._verdict)
