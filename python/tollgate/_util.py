"""Argument checks (before anything reaches C) and status handling."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import NoReturn, Union

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


#: A length of time in seconds that converts exactly to ticks: ``int``, ``Fraction``,
#: ``Decimal``, or a ``float`` whose binary value is a whole number of ticks.
Seconds = Union[int, Fraction, Decimal, float]


def _fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else (
        f"Fraction({value.numerator}, {value.denominator})"
    )


def seconds_to_ticks(name: str, seconds: object, ticks_per_second: int) -> int:
    """``seconds`` in ticks of a clock of ``ticks_per_second``, exactly, or an error saying why.

    Accepts an ``int``, a ``fractions.Fraction``, a ``decimal.Decimal`` and a ``float`` whose
    binary value times ``ticks_per_second`` is a whole number (0.5 s, 0.25 s). Never rounds:
    ``0.1`` is refused (the float nearest 0.1 is not 1/10) with a hint to pass
    ``Fraction(1, 10)``, and so is a time that is not a whole number of ticks.
    """
    tps = positive_u64("ticks_per_second", ticks_per_second)
    if type(seconds) is bool:
        raise ArgumentTypeError(f"{name} must be a number of seconds, not bool")
    exact: Fraction
    if isinstance(seconds, int):
        exact = Fraction(int.__index__(seconds))
    elif isinstance(seconds, Fraction):
        exact = Fraction(seconds.numerator, seconds.denominator)
    elif isinstance(seconds, Decimal):
        if not seconds.is_finite():
            raise InvalidArgumentError(f"{name} must be finite, got {seconds}")
        exact = Fraction(seconds)
    elif isinstance(seconds, float):
        if not math.isfinite(seconds):
            raise InvalidArgumentError(f"{name} must be finite, got {seconds!r}")
        exact = Fraction(seconds)
        intended = Fraction(repr(seconds))
        if exact != intended and (intended * tps).denominator == 1:
            raise InvalidArgumentError(
                f"{name}={seconds!r} s is not exact as a float: pass "
                f"{_fraction_text(intended)} (seconds) or {intended * tps} ticks"
            )
        if exact != intended:
            raise InvalidArgumentError(
                f"{name}={seconds!r} s is not exact as a float, and {intended} s is not a whole "
                f"number of ticks at {tps} ticks per second either: pass ticks"
            )
    else:
        raise ArgumentTypeError(
            f"{name} must be seconds as int, Fraction, Decimal or float, "
            f"not {type(seconds).__name__}"
        )
    if exact < 0:
        raise InvalidArgumentError(f"{name} must not be negative, got {seconds!r} s")
    ticks = exact * tps
    if ticks.denominator != 1:
        raise InvalidArgumentError(
            f"{name}={seconds!r} s is not a whole number of ticks at {tps} ticks per second "
            f"({ticks} ticks): pass a time that is, or ticks"
        )
    if ticks.numerator > U64_MAX:
        raise InvalidArgumentError(
            f"{name}={seconds!r} s is {ticks.numerator} ticks, more than 2**64 - 1"
        )
    return ticks.numerator


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
