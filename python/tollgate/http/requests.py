"""``requests``: a transport adapter and a session that pace, sync and retry every call.

::

    from tollgate.http import shopbase
    from tollgate.http.requests import PacedSession

    session = PacedSession(shopbase())
    r = session.get("https://shop.example/admin/orders.json",
                    headers={"X-App-Id": "7", "X-Shop-Id": "42"})

Sessions that share one :class:`~tollgate.http.Pacing` (``PacedSession(pacing=p)``) share its
pacers, across threads. Waiting sleeps the calling thread. See :mod:`tollgate.http`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from . import Pacing, Vendor

__all__ = ["PacedAdapter", "PacedSession"]

_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout)


def _pacing(vendor: Vendor | None, pacing: Pacing | None) -> Pacing:
    if (vendor is None) == (pacing is None):
        raise TypeError("give either a vendor or a pacing")
    return pacing if pacing is not None else Pacing(vendor)  # type: ignore[arg-type]


class PacedAdapter(HTTPAdapter):
    """An :class:`~requests.adapters.HTTPAdapter` whose every call goes through ``pacing``
    (or a new :class:`~tollgate.http.Pacing` of ``vendor``). Other arguments go to
    ``HTTPAdapter``; keep its own ``max_retries`` at 0, retries are this adapter's."""

    def __init__(
        self, vendor: Vendor | None = None, *, pacing: Pacing | None = None, **kwargs: Any
    ) -> None:
        self.pacing = _pacing(vendor, pacing)
        super().__init__(**kwargs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: None | float | tuple[float | None, float | None] = None,
        verify: bool | str = True,
        cert: None | str | tuple[str, str] = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        headers = {
            name: value.decode("latin-1") if isinstance(value, bytes) else value
            for name, value in request.headers.items()
        }
        call = self.pacing.call(request.method or "GET", request.url or "", headers)
        kwargs: dict[str, Any] = {
            "stream": stream,
            "timeout": timeout,
            "verify": verify,
            "cert": cert,
            "proxies": proxies,
        }
        while True:
            wait = call.ready()
            while wait is not None:
                time.sleep(wait)
                wait = call.ready()
            try:
                response = super().send(request, **kwargs)
            except _TRANSPORT_ERRORS:
                delay = call.failed()
                if delay is None:
                    raise
                time.sleep(delay)
                continue
            delay = call.answered(response.status_code, response.headers)
            if delay is None:
                return response
            response.close()
            time.sleep(delay)


class PacedSession(requests.Session):
    """A :class:`requests.Session` with a :class:`PacedAdapter` mounted for ``http://`` and
    ``https://``; ``session.pacing`` is its :class:`~tollgate.http.Pacing`."""

    def __init__(
        self, vendor: Vendor | None = None, *, pacing: Pacing | None = None, **adapter: Any
    ) -> None:
        super().__init__()
        self.adapter = PacedAdapter(vendor, pacing=pacing, **adapter)
        self.pacing = self.adapter.pacing
        self.mount("https://", self.adapter)
        self.mount("http://", self.adapter)
