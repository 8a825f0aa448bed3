"""Argument checks (before anything reaches C) and status handling."""

from __future__ import annotations

from typing import NoReturn

from ._ffi import lib
from .errors import ArgumentTypeError, InvalidArgumentError, status_error

U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1
#: Ticks per second of the default clock, ``time.monotonic_ns``.
NANOS_PER_SECOND = 1_000_000_000


def bad_int(name: str, value: object, maximum: int, minimum: int = 0) -> NoReturn:
    """Raises the right error for an argument that failed a range or type check."""
    if type(value) is bool or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}, got {value}")
    raise InvalidArgumentError(f"{name} must be at most {maximum}, got {value}")


def _exact_int(value: object) -> int | None:
    """``value`` as a plain int, or None if it is not an int (bool excluded).

    An ``int`` subclass is converted with ``int.__index__`` (the stored value, whatever the
    subclass's own ``__int__``, ``__index__`` or comparisons say) *before* any range check, so
    a subclass cannot pass a check with one value and reach C with another.
    """
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__index__(value)
    return None


def u64(name: str, value: object) -> int:
    """``value`` if it is an int in 0..2**64-1, else the matching error."""
    v = _exact_int(value)
    if v is not None and 0 <= v <= U64_MAX:
        return v
    bad_int(name, value if v is None else v, U64_MAX)


def positive_u64(name: str, value: object) -> int:
    """``value`` if it is an int in 1..2**64-1."""
    v = _exact_int(value)
    if v is not None and 0 < v <= U64_MAX:
        return v
    bad_int(name, value if v is None else v, U64_MAX, 1)


def u32(name: str, value: object) -> int:
    """``value`` if it is an int in 0..2**32-1."""
    v = _exact_int(value)
    if v is not None and 0 <= v <= U32_MAX:
        return v
    bad_int(name, value if v is None else v, U32_MAX)


def check(status: int, func: str) -> None:
    """Raises the exception for a non-zero ``tg_status``."""
    if status:
        raise status_error(status, func, lib.tg_status_str)


def text_bytes(name: str, value: object) -> bytes:
    """A str (encoded as ASCII) or bytes argument as bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidArgumentError(f"{name} must be ASCII, got {value!r}") from None
    raise ArgumentTypeError(f"{name} must be str or bytes, not {type(value).__name__}")
