"""HTTP header values (docs/semantics.md#header-values), formatted by the library into a buffer this module sizes.

Names: :data:`SHOP_API_CALL_LIMIT`, :data:`RETRY_AFTER`, :data:`RATELIMIT`,
:data:`RATELIMIT_POLICY`. :func:`for_decision` builds the whole dictionary a response carries.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Callable

from ._ffi import lib
from ._util import NANOS_PER_SECOND, check, positive_u64, text_bytes, u64
from .decision import Decision, to_c
from .errors import ArgumentTypeError

if TYPE_CHECKING:  # pragma: no cover
    from .limiters import Quota

#: ShopBase's used/limit header.
SHOP_API_CALL_LIMIT = "X-Sb-Shop-Api-Call-Limit"
#: Whole seconds to wait.
RETRY_AFTER = "Retry-After"
#: The IETF draft's remaining/reset field.
RATELIMIT = "RateLimit"
#: The IETF draft's quota/window field.
RATELIMIT_POLICY = "RateLimit-Policy"

_BUFFER_TOO_SMALL = 11


def _format(func_name: str, call: Callable[[Any, int, Any], int], size: int = 64) -> str:
    """Calls a formatting function, growing the buffer once if the library asks for more."""
    needed = ctypes.c_size_t()
    for _ in range(2):
        buf = ctypes.create_string_buffer(size)
        status = call(buf, size, ctypes.byref(needed))
        if status == _BUFFER_TOO_SMALL and needed.value > size:
            size = needed.value
            continue
        check(status, func_name)
        return buf.raw[: needed.value].decode("ascii")
    check(status, func_name)
    raise AssertionError("unreachable")  # pragma: no cover


def _name(name: object) -> bytes:
    return text_bytes("name", name)


def shop_api_call_limit(decision: Decision) -> str:
    """``{used}/{limit}``, e.g. ``22/30``: the value of ``X-Sb-Shop-Api-Call-Limit``."""
    raw = to_c(decision)
    return _format(
        "tg_header_shop_api_call_limit",
        lambda b, n, o: lib.tg_header_shop_api_call_limit(raw, b, n, o),
    )


def retry_after_seconds(decision: Decision, ticks_per_second: int = NANOS_PER_SECOND) -> int:
    """Seconds for ``Retry-After``: 0 when no header is called for (allowed, or Never), else
    ⌈retry_after / ticks_per_second⌉ but at least 1."""
    raw = to_c(decision)
    out = ctypes.c_uint64()
    tps = positive_u64("ticks_per_second", ticks_per_second)
    status = lib.tg_header_retry_after_seconds(raw, tps, ctypes.byref(out))
    check(status, "tg_header_retry_after_seconds")
    return out.value


def retry_after(decision: Decision, ticks_per_second: int = NANOS_PER_SECOND) -> str:
    """The ``Retry-After`` value, or ``""`` when the decision calls for none."""
    raw = to_c(decision)
    tps = positive_u64("ticks_per_second", ticks_per_second)
    return _format(
        "tg_header_retry_after", lambda b, n, o: lib.tg_header_retry_after(raw, tps, b, n, o)
    )


def ratelimit(decision: Decision, name: str, ticks_per_second: int = NANOS_PER_SECOND) -> str:
    """The ``RateLimit`` value ``"{name}";r={remaining};t={seconds to reset}``."""
    raw = to_c(decision)
    nm = _name(name)
    tps = positive_u64("ticks_per_second", ticks_per_second)
    return _format(
        "tg_header_ratelimit",
        lambda b, n, o: lib.tg_header_ratelimit(raw, nm, len(nm), tps, b, n, o),
        64 + len(nm),
    )


def ratelimit_policy(name: str, limit: int, window_seconds: int) -> str:
    """The ``RateLimit-Policy`` value ``"{name}";q={limit};w={window_seconds}``."""
    nm = _name(name)
    q = u64("limit", limit)
    w = u64("window_seconds", window_seconds)
    return _format(
        "tg_header_ratelimit_policy",
        lambda b, n, o: lib.tg_header_ratelimit_policy(nm, len(nm), q, w, b, n, o),
        64 + len(nm),
    )


def ratelimit_policy_bucket(
    quota: Quota, name: str, ticks_per_second: int = NANOS_PER_SECOND
) -> str:
    """``RateLimit-Policy`` for a leaky bucket: q = burst, w = seconds to drain a full bucket."""
    from .limiters import Quota

    if not isinstance(quota, Quota):
        raise ArgumentTypeError(f"quota must be a Quota, not {type(quota).__name__}")
    nm = _name(name)
    tps = positive_u64("ticks_per_second", ticks_per_second)
    return _format(
        "tg_header_ratelimit_policy_bucket",
        lambda b, n, o: lib.tg_header_ratelimit_policy_bucket(
            quota._raw, nm, len(nm), tps, b, n, o
        ),
        64 + len(nm),
    )


def ratelimit_policy_window(
    limit: int, window: int, name: str, ticks_per_second: int = NANOS_PER_SECOND
) -> str:
    """``RateLimit-Policy`` for a window of ``limit`` per ``window`` ticks."""
    nm = _name(name)
    q = u64("limit", limit)
    w = u64("window", window)
    tps = positive_u64("ticks_per_second", ticks_per_second)
    return _format(
        "tg_header_ratelimit_policy_window",
        lambda b, n, o: lib.tg_header_ratelimit_policy_window(q, w, nm, len(nm), tps, b, n, o),
        64 + len(nm),
    )


def for_decision(
    decision: Decision,
    *,
    ticks_per_second: int = NANOS_PER_SECOND,
    name: str = "default",
    policy: str | None = None,
    call_limit: bool = True,
) -> dict[str, str]:
    """Every header a response to ``decision`` carries.

    ``X-Sb-Shop-Api-Call-Limit`` (unless ``call_limit=False``), ``RateLimit``,
    ``RateLimit-Policy`` when ``policy`` is given (from a limiter's ``_policy`` or
    :func:`ratelimit_policy_bucket`), and ``Retry-After`` when the decision calls for one.
    """
    out: dict[str, str] = {}
    if call_limit:
        out[SHOP_API_CALL_LIMIT] = shop_api_call_limit(decision)
    out[RATELIMIT] = ratelimit(decision, name, ticks_per_second)
    if policy is not None:
        out[RATELIMIT_POLICY] = policy
    retry = retry_after(decision, ticks_per_second)
    if retry:
        out[RETRY_AFTER] = retry
    return out
