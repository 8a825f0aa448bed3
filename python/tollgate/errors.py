"""Exceptions: every failure is a :class:`TollgateError`.

A refused request is **not** an error: it is a :class:`~tollgate.Decision` whose ``outcome`` says
so. Errors are refused *calls*: a bad argument caught in Python before anything reaches C, or a
``tg_status`` the library answered, each mapped to the class below that names it.

Hierarchy::

    TollgateError
    ├── LibraryNotFoundError (also OSError)        the shared library could not be found/loaded
    ├── ArgumentTypeError (also TypeError)         wrong Python type, caught before C
    ├── InvalidArgumentError (also ValueError)     out of range, caught before C, or status 13
    │   ├── QuotaError                             zero burst/count/period, overflow, offset
    │   │   └── SpanTooShortError                  exact arithmetic would not reach far enough
    │   ├── ZeroCostError                          cost 0 (use peek)
    │   ├── ClockOutOfRangeError                   now beyond the exact span
    │   └── MalformedError                         a header value or query string
    ├── CapacityExceededError                      fixed capacity too small
    ├── NotAcquiredError (also RuntimeError)       release without acquire
    ├── BusyError (also RuntimeError)              a sliding log used by two callers at once
    ├── InternalError                              NULL/misaligned/uninitialised/panic: a bug
    └── Refused                                    raised only by the raising helpers
        ├── LimitedError                           429 (Limited or Never)
        └── OverloadedError                        503
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .decision import Decision


class TollgateError(Exception):
    """Base class of every exception this package raises.

    ``status`` is the ``tg_status`` code when the error came from the library, else ``None``.
    """

    status: int | None = None

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LibraryNotFoundError(TollgateError, OSError):
    """``libtollgate`` could not be found or loaded; the message lists where it looked."""


class ArgumentTypeError(TollgateError, TypeError):
    """An argument has the wrong Python type (checked before the call reaches C)."""


class InvalidArgumentError(TollgateError, ValueError):
    """An argument is outside its range: negative, above 2**64 - 1, an unknown outcome..."""


class QuotaError(InvalidArgumentError):
    """A quota parameter is zero, too large for exact arithmetic, or an offset is out of range."""


class SpanTooShortError(QuotaError):
    """The quota's exact arithmetic would not reach far enough in time.

    Use ``approximate=True``, a smaller ``min_span``, or a coarser clock.
    """


class ZeroCostError(InvalidArgumentError):
    """A cost of zero was asked for; use ``peek`` to look without spending."""


class ClockOutOfRangeError(InvalidArgumentError):
    """``now`` lies beyond what the limiter's exact arithmetic accepts."""


class MalformedError(InvalidArgumentError):
    """A header value or query string could not be parsed (a gateway answers 400)."""


class CapacityExceededError(TollgateError):
    """A fixed-capacity structure cannot hold what was asked."""


class NotAcquiredError(TollgateError, RuntimeError):
    """A concurrency permit was released that was never acquired."""


class BusyError(TollgateError, RuntimeError):
    """A sliding log was used by two callers at once; nothing was done."""


class RegionError(TollgateError, OSError):
    """A shared region could not be created or opened; the message names the difference
    between what was asked for and what was found (``found`` and ``expected`` hold the two
    numbers where there are numbers: a parameter, a size, an owner, permission bits)."""

    def __init__(
        self, message: str, status: int | None = None, found: int = 0, expected: int = 0
    ) -> None:
        super().__init__(message, status)
        self.found = found
        self.expected = expected


class InternalError(TollgateError):
    """The library reported a condition this package should make impossible (a bug)."""


class Refused(TollgateError):
    """A request was refused; ``decision`` holds the limiter's answer.

    Raised only by helpers that turn refusals into exceptions (a concurrency context manager,
    ``check`` methods); the ``decide`` methods return the decision instead.
    """

    def __init__(self, decision: Decision, message: str | None = None) -> None:
        super().__init__(message or f"request refused: {decision.outcome.name}")
        self.decision = decision


class LimitedError(Refused):
    """Rate limited (HTTP 429); ``decision.retry_after`` says when to retry (None: never)."""


class OverloadedError(Refused):
    """Shed by a concurrency cap or a full table (HTTP 503)."""


# tg_status values (the header's enum tg_status).
STATUS_NAMES = {
    0: "TG_STATUS_OK",
    1: "TG_STATUS_ZERO_BURST",
    2: "TG_STATUS_ZERO_COUNT",
    3: "TG_STATUS_ZERO_PERIOD",
    4: "TG_STATUS_QUOTA_OVERFLOW",
    5: "TG_STATUS_SPAN_TOO_SHORT",
    6: "TG_STATUS_OFFSET_OUT_OF_RANGE",
    7: "TG_STATUS_ZERO_COST",
    8: "TG_STATUS_CLOCK_OUT_OF_RANGE",
    9: "TG_STATUS_CAPACITY_EXCEEDED",
    10: "TG_STATUS_NOT_ACQUIRED",
    11: "TG_STATUS_BUFFER_TOO_SMALL",
    12: "TG_STATUS_MALFORMED",
    13: "TG_STATUS_INVALID_ARGUMENT",
    100: "TG_STATUS_NULL_POINTER",
    101: "TG_STATUS_MISALIGNED",
    102: "TG_STATUS_UNINITIALIZED",
    103: "TG_STATUS_PANIC",
    104: "TG_STATUS_BUSY",
    105: "TG_STATUS_UNKNOWN",
    106: "TG_STATUS_LAYOUT_MISMATCH",
    107: "TG_STATUS_RANDOM_UNAVAILABLE",
    200: "TG_STATUS_REGION_IO",
    201: "TG_STATUS_REGION_NOT_FOUND",
    202: "TG_STATUS_REGION_EXISTS",
    203: "TG_STATUS_REGION_ACCESS_DENIED",
    204: "TG_STATUS_REGION_NOT_LOCK_FREE",
    205: "TG_STATUS_REGION_NOT_A_FILE",
    206: "TG_STATUS_REGION_TRUNCATED",
    207: "TG_STATUS_REGION_NOT_A_REGION",
    208: "TG_STATUS_REGION_LAYOUT_VERSION",
    209: "TG_STATUS_REGION_KIND",
    210: "TG_STATUS_REGION_NOT_INITIALISED",
    211: "TG_STATUS_REGION_CORRUPT",
    212: "TG_STATUS_REGION_MISMATCH",
    213: "TG_STATUS_REGION_SIZE",
    214: "TG_STATUS_REGION_OWNER",
    215: "TG_STATUS_REGION_PERMISSIONS",
}

_STATUS_CLASSES: dict[int, type[TollgateError]] = {
    1: QuotaError,
    2: QuotaError,
    3: QuotaError,
    4: QuotaError,
    5: SpanTooShortError,
    6: QuotaError,
    7: ZeroCostError,
    8: ClockOutOfRangeError,
    9: CapacityExceededError,
    10: NotAcquiredError,
    11: InternalError,  # buffers are sized and retried by this package
    12: MalformedError,
    13: InvalidArgumentError,
    104: BusyError,
    106: InvalidArgumentError,
    **{code: RegionError for code in range(200, 216)},
}


def status_error(status: int, func: str, describe: Any) -> TollgateError:
    """The exception for a non-zero ``tg_status`` returned by ``func``.

    ``describe`` is ``tg_status_str`` (passed in to keep this module free of ctypes).
    """
    name = STATUS_NAMES.get(status, "unknown status")
    text = describe(status).decode("utf-8", "replace")
    cls = _STATUS_CLASSES.get(status, InternalError)
    return cls(f"{func}: {text} ({name} = {status})", status)
