"""A WSGI middleware (stdlib only) enforcing a rate limit per (app, shop).

Each request names its caller in two headers, ``X-App-Id`` and ``X-Shop-Id`` (decimal u64 ids;
the names are configurable, and ``key_func`` can take the ids from the path or query instead).
The middleware then, in order:

1. answers **400** if an id is missing or not a decimal number in 0..2**64-1 (or ``key_func``
   raised ``ValueError``);
2. for a GET, applies the deep-pagination rule to the query string (``limit × page`` above
   ``max_offset`` → **429**, no ``Retry-After``: retrying cannot help; a ``limit``/``page`` that is
   not a number → **400**);
3. takes a concurrency permit when ``max_in_flight`` is set (none free → **503**,
   ``Retry-After: 1``), held until the response is closed;
4. decides in a :class:`~tollgate.KeyTable` keyed by the exact (app, shop) pair (or in the
   ``table=`` given, for example a :class:`~tollgate.shared.SharedKeys` that every worker
   process of a pre-forked server shares, so they enforce one limit): refused →
   **429** (Limited/Never) or **503** (a full table, fail-closed) with ``Retry-After`` when one
   is called for, ``X-Sb-Shop-Api-Call-Limit`` and the RateLimit fields;
5. otherwise calls the app (the decision in ``environ["tollgate.decision"]``) and passes its
   status, headers and body through, adding ``X-Sb-Shop-Api-Call-Limit: used/limit``,
   ``RateLimit`` and ``RateLimit-Policy``.

The default policy is ShopBase's: a bucket of 30 draining 2 per second per (app, shop).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Iterator

from . import headers as _headers
from . import pagination as _pagination
from ._util import U64_MAX
from .decision import Decision, Outcome
from .errors import MalformedError
from .limiters import Clock, ConcurrencyLimit, Quota
from .presets import shopbase_quota
from .table import FullPolicy, KeyTable, WindowQuota

#: The environ key under which the app finds the request's :class:`~tollgate.Decision`.
ENVIRON_KEY = "tollgate.decision"

_DIGITS = re.compile(r"[0-9]{1,20}")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]

_REASONS = {400: "Bad Request", 429: "Too Many Requests", 503: "Service Unavailable"}


def parse_id(value: str | None) -> int | None:
    """A decimal u64 id, or None if ``value`` is missing or not one (no sign, no spaces)."""
    if value is None or not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if number <= U64_MAX else None


def _environ_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


class RateLimitMiddleware:
    """Wraps a WSGI ``app`` with a per-(app, shop) rate limit; see the module docs.

    ``quota`` is a :class:`~tollgate.Quota` (leaky bucket; default ShopBase's) or a
    :class:`~tollgate.WindowQuota` (fixed window). ``capacity`` is the key table's slot count
    (keep active keys under 0.7 × capacity), ``full_policy`` what a full table answers.
    ``max_in_flight`` adds a concurrency cap across all callers. ``max_offset`` (None: off) is
    the pagination rule's maximum. ``shadow=True`` only reports (headers added, nothing refused).
    ``key_func(environ) -> (app, shop)`` replaces the header lookup; it raises ``ValueError`` for
    a malformed request. ``table`` replaces the private key table with one the caller made: a
    :class:`~tollgate.shared.SharedKeys` shares the limit among the worker processes of a
    pre-forked server (``quota``, ``capacity`` and ``full_policy`` are then the table's own).
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        quota: Quota | WindowQuota | None = None,
        capacity: int = 65_536,
        full_policy: FullPolicy = FullPolicy.FAIL_CLOSED,
        max_in_flight: int | None = None,
        max_offset: int | None = _pagination.DEFAULT_MAX_OFFSET,
        app_header: str = "X-App-Id",
        shop_header: str = "X-Shop-Id",
        key_func: Callable[[dict], tuple[int, int]] | None = None,
        name: str = "shopbase",
        shadow: bool = False,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        table: Any = None,
    ) -> None:
        self.app = app
        if clock is None:
            ticks_per_second = None
        tps = ticks_per_second if ticks_per_second is not None else 1_000_000_000
        if table is not None:
            quota = table.quota
        if quota is None:
            quota = shopbase_quota(tps)
        self.table = table
        if table is None:
            self.table = KeyTable(
                capacity,
                quota,
                policy=full_policy,
                clock=clock,
                ticks_per_second=ticks_per_second,
                shadow=shadow,
                name=name,
            )
        self.concurrency = ConcurrencyLimit(max_in_flight) if max_in_flight is not None else None
        self.max_offset = max_offset
        self._app_key = _environ_key(app_header)
        self._shop_key = _environ_key(shop_header)
        self._app_header = app_header
        self._shop_header = shop_header
        self.key_func = key_func
        tps_real = getattr(self.table, "ticks_per_second", None) or tps
        if isinstance(quota, WindowQuota):
            self._policy = _headers.ratelimit_policy_window(
                quota.limit, quota.window, name, tps_real
            )
        else:
            self._policy = _headers.ratelimit_policy_bucket(quota, name, tps_real)
        self._tps = tps_real
        self._name = name

    def _ids(self, environ: dict) -> tuple[int, int] | str:
        if self.key_func is not None:
            try:
                app, shop = self.key_func(environ)
            except ValueError as exc:
                return f"malformed caller id: {exc}"
            if parse_id(str(app)) is None or parse_id(str(shop)) is None:
                return "caller ids must be integers in 0..2**64-1"
            return int(app), int(shop)
        app = parse_id(environ.get(self._app_key))
        shop = parse_id(environ.get(self._shop_key))
        if app is None or shop is None:
            return (
                f"{self._app_header} and {self._shop_header} must be decimal integers in "
                "0..18446744073709551615"
            )
        return app, shop

    def _headers_for(self, decision: Decision) -> list[tuple[str, str]]:
        values = _headers.for_decision(
            decision, ticks_per_second=self._tps, name=self._name, policy=self._policy
        )
        return list(values.items())

    @staticmethod
    def _answer(
        start_response: StartResponse, code: int, message: str, extra: list[tuple[str, str]]
    ) -> list[bytes]:
        body = (message + "\n").encode("utf-8")
        start_response(
            f"{code} {_REASONS[code]}",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                *extra,
            ],
        )
        return [body]

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        ids = self._ids(environ)
        if isinstance(ids, str):
            return self._answer(start_response, 400, ids, [])
        if self.max_offset is not None and environ.get("REQUEST_METHOD", "GET") == "GET":
            try:
                page = _pagination.check_query(
                    environ.get("QUERY_STRING", "").encode("latin-1"), self.max_offset
                )
            except MalformedError:
                return self._answer(
                    start_response, 400, "limit and page must be decimal integers", []
                )
            if page is Outcome.NEVER:
                return self._answer(
                    start_response,
                    429,
                    f"pagination too deep: limit x page must not exceed {self.max_offset}",
                    [],
                )
        permit = False
        if self.concurrency is not None:
            taken = self.concurrency.acquire()
            if not taken.allowed:
                retry = _headers.retry_after(taken, 1)
                return self._answer(
                    start_response,
                    503,
                    "too many requests in flight",
                    [(_headers.RETRY_AFTER, retry)],
                )
            permit = True
        try:
            decision = self.table.decide(ids)
            extra = self._headers_for(decision)
            if not decision.allowed:
                code = decision.http_status or 429
                message = "rate limit exceeded" if code == 429 else "rate limiter overloaded"
                if decision.outcome is Outcome.NEVER:
                    message = "request can never pass this rate limit"
                return self._answer(start_response, code, message, extra)

            def start(status: str, response_headers: list, exc_info: Any = None) -> Any:
                names = {name.lower() for name, _ in extra}
                kept = [(n, v) for n, v in response_headers if n.lower() not in names]
                if exc_info is not None:
                    return start_response(status, kept + extra, exc_info)
                return start_response(status, kept + extra)

            environ[ENVIRON_KEY] = decision
            result = self.app(environ, start)
        except BaseException:
            if permit:
                self.concurrency.release()  # type: ignore[union-attr]
            raise
        if permit:
            return _Releasing(result, self.concurrency)  # type: ignore[arg-type]
        return result


class _Releasing:
    """The app's response iterable; releases the concurrency permit when closed (PEP 3333)."""

    def __init__(self, result: Iterable[bytes], limit: ConcurrencyLimit) -> None:
        self._result = result
        self._limit: ConcurrencyLimit | None = limit

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            limit, self._limit = self._limit, None
            if limit is not None:
                limit.release()
