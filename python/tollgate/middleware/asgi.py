"""ASGI middleware: a :class:`~tollgate.middleware.RateLimiter` in front of any ASGI app.

Needs no framework (plain ASGI 3), so it serves Starlette and FastAPI alike::

    from fastapi import FastAPI
    from tollgate.middleware import Policy, RateLimiter, api_key
    from tollgate.middleware.asgi import RateLimitMiddleware
    from tollgate import Quota

    app = FastAPI()
    app.add_middleware(
        RateLimitMiddleware,
        limiter=RateLimiter(Policy(Quota.per_second(20, 10), key=api_key())),
    )

Only ``http`` requests are limited (``websocket`` and ``lifespan`` pass through). An allowed
request reaches the app with its :class:`~tollgate.middleware.Verdict` in
``scope["tollgate.verdict"]`` and ``scope["state"]["tollgate"]`` (Starlette's
``request.state.tollgate``); the rate-limit headers are added to the app's response. A refused
request is answered by the limiter's responder and never reaches the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, MutableMapping
from typing import Any, Callable
from urllib.parse import unquote

from . import ENVIRON_KEY, RateLimiter, Request, Verdict

__all__ = ["RateLimitMiddleware", "request_from_scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def request_from_scope(scope: Scope) -> Request:
    """The core's :class:`~tollgate.middleware.Request` for an ASGI ``http`` scope."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    client = scope.get("client")
    path = scope.get("path") or unquote(scope.get("raw_path", b"/").decode("latin-1"))
    return Request(
        scope.get("method", "GET"),
        path,
        scope.get("query_string", b"").decode("latin-1"),
        headers,
        client[0] if client else None,
    )


def _encoded(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]


class RateLimitMiddleware:
    """Wraps ``app`` with ``limiter`` (or a :class:`~tollgate.middleware.RateLimiter` built from
    ``limiter_args``, so ``app.add_middleware(RateLimitMiddleware, default=policy)`` works)."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter | None = None, **limiter_args: Any
    ) -> None:
        self.app = app
        if limiter is None:
            limiter = RateLimiter(**limiter_args)
        elif limiter_args:
            raise TypeError("give either a limiter or RateLimiter arguments, not both")
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = await self.limiter.check_async(request_from_scope(scope))
        if verdict.reply is not None:
            await self._reply(verdict, send)
            return
        scope[ENVIRON_KEY] = verdict
        state = scope.get("state")
        if isinstance(state, dict):
            state["tollgate"] = verdict
        elif state is None:
            scope["state"] = {"tollgate": verdict}
        added = _encoded(verdict.headers)
        names = {n for n, _ in added}

        async def send_with_headers(message: Message) -> None:
            if added and message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", ()) if n.lower() not in names]
                message = dict(message)
                message["headers"] = kept + added
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.limiter.release(verdict)

    @staticmethod
    async def _reply(verdict: Verdict, send: Send) -> None:
        reply = verdict.reply
        assert reply is not None
        headers = [
            (b"content-type", reply.content_type.encode("latin-1")),
            (b"content-length", str(len(reply.body)).encode("ascii")),
            *_encoded(verdict.headers),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
