"""Rate limiting for web servers: a generic core and its ASGI, WSGI, Flask and Django adapters.

The core needs no web framework. A :class:`RateLimiter` holds :class:`Policy` objects, each a
limit (a leaky-bucket :class:`~tollgate.Quota` or a fixed-window :class:`~tollgate.WindowQuota`),
a key function and a backend; routes pick a policy. For every request it answers a
:class:`Verdict`: the decision, the response headers to add (``RateLimit``,
``RateLimit-Policy``, ``Retry-After`` on a refusal, ``X-Sb-Shop-Api-Call-Limit`` when the
policy asks for it) and, for a refused request, the reply to send instead of calling the app.

The adapters only translate requests and responses:

- :mod:`tollgate.middleware.asgi`: ASGI middleware (Starlette, FastAPI, any ASGI server);
- :mod:`tollgate.middleware.wsgi`: WSGI middleware (Flask, Django, any WSGI server);
- :mod:`tollgate.middleware.flask`, :mod:`tollgate.middleware.django`: thin conveniences.

A backend is anything with the key table's ``decide`` method (:class:`Backend`): the in-process
:class:`~tollgate.KeyTable` by default, one per policy; a table in a shared-memory region (one
limit across the workers of a pre-forked server) or a Redis backend (one limit across hosts) plug
in the same way. A backend whose ``decide`` is a coroutine (:class:`AsyncBackend`) is awaited by
the ASGI adapter.

Outcomes and statuses are those of ``docs/semantics.md#outcomes-and-http-statuses``: Limited
and Never answer 429 (Never with no ``Retry-After``: retrying cannot help), Overloaded answers
503, a key function that finds no usable key answers 400. In shadow mode
(``docs/semantics.md#shadow-mode``) every decision is made and reported, and nothing is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import (
    Any,
    Callable,
    NamedTuple,
    Optional,
    Protocol,
    Union,
    runtime_checkable,
)

from .. import headers as _headers
from .. import pagination as _pagination
from .._util import NANOS_PER_SECOND, U64_MAX
from ..decision import Decision, Outcome
from ..errors import MalformedError
from ..limiters import Clock, ConcurrencyLimit, Quota
from ..presets import SHOPBASE_MAX_OFFSET, TIKTOK_SHOP_PER_SECOND, shopbase_quota
from ..table import FullPolicy, KeyLike, KeyTable, WindowQuota

__all__ = [
    "ENVIRON_KEY",
    "AsyncBackend",
    "Backend",
    "BadRequest",
    "KeyFunc",
    "Policy",
    "RateLimiter",
    "Refusal",
    "Reply",
    "Request",
    "Verdict",
    "api_key",
    "client_address",
    "compose",
    "default_responder",
    "header",
    "ids",
    "query_param",
    "route",
]

#: Where adapters put the request's :class:`Verdict`: the WSGI environ key, and the ASGI scope
#: key (also ``scope["state"]["tollgate"]``, Starlette's ``request.state.tollgate``).
ENVIRON_KEY = "tollgate.verdict"


class Request(NamedTuple):
    """What the core needs of a request; the adapters build it."""

    #: ``GET``, ``POST``...
    method: str
    #: The URL path, percent-decoded (``/orders/7``).
    path: str
    #: The raw query string, no ``?``.
    query: str
    #: Header values by lower-case name (repeated headers joined with ``", "``).
    headers: Mapping[str, str]
    #: The client's address (host only), or None if the server did not say.
    client: str | None
    #: The route pattern the request matched (``/orders/{id}``); the path if none matched.
    route: str = ""


class BadRequest(ValueError):
    """Raised by a key function when the request carries no usable key: the answer is 400."""


#: A key function: the request's key in the backend (an int, a tuple of ints, str or bytes).
#: It raises :class:`BadRequest` (or ``ValueError``) when the request has no usable key, and
#: returns None to exempt the request from the policy.
KeyFunc = Callable[[Request], Optional[KeyLike]]


@runtime_checkable
class Backend(Protocol):
    """The decide surface of :class:`~tollgate.KeyTable`, which every backend offers."""

    def decide(
        self, key: KeyLike, cost: int = 1, now: int | None = None, *, tier: int = 0
    ) -> Decision:
        """Decides on a request of ``cost`` for ``key`` under tier ``tier``."""
        ...


@runtime_checkable
class AsyncBackend(Protocol):
    """A backend whose decisions are awaited (a network store, from an ASGI server)."""

    async def decide(
        self, key: KeyLike, cost: int = 1, now: int | None = None, *, tier: int = 0
    ) -> Decision:
        """Decides on a request of ``cost`` for ``key`` under tier ``tier``."""
        ...


# --- key functions ---------------------------------------------------------------------------


def header(name: str, *, default: KeyFunc | None = None) -> KeyFunc:
    """The key is the value of header ``name``; when it is absent, ``default(request)`` (for
    example :func:`client_address`), or 400 if there is no default."""
    lower = name.lower()

    def key(request: Request) -> KeyLike | None:
        value = request.headers.get(lower)
        if value:
            return value
        if default is not None:
            return default(request)
        raise BadRequest(f"the {name} header is required")

    key.__name__ = f"header({name!r})"
    return key


def query_param(name: str, *, default: KeyFunc | None = None) -> KeyFunc:
    """The key is the value of query parameter ``name`` (first occurrence); when absent,
    ``default(request)``, or 400."""
    from urllib.parse import parse_qs

    def key(request: Request) -> KeyLike | None:
        values = parse_qs(request.query, keep_blank_values=False).get(name)
        if values:
            return values[0]
        if default is not None:
            return default(request)
        raise BadRequest(f"the {name} query parameter is required")

    key.__name__ = f"query_param({name!r})"
    return key


def api_key(header_name: str = "X-Api-Key", *, query: str | None = None) -> KeyFunc:
    """The key is the caller's API key: header ``header_name``, else query parameter ``query``
    (if given); 400 when neither is present. An ``Authorization: Bearer`` header counts when
    ``header_name`` is ``Authorization`` (the token is the key)."""
    lower = header_name.lower()

    def key(request: Request) -> KeyLike | None:
        value = request.headers.get(lower, "")
        if lower == "authorization" and value[:7].lower() == "bearer ":
            value = value[7:].strip()
        if value:
            return value
        if query is not None:
            return query_param(query)(request)
        raise BadRequest(f"an API key is required ({header_name})")

    key.__name__ = "api_key"
    return key


def client_address(*, forwarded_for: bool = False) -> KeyFunc:
    """The key is the client's address. ``forwarded_for=True`` takes the first address of
    ``X-Forwarded-For`` instead, when present: only behind a proxy that sets it."""

    def key(request: Request) -> KeyLike | None:
        if forwarded_for:
            value = request.headers.get("x-forwarded-for", "")
            first = value.split(",", 1)[0].strip()
            if first:
                return first
        if request.client:
            return request.client
        raise BadRequest("the client address is unknown")

    key.__name__ = "client_address"
    return key


def route(*, method: bool = True) -> KeyFunc:
    """The key is the matched route pattern (with the method unless ``method=False``): one limit
    per endpoint, shared by every caller. Combine with :func:`compose` for per-caller limits."""

    def key(request: Request) -> KeyLike | None:
        return f"{request.method} {request.route}" if method else request.route

    key.__name__ = "route"
    return key


def _parse_id(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 20:
        return None
    number = int(value)
    return number if number <= U64_MAX else None


def ids(
    app_header: str = "X-App-Id", shop_header: str = "X-Shop-Id", *, api: bool = False
) -> KeyFunc:
    """The key is the exact (app, shop) pair of decimal u64 ids in two headers (the vendor
    presets' key); with ``api=True`` the matched route joins them, as (app, shop, api). A
    missing or malformed id is 400."""
    app_lower, shop_lower = app_header.lower(), shop_header.lower()

    def key(request: Request) -> KeyLike | None:
        app = _parse_id(request.headers.get(app_lower))
        shop = _parse_id(request.headers.get(shop_lower))
        if app is None or shop is None:
            raise BadRequest(
                f"{app_header} and {shop_header} must be decimal integers in "
                "0..18446744073709551615"
            )
        if api:
            return _fold((app, shop, f"{request.method} {request.route}"))
        return (app, shop)

    key.__name__ = "ids"
    return key


def _part(value: object) -> bytes:
    if isinstance(value, bytes):
        return b"b" + value
    if isinstance(value, str):
        return b"s" + value.encode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        return b"i" + str(value).encode("ascii")
    raise BadRequest(f"a key part must be str, bytes or int, not {type(value).__name__}")


def _fold(parts: Sequence[object]) -> bytes:
    """Parts as one unambiguous byte string (each part tagged and length-prefixed)."""
    out = bytearray()
    for p in parts:
        raw = _part(p)
        out += len(raw).to_bytes(4, "little")
        out += raw
    return bytes(out)


def compose(*funcs: KeyFunc) -> KeyFunc:
    """The key is every function's key together (``compose(api_key(), route())``: one limit per
    caller and endpoint). Exempt when any part is None."""
    if not funcs:
        raise ValueError("compose needs at least one key function")

    def key(request: Request) -> KeyLike | None:
        parts = []
        for f in funcs:
            part = f(request)
            if part is None:
                return None
            parts.append(part)
        if len(parts) == 1:
            return parts[0]
        return _fold([_fold(p) if isinstance(p, tuple) else p for p in parts])

    key.__name__ = "compose(" + ", ".join(getattr(f, "__name__", "?") for f in funcs) + ")"
    return key


# --- policies --------------------------------------------------------------------------------


class Policy:
    """One limit applied per key.

    ``limit`` is a :class:`~tollgate.Quota` (leaky bucket) or a :class:`~tollgate.WindowQuota`
    (fixed window). ``key`` extracts the key (default: the client address). ``cost`` is a
    constant or a function of the request. ``name`` appears in the RateLimit fields.

    The backend is ``backend`` when given (it must hold ``limit`` as tier ``tier``: the headers
    are computed from ``limit``), else a new :class:`~tollgate.KeyTable` of ``capacity`` slots
    with ``full_policy``, on ``clock``/``ticks_per_second`` (default ``time.monotonic_ns``).

    ``vendor_header`` adds ``X-Sb-Shop-Api-Call-Limit``; ``max_offset`` applies the
    deep-pagination rule to GET requests (``limit × page`` above it → 429, never retryable);
    ``shadow`` reports without refusing; ``ratelimit_headers=False`` leaves out the RateLimit
    fields.
    """

    def __init__(
        self,
        limit: Quota | WindowQuota,
        *,
        key: KeyFunc | None = None,
        name: str = "default",
        cost: int | Callable[[Request], int] = 1,
        backend: Backend | AsyncBackend | None = None,
        tier: int = 0,
        capacity: int = 65_536,
        full_policy: FullPolicy = FullPolicy.FAIL_CLOSED,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        vendor_header: bool = False,
        ratelimit_headers: bool = True,
        max_offset: int | None = None,
    ) -> None:
        if not isinstance(limit, (Quota, WindowQuota)):
            raise TypeError(f"limit must be a Quota or WindowQuota, not {type(limit).__name__}")
        self.limit = limit
        self.key: KeyFunc = key if key is not None else client_address()
        self.name = name
        self.cost = cost
        self.tier = tier
        self.shadow = bool(shadow)
        self.vendor_header = bool(vendor_header)
        self.ratelimit_headers = bool(ratelimit_headers)
        self.max_offset = max_offset
        if backend is None:
            backend = KeyTable(
                capacity,
                limit,
                policy=full_policy,
                clock=clock,
                ticks_per_second=ticks_per_second,
                name=name,
            )
        self.backend = backend
        tps = getattr(backend, "ticks_per_second", None) or ticks_per_second
        if tps is None:
            tps = NANOS_PER_SECOND
        self.ticks_per_second: int = tps
        if isinstance(limit, WindowQuota):
            self.policy_header = _headers.ratelimit_policy_window(
                limit.limit, limit.window, name, tps
            )
        else:
            self.policy_header = _headers.ratelimit_policy_bucket(limit, name, tps)

    @classmethod
    def shopbase(cls, **kwargs: Any) -> Policy:
        """ShopBase's server limit: a bucket of 30 draining 2 per second per (app, shop) from
        ``X-App-Id``/``X-Shop-Id``, the ``X-Sb-Shop-Api-Call-Limit`` header and the pagination
        rule (100 000). Any argument of :class:`Policy` overrides these."""
        tps = kwargs.get("ticks_per_second") or NANOS_PER_SECOND
        kwargs.setdefault("key", ids())
        kwargs.setdefault("name", "shopbase")
        kwargs.setdefault("vendor_header", True)
        kwargs.setdefault("max_offset", SHOPBASE_MAX_OFFSET)
        return cls(kwargs.pop("limit", None) or shopbase_quota(tps), **kwargs)

    @classmethod
    def tiktok_shop(cls, **kwargs: Any) -> Policy:
        """TikTok Shop's server limit: a fixed window of 50 per second per (app, shop, api), the
        ids from ``X-App-Id``/``X-Shop-Id`` and the api from the matched route. Any argument of
        :class:`Policy` overrides these."""
        tps = kwargs.get("ticks_per_second") or NANOS_PER_SECOND
        kwargs.setdefault("key", ids(api=True))
        kwargs.setdefault("name", "tiktok")
        return cls(kwargs.pop("limit", None) or WindowQuota(TIKTOK_SHOP_PER_SECOND, tps), **kwargs)

    def __repr__(self) -> str:
        return f"Policy({self.limit!r}, name={self.name!r}, key={self.key.__name__})"


# --- replies ---------------------------------------------------------------------------------


class Refusal(NamedTuple):
    """Why a request is refused; what a responder turns into a :class:`Reply`."""

    request: Request
    #: 400, 429 or 503.
    status: int
    #: ``bad_request``, ``rate_limited``, ``never`` (retrying cannot help) or ``overloaded``.
    reason: str
    #: A sentence for people.
    message: str
    #: The limiter's decision (None for a bad request or the pagination rule).
    decision: Decision | None
    #: Whole seconds before a retry can pass, as in ``Retry-After`` (None: no header).
    retry_after: int | None


class Reply(NamedTuple):
    """A response: status, body and content type (the rate-limit headers are added to it)."""

    status: int
    body: bytes
    content_type: str = "application/json"


Responder = Callable[[Refusal], Reply]


def default_responder(refusal: Refusal) -> Reply:
    """A JSON body: ``{"error": reason, "message": ..., "retry_after": seconds}``."""
    doc: dict[str, Any] = {"error": refusal.reason, "message": refusal.message}
    if refusal.retry_after is not None:
        doc["retry_after"] = refusal.retry_after
    return Reply(refusal.status, json.dumps(doc).encode("utf-8"))


class Verdict(NamedTuple):
    """The core's answer for one request."""

    #: The policy applied (None: the request was exempt).
    policy: Policy | None
    #: The limiter's decision (None if none was made: exempt, bad request, pagination).
    decision: Decision | None
    #: Headers to add to the response (or to the reply).
    headers: list[tuple[str, str]]
    #: When not None, send this instead of calling the app.
    reply: Reply | None
    #: The refusal behind ``reply`` — or, in shadow mode, the refusal that was not enforced.
    refusal: Refusal | None
    #: True when a concurrency permit is held: the adapter releases it when the response ends.
    permit: bool = False

    @property
    def would_limit(self) -> bool:
        """Whether enforcement refuses (or, in shadow mode, would have refused) the request."""
        return self.refusal is not None and self.refusal.status != 400


# --- routing ---------------------------------------------------------------------------------

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")
Matcher = Union[str, Callable[[Request], bool]]


def _compile(pattern: str) -> tuple[str | None, str, re.Pattern[str]]:
    method: str | None = None
    if " " in pattern:
        method, pattern = pattern.split(" ", 1)
        method = method.upper()
    prefix = pattern.endswith("*")
    body = pattern[:-1] if prefix else pattern
    out, pos = [], 0
    for m in _PARAM.finditer(body):
        out.append(re.escape(body[pos : m.start()]))
        out.append(".+" if m.group(2) else "[^/]+")
        pos = m.end()
    out.append(re.escape(body[pos:]))
    regex = "".join(out) + (".*" if prefix else "")
    return method, pattern, re.compile(regex)


class _Route(NamedTuple):
    method: str | None
    pattern: str
    regex: re.Pattern[str] | None
    predicate: Callable[[Request], bool] | None
    policy: Policy | None


# --- the core --------------------------------------------------------------------------------


class RateLimiter:
    """Picks a policy per request and decides.

    ``routes`` is a sequence of ``(matcher, policy)``: the first match wins, and a policy of
    None exempts the route. A matcher is a pattern — ``"/orders/{id}"`` (one path segment per
    ``{name}``, ``{name:path}`` for the rest), an optional method in front (``"POST /orders"``),
    a trailing ``*`` for a prefix (``"/static/*"``) — or a function of the :class:`Request`.
    Requests that match no route get ``default`` (None: not limited).

    ``shadow=True`` puts every policy in shadow mode. ``max_in_flight`` caps concurrent requests
    across all limited routes (none free → 503, spending nothing; enforced in shadow mode too). ``responder`` builds the body of every refusal (400,
    429, 503; default :func:`default_responder`). ``observer(request, verdict)`` is called for
    every decided request — to count shadow refusals, for instance.
    """

    def __init__(
        self,
        default: Policy | None = None,
        *,
        routes: Iterable[tuple[Matcher, Policy | None]] = (),
        shadow: bool = False,
        max_in_flight: int | None = None,
        responder: Responder = default_responder,
        observer: Callable[[Request, Verdict], None] | None = None,
    ) -> None:
        self.default = default
        self._routes: list[_Route] = []
        for matcher, policy in routes:
            self.add_route(matcher, policy)
        self.shadow = bool(shadow)
        self.concurrency = ConcurrencyLimit(max_in_flight) if max_in_flight is not None else None
        self.responder = responder
        self.observer = observer

    def add_route(self, matcher: Matcher, policy: Policy | None) -> None:
        """Adds a route after those already there."""
        if callable(matcher):
            self._routes.append(
                _Route(None, getattr(matcher, "__name__", "?"), None, matcher, policy)
            )
        else:
            method, pattern, regex = _compile(matcher)
            self._routes.append(_Route(method, pattern, regex, None, policy))

    @property
    def policies(self) -> list[Policy]:
        """Every policy, default first."""
        found = [self.default] if self.default is not None else []
        found += [r.policy for r in self._routes if r.policy is not None]
        return found

    def match(self, request: Request) -> tuple[Policy | None, Request]:
        """The policy for ``request``, and the request with its ``route`` filled in."""
        for r in self._routes:
            if r.method is not None and r.method != request.method:
                continue
            if r.regex is not None:
                if r.regex.fullmatch(request.path):
                    return r.policy, request._replace(route=r.pattern)
            elif r.predicate is not None and r.predicate(request):
                return r.policy, request._replace(route=r.pattern)
        return self.default, request._replace(route=request.route or request.path)

    # The check is split in three so that the sync and async paths share everything but the
    # backend call.

    def _before(self, request: Request) -> Verdict | tuple[Policy, Request, KeyLike, int]:
        policy, request = self.match(request)
        if policy is None:
            return Verdict(None, None, [], None, None)
        try:
            key = policy.key(request)
            cost = policy.cost(request) if callable(policy.cost) else policy.cost
        except ValueError as exc:  # BadRequest included
            return self._refuse(policy, request, 400, "bad_request", str(exc), None, [])
        if key is None:
            return Verdict(None, None, [], None, None)
        if policy.max_offset is not None and request.method == "GET" and request.query:
            try:
                page = _pagination.check_query(request.query.encode("latin-1"), policy.max_offset)
            except (MalformedError, UnicodeEncodeError):
                return self._refuse(
                    policy,
                    request,
                    400,
                    "bad_request",
                    "limit and page must be decimal integers",
                    None,
                    [],
                )
            if page is Outcome.NEVER:
                message = f"pagination too deep: limit x page must not exceed {policy.max_offset}"
                return self._refuse(policy, request, 429, "never", message, None, [])
        return policy, request, key, cost

    def _after(self, policy: Policy, request: Request, decision: Decision) -> Verdict:
        tps = policy.ticks_per_second
        hdrs: list[tuple[str, str]] = []
        if policy.vendor_header:
            hdrs.append((_headers.SHOP_API_CALL_LIMIT, _headers.shop_api_call_limit(decision)))
        if policy.ratelimit_headers:
            hdrs.append((_headers.RATELIMIT, _headers.ratelimit(decision, policy.name, tps)))
            hdrs.append((_headers.RATELIMIT_POLICY, policy.policy_header))
        if decision.outcome is Outcome.ALLOWED:
            return self._observe(request, Verdict(policy, decision, hdrs, None, None))
        seconds: int | None = None
        retry = _headers.retry_after(decision, tps)
        if retry:
            hdrs.append((_headers.RETRY_AFTER, retry))
            seconds = int(retry)
        if decision.outcome is Outcome.OVERLOADED:
            status, reason, message = 503, "overloaded", "rate limiter overloaded"
        elif decision.outcome is Outcome.NEVER:
            status, reason, message = 429, "never", "request can never pass this rate limit"
        else:
            status, reason, message = 429, "rate_limited", "rate limit exceeded"
        return self._refuse(policy, request, status, reason, message, decision, hdrs, seconds)

    def _refuse(
        self,
        policy: Policy,
        request: Request,
        status: int,
        reason: str,
        message: str,
        decision: Decision | None,
        hdrs: list[tuple[str, str]],
        seconds: int | None = None,
    ) -> Verdict:
        refusal = Refusal(request, status, reason, message, decision, seconds)
        if status != 400 and (self.shadow or policy.shadow):
            if decision is not None and not decision.shadow:
                decision = decision.as_shadow()
            hdrs = [(n, v) for n, v in hdrs if n != _headers.RETRY_AFTER]
            return self._observe(request, Verdict(policy, decision, hdrs, None, refusal))
        return self._observe(
            request, Verdict(policy, decision, hdrs, self.responder(refusal), refusal)
        )

    def _observe(self, request: Request, verdict: Verdict) -> Verdict:
        if self.observer is not None:
            self.observer(request, verdict)
        return verdict

    def _permit(self, policy: Policy, request: Request) -> Verdict | None:
        """Takes a concurrency permit (before deciding, so that a request shed for lack of one
        spends nothing); a 503 verdict when none is free."""
        if self.concurrency is None:
            return None
        taken = self.concurrency.acquire()
        if taken.allowed:
            return None
        refusal = Refusal(request, 503, "overloaded", "too many requests in flight", taken, 1)
        hdrs = [(_headers.RETRY_AFTER, "1")]
        return self._observe(
            request, Verdict(policy, taken, hdrs, self.responder(refusal), refusal)
        )

    def _finish(self, policy: Policy, request: Request, decision: Decision) -> Verdict:
        try:
            verdict = self._after(policy, request, decision)
        except BaseException:
            if self.concurrency is not None:
                self.concurrency.release()
            raise
        if self.concurrency is None:
            return verdict
        if verdict.reply is not None:
            self.concurrency.release()  # refused: the app will not run
            return verdict
        return verdict._replace(permit=True)

    def _abandon(self) -> None:
        if self.concurrency is not None:
            self.concurrency.release()

    def check(self, request: Request) -> Verdict:
        """Decides on ``request`` (a sync backend). A verdict with ``permit`` must be
        :meth:`release`-d when its response ends."""
        step = self._before(request)
        if isinstance(step, Verdict):
            return step
        policy, request, key, cost = step
        shed = self._permit(policy, request)
        if shed is not None:
            return shed
        try:
            decision = policy.backend.decide(key, cost, tier=policy.tier)
        except BaseException:
            self._abandon()
            raise
        if not isinstance(decision, Decision):
            self._abandon()
            close = getattr(decision, "close", None)
            if close is not None:
                close()  # a coroutine never awaited
            raise TypeError(
                "the backend's decide returned an awaitable: use the ASGI adapter or "
                "check_async with an async backend"
            )
        return self._finish(policy, request, decision)

    async def check_async(self, request: Request) -> Verdict:
        """:meth:`check`, awaiting the backend when its ``decide`` is a coroutine."""
        step = self._before(request)
        if isinstance(step, Verdict):
            return step
        policy, request, key, cost = step
        shed = self._permit(policy, request)
        if shed is not None:
            return shed
        try:
            result: Decision | Awaitable[Decision] = policy.backend.decide(
                key, cost, tier=policy.tier
            )
            decision = result if isinstance(result, Decision) else await result
        except BaseException:
            self._abandon()
            raise
        return self._finish(policy, request, decision)

    def release(self, verdict: Verdict) -> None:
        """Returns the concurrency permit ``verdict`` holds, if any."""
        if verdict.permit and self.concurrency is not None:
            self.concurrency.release()


def merge_headers(
    response: Iterable[tuple[str, str]], added: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The response's headers with ``added`` replacing any of the same names."""
    if not added:
        return list(response)
    names = {n.lower() for n, _ in added}
    return [(n, v) for n, v in response if n.lower() not in names] + list(added)


REASONS = {400: "Bad Request", 429: "Too Many Requests", 503: "Service Unavailable"}
