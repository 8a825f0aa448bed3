"""The wrapping clock (docs/semantics.md#wrapping-counters): a monotonic u64 over a wrapping 32-bit counter."""

from __future__ import annotations

import ctypes
import threading
from typing import Callable

from ._ffi import TgReadCounter, TgWrappingClock, lib
from ._util import U32_MAX, check
from .errors import ArgumentTypeError, InvalidArgumentError


class WrappingClock:
    """Extends a wrapping 32-bit counter read by ``read()`` to monotonic u64 ticks.

    Correct as long as :meth:`now` is called at least once per wrap period (2**32 ticks). An
    instance is callable, so it can be a limiter's ``clock`` (give ``ticks_per_second`` too).
    If ``read`` raises or returns something that is not a u32, the clock is left unchanged and
    the error propagates.
    """

    __slots__ = ("_raw", "_read", "_lock", "_error", "_callback")

    def __init__(self, read: Callable[[], int]) -> None:
        if not callable(read):
            raise ArgumentTypeError(f"read must be callable, not {type(read).__name__}")
        self._read = read
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._raw = TgWrappingClock()
        check(lib.tg_wrapping_clock_init(self._raw), "tg_wrapping_clock_init")
        self._callback = TgReadCounter(self._counter)
        # The first reading is the counter's value; take it now so `last` starts there.
        self.now()

    def _counter(self, _context: object) -> int:
        try:
            value = self._read()
            if type(value) is bool or not isinstance(value, int):
                raise ArgumentTypeError(f"read() must return an int, not {type(value).__name__}")
            # The stored value of an int subclass, checked as it will reach C.
            value = int.__index__(value)
            if not 0 <= value <= U32_MAX:
                raise InvalidArgumentError(f"read() must return a u32, got {value}")
            return value
        except BaseException as exc:  # noqa: BLE001 - carried across the C call, re-raised
            if self._error is None:
                self._error = exc
            # The extended value is ≡ the last raw reading (mod 2**32): returning it moves
            # nothing, so a failed read leaves the clock where it was.
            return self.last & U32_MAX

    def now(self) -> int:
        """Reads the counter and returns the extended time in ticks."""
        out = ctypes.c_uint64()
        with self._lock:
            self._error = None
            status = lib.tg_wrapping_clock_now(self._raw, self._callback, None, ctypes.byref(out))
            error, self._error = self._error, None
        if error is not None:
            raise error
        check(status, "tg_wrapping_clock_now")
        return out.value

    __call__ = now

    @property
    def last(self) -> int:
        """The latest extended value, without reading the counter."""
        out = ctypes.c_uint64()
        check(lib.tg_wrapping_clock_last(self._raw, ctypes.byref(out)), "tg_wrapping_clock_last")
        return out.value
