"""Outcomes and decisions (docs/semantics.md#leaky-bucket, docs/semantics.md#outcomes-and-http-statuses): small immutable values."""

from __future__ import annotations

import ctypes
import enum
import struct
from typing import NamedTuple

from . import _ffi
from ._ffi import TgDecision, lib
from ._util import U64_MAX, check, u32, u64

#: ``tg_decision.flags`` bit: computed in shadow (dry-run) mode.
FLAG_SHADOW = 1
#: ``tg_decision.flags`` bit: a full key table's fail-open policy let the request through.
FLAG_FAIL_OPEN = 2


class Outcome(enum.IntEnum):
    """What a limiter answered (``tg_outcome``)."""

    #: Pass.
    ALLOWED = 0
    #: Rate limit exceeded; ``retry_after`` says when the same request would pass (429).
    LIMITED = 1
    #: Protective shedding: a concurrency cap or a full table in fail-closed mode (503).
    OVERLOADED = 2
    #: Can never pass (cost above capacity, deep pagination): retrying cannot help (429).
    NEVER = 3

    @property
    def http_status(self) -> int | None:
        """The HTTP status a gateway answers with: None when allowed, else 429 or 503."""
        return _HTTP_STATUS[self]


def _http_status(outcome: int) -> int | None:
    code = ctypes.c_uint16()
    check(lib.tg_outcome_http_status(outcome, ctypes.byref(code)), "tg_outcome_http_status")
    return code.value or None


# Asked of the library once: tg_outcome_http_status is the source of truth for the mapping.
_HTTP_STATUS = {o: _http_status(int(o)) for o in Outcome}
_OUTCOMES = tuple(Outcome)


class Decision(NamedTuple):
    """A decision and the numbers describing the limiter after it (times in the clock's ticks).

    ``retry_after`` is 0 when admitted and ``None`` when the request can never pass (or, for an
    overload, when no time can be promised). For a denial, a Never or a peek, ``used``,
    ``remaining`` and ``reset_after`` describe the unchanged state.
    """

    #: What to do with the request (``verdict`` unless shadow mode or fail-open changed it).
    outcome: Outcome
    #: What the limiter itself decided.
    verdict: Outcome
    #: The capacity: burst, window limit, concurrency cap.
    limit: int
    #: Units in use after the decision (an admitted request included), rounded up.
    used: int
    #: ``limit - used``: cost-1 requests that would pass back to back now.
    remaining: int
    #: Ticks until the same request would pass; 0 if admitted; None for never.
    retry_after: int | None
    #: Ticks until the limiter is empty again.
    reset_after: int
    #: Bit set of :data:`FLAG_SHADOW` and :data:`FLAG_FAIL_OPEN`.
    flags: int = 0

    @property
    def allowed(self) -> bool:
        """Whether to let the request through."""
        return self.outcome is Outcome.ALLOWED

    @property
    def would_limit(self) -> bool:
        """Whether enforcement would have refused it (differs from ``not allowed`` in shadow)."""
        return self.verdict is not Outcome.ALLOWED

    @property
    def shadow(self) -> bool:
        """Computed in shadow (dry-run) mode."""
        return bool(self.flags & FLAG_SHADOW)

    @property
    def fail_open(self) -> bool:
        """Let through by a full table's fail-open policy."""
        return bool(self.flags & FLAG_FAIL_OPEN)

    @property
    def http_status(self) -> int | None:
        """None when allowed (the upstream's answer stands), 429 when limited or never, 503."""
        return _HTTP_STATUS[self.outcome]

    def as_shadow(self) -> Decision:
        """This decision in shadow form: outcome Allowed, verdict kept, the shadow flag set."""
        raw = to_c(self)
        check(lib.tg_decision_shadow(ctypes.byref(raw)), "tg_decision_shadow")
        return from_c(raw)


# One unpack of the struct's bytes is several times faster than nine ctypes field reads. The
# layout (native, no padding: 4 × uint32 then 5 × uint64) is the header's; tests check it.
_unpack = struct.Struct("=IIIIQQQQQ").unpack_from
_new = tuple.__new__


# Verdicts whose retry_after of UINT64_MAX means "never" (no time to promise). A Limited
# verdict always carries a real wait, which may itself be 2**64 - 1 ticks.
_NO_TIME = frozenset((3, 2))  # TG_OUTCOME_NEVER, TG_OUTCOME_OVERLOADED


def from_c(raw: TgDecision) -> Decision:
    """A :class:`Decision` from a filled ``tg_decision``."""
    outcome, verdict, flags, _, limit, used, remaining, retry, reset = _unpack(raw)
    return _new(
        Decision,
        (
            _OUTCOMES[outcome],
            _OUTCOMES[verdict],
            limit,
            used,
            remaining,
            None if retry == U64_MAX and verdict in _NO_TIME else retry,
            reset,
            flags,
        ),
    )


def to_c(decision: Decision) -> TgDecision:
    """The ``tg_decision`` for a :class:`Decision` (for the header functions)."""
    if not isinstance(decision, Decision):
        from .errors import ArgumentTypeError

        raise ArgumentTypeError(f"expected a Decision, not {type(decision).__name__}")
    retry = U64_MAX if decision.retry_after is None else u64("retry_after", decision.retry_after)
    return _ffi.TgDecision(
        u32("outcome", decision.outcome),
        u32("verdict", decision.verdict),
        u32("flags", decision.flags),
        0,
        u64("limit", decision.limit),
        u64("used", decision.used),
        u64("remaining", decision.remaining),
        retry,
        u64("reset_after", decision.reset_after),
    )
