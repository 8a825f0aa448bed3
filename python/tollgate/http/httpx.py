"""``httpx``: transports that pace, sync and retry every call, sync and async.

::

    import httpx
    from tollgate.http import tiktok_shop, Pacing
    from tollgate.http.httpx import AsyncPacedTransport, PacedTransport

    pacing = Pacing(tiktok_shop())
    async with httpx.AsyncClient(transport=AsyncPacedTransport(pacing=pacing)) as client:
        r = await client.get("https://api.example/products", params={"app_key": "a",
                                                                     "shop_id": "1"})

The async transport waits with ``asyncio.sleep``: no thread is blocked while a task is paced.
A sync and an async transport given the same :class:`~tollgate.http.Pacing` share its pacers.
See :mod:`tollgate.http`.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from . import Pacing, Vendor

__all__ = ["AsyncPacedTransport", "PacedTransport"]

_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _pacing(vendor: Vendor | None, pacing: Pacing | None) -> Pacing:
    if (vendor is None) == (pacing is None):
        raise TypeError("give either a vendor or a pacing")
    return pacing if pacing is not None else Pacing(vendor)  # type: ignore[arg-type]


class PacedTransport(httpx.BaseTransport):
    """Wraps ``transport`` (default ``httpx.HTTPTransport()``) for ``httpx.Client``."""

    def __init__(
        self,
        vendor: Vendor | None = None,
        *,
        pacing: Pacing | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.pacing = _pacing(vendor, pacing)
        self.transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a body read once can be sent again
        call = self.pacing.call(request.method, str(request.url), request.headers)
        while True:
            wait = call.ready()
            while wait is not None:
                time.sleep(wait)
                wait = call.ready()
            try:
                response = self.transport.handle_request(request)
            except _TRANSPORT_ERRORS:
                delay = call.failed()
                if delay is None:
                    raise
                time.sleep(delay)
                continue
            delay = call.answered(response.status_code, response.headers)
            if delay is None:
                return response
            response.read()
            response.close()
            time.sleep(delay)

    def close(self) -> None:
        self.transport.close()


class AsyncPacedTransport(httpx.AsyncBaseTransport):
    """Wraps ``transport`` (default ``httpx.AsyncHTTPTransport()``) for ``httpx.AsyncClient``."""

    def __init__(
        self,
        vendor: Vendor | None = None,
        *,
        pacing: Pacing | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.pacing = _pacing(vendor, pacing)
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        call = self.pacing.call(request.method, str(request.url), request.headers)
        while True:
            wait = call.ready()
            while wait is not None:
                await asyncio.sleep(wait)
                wait = call.ready()
            try:
                response = await self.transport.handle_async_request(request)
            except _TRANSPORT_ERRORS:
                delay = call.failed()
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            delay = call.answered(response.status_code, response.headers)
            if delay is None:
                return response
            await response.aread()
            await response.aclose()
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        await self.transport.aclose()
