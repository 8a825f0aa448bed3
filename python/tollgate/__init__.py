"""tollgate: exact, lock-free rate limiting from Python, over the C library ``libtollgate``.

>>> from tollgate import LeakyBucket
>>> bucket = LeakyBucket(30, 2, 1_000_000_000)   # ShopBase: 30, draining 2 per second (ns ticks)
>>> bucket.decide(now=0).used
1

The library is found through ``TOLLGATE_LIB`` (a file or directory), else inside this package
(where ``pip install`` puts it), else in the source checkout's cargo target directory.
"""

from __future__ import annotations

from . import client, headers, pagination, presets
from ._ffi import LIBRARY_PATH, lib
from ._util import NANOS_PER_SECOND, U64_MAX
from .clock import WrappingClock
from .decision import FLAG_FAIL_OPEN, FLAG_SHADOW, Decision, Outcome
from .errors import (
    ArgumentTypeError,
    BusyError,
    CapacityExceededError,
    ClockOutOfRangeError,
    InternalError,
    InvalidArgumentError,
    LibraryNotFoundError,
    LimitedError,
    MalformedError,
    NotAcquiredError,
    OverloadedError,
    QuotaError,
    Refused,
    RegionError,
    SpanTooShortError,
    TollgateError,
    ZeroCostError,
)
from .table import FullPolicy, Key, KeyTable, TableStats, WindowQuota, key_pair, key_triple
from .limiters import (
    DEFAULT_MIN_SPAN,
    ConcurrencyLimit,
    FixedWindow,
    LeakyBucket,
    Permit,
    Quota,
    SlidingLog,
)

#: The most units a :class:`SlidingLog` holds.
SLIDING_LOG_CAPACITY = 128
#: The largest :class:`FixedWindow` limit.
WINDOW_MAX_LIMIT = (1 << 32) - 1

__version__ = "0.1.0"


def library_version() -> str:
    """The loaded library's version string (``tg_version_string``)."""
    return lib.tg_version_string().decode()


__all__ = [
    "DEFAULT_MIN_SPAN",
    "FLAG_FAIL_OPEN",
    "FLAG_SHADOW",
    "LIBRARY_PATH",
    "NANOS_PER_SECOND",
    "SLIDING_LOG_CAPACITY",
    "U64_MAX",
    "WINDOW_MAX_LIMIT",
    "ArgumentTypeError",
    "BusyError",
    "CapacityExceededError",
    "ClockOutOfRangeError",
    "ConcurrencyLimit",
    "Decision",
    "FixedWindow",
    "FullPolicy",
    "Key",
    "KeyTable",
    "TableStats",
    "WindowQuota",
    "key_pair",
    "key_triple",
    "InternalError",
    "InvalidArgumentError",
    "LeakyBucket",
    "LibraryNotFoundError",
    "LimitedError",
    "MalformedError",
    "NotAcquiredError",
    "Outcome",
    "OverloadedError",
    "Permit",
    "Quota",
    "QuotaError",
    "Refused",
    "RegionError",
    "SlidingLog",
    "SpanTooShortError",
    "TollgateError",
    "WrappingClock",
    "ZeroCostError",
    "client",
    "headers",
    "library_version",
    "pagination",
    "presets",
]
