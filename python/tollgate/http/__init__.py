"""Paced HTTP clients: the client toolkit applied to every call of ``requests`` or ``httpx``.

The adapters (:mod:`tollgate.http.requests`, :mod:`tollgate.http.httpx`) share one engine,
:class:`Pacing`, which for each call:

1. finds the call's key (for the vendor presets: the app, the shop and — for TikTok Shop — the
   api) and that key's pacer, a mirror of the server's limit made from the vendor preset;
2. waits until the pacer lets the call go (``time.sleep`` in sync code, ``asyncio.sleep`` in
   async code: no thread is blocked while a task is paced);
3. sends, then syncs the pacer from the answer (``X-Sb-Shop-Api-Call-Limit`` for ShopBase, and
   a 429's ``Retry-After``, which holds back every call of that key);
4. classifies the answer: 2xx/3xx succeed; 429 and 503 are retried (after a backoff delay with
   jitter, never sooner than ``Retry-After``) while attempts remain and the retry budget allows;
   a 429 without ``Retry-After`` is a Never outcome (a request-shape rule such as deep
   pagination) and is not retried; other statuses are returned as they are; transport errors
   (connection refused or reset, timeouts) are retried for idempotent methods.

One :class:`Pacing` may serve any number of sessions, clients, threads and asyncio tasks at
once: pass the same object to each adapter, and every call to a given shop goes through one
pacer. For several processes, ``Pacing(vendor, shared="/dev/shm/myapp-pacers")`` keeps each
key's pacer in shared memory (:class:`SharedPacers`, :mod:`tollgate.shared_pacer`): the
processes that name the same directory pace together. The in-process pacers are the default;
``pacer_factory`` plugs in any other.

Semantics: ``docs/semantics.md#client-toolkit`` and ``docs/semantics.md#vendor-presets``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Callable, NamedTuple, Protocol
from urllib.parse import parse_qs, urlsplit

from .._util import NANOS_PER_SECOND
from ..client import (
    Backoff,
    BucketPacer,
    Jitter,
    LogPacer,
    NextAction,
    Pace,
    PaceAction,
    RetryBudget,
    RetryClass,
    next_step,
    parse_retry_after,
    retry_class_of_status,
    retry_class_of_transport_error,
)
from ..errors import CapacityExceededError, MalformedError, TollgateError
from ..headers import RETRY_AFTER, SHOP_API_CALL_LIMIT
from ..presets import SHOPBASE_BURST, SHOPBASE_PER_SECOND, TIKTOK_SHOP_PER_SECOND

__all__ = [
    "IDEMPOTENT_METHODS",
    "Call",
    "ClientKeyFunc",
    "NeverError",
    "PacerLike",
    "Pacing",
    "Retry",
    "SharedPacers",
    "Stats",
    "Vendor",
    "key_from_headers",
    "key_from_query",
    "shopbase",
    "tiktok_shop",
]

#: Methods whose transport errors are retried (RFC 9110 idempotent methods).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

_TPS = NANOS_PER_SECOND


class PacerLike(Protocol):
    """What :class:`Pacing` needs of a pacer: :class:`~tollgate.client.BucketPacer` and
    :class:`~tollgate.client.LogPacer` are two."""

    def acquire(self, cost: int = 1, now: int | None = None) -> Pace:
        """SEND (counted) or WAIT until ``at``."""
        ...

    def sync(
        self,
        sent_at: int,
        *,
        call_limit: str | None = None,
        retry_after: str | None = None,
        now: int | None = None,
        now_unix: int | None = None,
    ) -> None:
        """Takes in a response's headers."""
        ...


#: A client key function: ``(method, url, headers) -> key``; calls with one key share a pacer.
ClientKeyFunc = Callable[[str, str, Mapping[str, str]], Hashable]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict with other capitalisation
        lower = name.lower()
        for n, v in headers.items():
            if n.lower() == lower:
                return v
    return value


def key_from_headers(*names: str, host: bool = True) -> ClientKeyFunc:
    """The key is the URL's host (unless ``host=False``) and the values of headers ``names``."""

    def key(method: str, url: str, headers: Mapping[str, str]) -> Hashable:
        parts: tuple[str | None, ...] = tuple(_header(headers, n) for n in names)
        return ((urlsplit(url).netloc,) if host else ()) + parts

    return key


def key_from_query(*names: str, path: bool = True, host: bool = True) -> ClientKeyFunc:
    """The key is the URL's host, the first value of each query parameter in ``names`` (a name
    ``a|b`` takes ``a``, else ``b``), and the path (the api) unless ``path=False``."""
    alternatives = [n.split("|") for n in names]

    def key(method: str, url: str, headers: Mapping[str, str]) -> Hashable:
        split = urlsplit(url)
        query = parse_qs(split.query)
        parts: list[str | None] = [split.netloc] if host else []
        for options in alternatives:
            parts.append(next((query[o][0] for o in options if o in query), None))
        if path:
            parts.append(split.path)
        return tuple(parts)

    return key


class Vendor(NamedTuple):
    """A server's limit as the client sees it."""

    #: A name for people.
    name: str
    #: A new pacer for one key (times in ``time.monotonic_ns`` ticks).
    new_pacer: Callable[[], PacerLike]
    #: The key of a call.
    key: ClientKeyFunc
    #: The used/limit header to sync from (None: none).
    call_limit_header: str | None = None
    #: Whether a 429 without ``Retry-After`` means Never (not retried).
    never_without_retry_after: bool = True
    #: A new pacer for one key living in shared memory at the path given (see
    #: :mod:`tollgate.shared_pacer`); None: the vendor cannot be paced across processes.
    new_shared_pacer: Callable[[str], PacerLike] | None = None


def shopbase(*, jitter: float = 0.2, key: ClientKeyFunc | None = None) -> Vendor:
    """ShopBase: a bucket of 30 draining 2 per second per (app, shop), mirrored with a burst
    margin for ``jitter`` seconds of network jitter (0.2 s: a mirror of 29), synced from
    ``X-Sb-Shop-Api-Call-Limit``. The default key is the host (the shop's domain) with the
    ``X-App-Id`` and ``X-Shop-Id`` headers."""
    margin = round(jitter * _TPS)

    def new_pacer() -> PacerLike:
        return BucketPacer(SHOPBASE_BURST, SHOPBASE_PER_SECOND, _TPS, margin)

    def new_shared_pacer(path: str) -> PacerLike:
        from ..shared_pacer import SharedBucketPacer

        return SharedBucketPacer(SHOPBASE_BURST, SHOPBASE_PER_SECOND, _TPS, margin, path=path)

    return Vendor(
        "shopbase",
        new_pacer,
        key or key_from_headers("X-App-Id", "X-Shop-Id"),
        SHOP_API_CALL_LIMIT,
        new_shared_pacer=new_shared_pacer,
    )


def tiktok_shop(*, jitter: float = 0.05, key: ClientKeyFunc | None = None) -> Vendor:
    """TikTok Shop: 50 per second per (app, shop, api), mirrored by a sliding log of 50 over
    one second plus ``jitter`` seconds (0.05 s: 95 % of the rate, safe for 50 ms of jitter).
    The default key is the host, the ``app_key`` and ``shop_cipher`` (else ``shop_id``) query
    parameters and the path."""
    margin = round(jitter * _TPS)

    def new_pacer() -> PacerLike:
        return LogPacer(TIKTOK_SHOP_PER_SECOND, _TPS, margin)

    def new_shared_pacer(path: str) -> PacerLike:
        from ..shared_pacer import SharedLogPacer

        return SharedLogPacer(TIKTOK_SHOP_PER_SECOND, _TPS, margin, path=path)

    return Vendor(
        "tiktok_shop",
        new_pacer,
        key or key_from_query("app_key", "shop_cipher|shop_id"),
        new_shared_pacer=new_shared_pacer,
    )


class Retry(NamedTuple):
    """The retry policy: backoff, attempt limit, retry budget (times in seconds)."""

    #: Retries per call at most.
    max_retries: int = 6
    #: The first backoff delay; it doubles up to ``cap``.
    base: float = 0.05
    #: The longest backoff delay (a longer ``Retry-After`` is still honoured).
    cap: float = 10.0
    #: How delays are randomised.
    jitter: Jitter = Jitter.FULL
    #: The retry budget's window.
    budget_window: float = 10.0
    #: Retries allowed per 1000 successes of the window.
    budget_per_mille: int = 200
    #: Retries always allowed in a window.
    budget_floor: int = 10
    #: More statuses to retry, for idempotent methods only (502 and 504 are common choices).
    extra_statuses: frozenset[int] = frozenset()
    #: Retry transport errors of non-idempotent methods too.
    retry_non_idempotent: bool = False


class Stats:
    """Counters of a :class:`Pacing` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Calls started.
        self.calls = 0
        #: Requests sent (calls plus retries).
        self.attempts = 0
        #: Retries scheduled.
        self.retries = 0
        #: Calls that gave up on a retryable failure (attempts or budget exhausted).
        self.gave_up = 0
        #: Transport errors seen.
        self.transport_errors = 0
        #: Answers by status.
        self.statuses: Counter[int] = Counter()
        #: Seconds spent waiting for the pacer, summed over calls.
        self.paced_seconds = 0.0

    def _add(self, **counts: float) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def _status(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1

    def __repr__(self) -> str:
        return (
            f"Stats(calls={self.calls}, attempts={self.attempts}, retries={self.retries}, "
            f"gave_up={self.gave_up}, transport_errors={self.transport_errors}, "
            f"statuses={dict(self.statuses)})"
        )


class NeverError(TollgateError):
    """The call can never pass the mirrored limit (its cost exceeds the limit)."""


_CLASS_CACHE: dict[int, RetryClass] = {}


def _class_of(status: int) -> RetryClass:
    cls = _CLASS_CACHE.get(status)
    if cls is None:
        cls = _CLASS_CACHE[status] = retry_class_of_status(status)
    return cls


def _key_bytes(key: object) -> bytes:
    """A byte string naming ``key`` the same way in every process (``hash()`` and ``repr()`` of
    arbitrary objects may differ between processes)."""
    if key is None:
        return b"N"
    if isinstance(key, bool):
        return b"B1" if key else b"B0"
    if isinstance(key, int):
        return b"I%d;" % key
    if isinstance(key, str):
        key = key.encode("utf-8", "surrogatepass")
        return b"S%d:" % len(key) + key
    if isinstance(key, bytes):
        return b"Y%d:" % len(key) + key
    if isinstance(key, tuple):
        return b"T%d(" % len(key) + b"".join(_key_bytes(k) for k in key) + b")"
    raise TypeError(
        "a key paced in shared memory must be made of str, bytes, int, None and tuples of them, "
        f"not {type(key).__name__}"
    )


class SharedPacers:
    """A ``pacer_factory`` for :class:`Pacing`: each key's pacer in shared memory, a region
    file in ``directory`` (created owner-only if missing; prefer tmpfs such as ``/dev/shm``)
    named after the vendor and a digest of the key. Every process whose :class:`Pacing` uses
    the same directory and vendor paces each key against one mirror and one ``Retry-After``.

    Keys must be made of ``str``, ``bytes``, ``int``, ``None`` and tuples of them (the vendor
    presets' keys are). At most ``max_keys`` keys are opened by one process; past that a call
    raises :class:`~tollgate.CapacityExceededError` (each key maps two small regions).
    ``Pacing(vendor, shared=directory)`` makes one of these.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        vendor: Vendor,
        *,
        max_keys: int = 10_000,
    ) -> None:
        if vendor.new_shared_pacer is None:
            raise TypeError(f"the vendor {vendor.name!r} has no new_shared_pacer")
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.vendor = vendor
        self.max_keys = max_keys
        self._opened = 0
        self._lock = threading.Lock()

    def path(self, key: Hashable) -> Path:
        """The region path of ``key``'s mirror (its ``Retry-After`` region is next to it)."""
        digest = hashlib.sha256(_key_bytes(key)).hexdigest()[:40]
        return self.directory / f"{self.vendor.name}-{digest}"

    def __call__(self, key: Hashable) -> PacerLike:
        path = self.path(key)
        new = self.vendor.new_shared_pacer
        assert new is not None  # checked by __init__
        with self._lock:
            if self._opened >= self.max_keys:
                raise CapacityExceededError(
                    f"more than max_keys={self.max_keys} keys paced in shared memory"
                )
            pacer = new(os.fspath(path))
            self._opened += 1
        return pacer


class Pacing:
    """Pacers per key, the retry policy and a shared retry budget: the engine the adapters use.

    ``vendor`` is :func:`shopbase`, :func:`tiktok_shop` or your own :class:`Vendor`.
    ``shared=directory`` keeps each key's pacer in shared memory in that directory
    (:class:`SharedPacers`): every process using the same directory paces together.
    ``pacer_factory(key)`` replaces ``vendor.new_pacer`` with any other. The retry budget and
    the backoff stay per process. Thread-safe and usable from any number of asyncio tasks.
    """

    def __init__(
        self,
        vendor: Vendor,
        *,
        retry: Retry | None = None,
        pacer_factory: Callable[[Hashable], PacerLike] | None = None,
        shared: str | os.PathLike[str] | None = None,
    ) -> None:
        if shared is not None:
            if pacer_factory is not None:
                raise TypeError("give either shared or pacer_factory, not both")
            pacer_factory = SharedPacers(shared, vendor)
        self.vendor = vendor
        self.retry = retry = retry if retry is not None else Retry()
        self.ticks_per_second = _TPS
        self._factory = pacer_factory
        self._pacers: dict[Hashable, PacerLike] = {}
        self._lock = threading.Lock()
        self.budget = RetryBudget(
            round(retry.budget_window * _TPS), retry.budget_per_mille, retry.budget_floor
        )
        self.stats = Stats()

    def pacer(self, key: Hashable) -> PacerLike:
        """The pacer of ``key`` (created on first use)."""
        pacer = self._pacers.get(key)
        if pacer is None:
            with self._lock:
                pacer = self._pacers.get(key)
                if pacer is None:
                    pacer = self._factory(key) if self._factory else self.vendor.new_pacer()
                    self._pacers[key] = pacer
        return pacer

    def call(self, method: str, url: str, headers: Mapping[str, str]) -> Call:
        """The state of one call (all its attempts)."""
        self.stats._add(calls=1)
        key = self.vendor.key(method, url, headers)
        return Call(self, self.pacer(key), method.upper())

    def __len__(self) -> int:
        return len(self._pacers)


class Call:
    """One call through a :class:`Pacing`: the adapters drive it.

    ``ready()`` → seconds to wait (then ask again) or None (send now: the pacer counted it);
    after the answer ``answered(status, headers)`` / ``failed(idempotent)`` → seconds to wait
    before the next attempt, or None (return the answer / raise the error).
    """

    __slots__ = ("_backoff", "_paced_from", "_pacing", "method", "pacer", "sent_at")

    def __init__(self, pacing: Pacing, pacer: PacerLike, method: str) -> None:
        self._pacing = pacing
        self.pacer = pacer
        self.method = method
        self.sent_at = 0
        self._backoff: Backoff | None = None
        self._paced_from: int | None = None

    def ready(self) -> float | None:
        """None to send now, else the seconds to wait before asking again."""
        now = time.monotonic_ns()
        pace = self.pacer.acquire(1, now)
        if pace.action is PaceAction.SEND:
            self.sent_at = now
            if self._paced_from is not None:
                self._pacing.stats._add(paced_seconds=(now - self._paced_from) / _TPS)
                self._paced_from = None
            self._pacing.stats._add(attempts=1)
            return None
        if pace.action is PaceAction.NEVER or pace.at is None:
            raise NeverError("the call's cost exceeds the mirrored limit: it can never pass")
        if self._paced_from is None:
            self._paced_from = now
        return max(pace.at - now, 0) / _TPS + 0.0005

    def answered(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Syncs the pacer from the answer; seconds to wait before retrying, or None."""
        pacing = self._pacing
        pacing.stats._status(status)
        now = time.monotonic_ns()
        retry_after = _header(headers, RETRY_AFTER)
        header_name = pacing.vendor.call_limit_header
        call_limit = _header(headers, header_name) if header_name else None
        if call_limit is not None or (status == 429 and retry_after is not None):
            try:
                self.pacer.sync(
                    self.sent_at,
                    call_limit=call_limit,
                    retry_after=retry_after if status == 429 else None,
                    now=now,
                )
            except MalformedError:
                pass  # a garbled header syncs nothing; the other one was applied
        cls = _class_of(status)
        if cls is RetryClass.SUCCESS:
            pacing.budget.record_success(now)
            return None
        if status == 429 and retry_after is None and pacing.vendor.never_without_retry_after:
            return None  # Never: retrying cannot help
        if cls is RetryClass.FATAL:
            if status not in pacing.retry.extra_statuses or self.method not in IDEMPOTENT_METHODS:
                return None
            cls = RetryClass.RETRYABLE
        wait = 0
        if retry_after is not None and status in (429, 503):
            try:
                wait = parse_retry_after(retry_after) * _TPS
            except MalformedError:
                wait = 0
        return self._next(cls, now, wait)

    def failed(self) -> float | None:
        """After a transport error: seconds to wait before retrying, or None (raise it)."""
        pacing = self._pacing
        pacing.stats._add(transport_errors=1)
        if self.method not in IDEMPOTENT_METHODS and not pacing.retry.retry_non_idempotent:
            return None
        return self._next(retry_class_of_transport_error(), time.monotonic_ns(), 0)

    def _next(self, cls: RetryClass, now: int, retry_after: int) -> float | None:
        pacing = self._pacing
        policy = pacing.retry
        if self._backoff is None:
            self._backoff = Backoff(
                max(round(policy.base * _TPS), 1),
                max(round(policy.cap * _TPS), round(policy.base * _TPS), 1),
                policy.max_retries,
                policy.jitter,
            )
        step = next_step(cls, self._backoff, pacing.budget, retry_after=retry_after, now=now)
        if step.action is NextAction.RETRY:
            pacing.stats._add(retries=1)
            return max(step.at - time.monotonic_ns(), 0) / _TPS
        pacing.stats._add(gave_up=1)
        return None
