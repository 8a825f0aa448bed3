"""The ctypes layer: finding ``libtollgate``, the C structs, and every function's signature.

Nothing here is public API. ``DECLARATIONS`` is the single place where each ``tg_*`` function's
``restype`` and ``argtypes`` are written down; ``tests/test_ffi_declarations.py`` parses
``include/tollgate.h`` and fails if a header function is missing here or declared differently.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int32,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint8,
    c_uint64,
    c_void_p,
)
from pathlib import Path

from .errors import LibraryNotFoundError

#: The library version this package was written against (the header's ``TG_VERSION_*``).
ABI_MAJOR = 0
ABI_MINOR = 1

# Word counts of the opaque structs (the header's TG_*_WORDS macros; checked by the tests).
BUCKET_WORDS = 10
QUOTA_WORDS = 9
WINDOW_WORDS = 5
SLIDING_LOG_WORDS = 266
CONCURRENCY_WORDS = 2
WRAPPING_CLOCK_WORDS = 2
BUCKET_PACER_WORDS = 12
LOG_PACER_WORDS = 267
BACKOFF_WORDS = 8
RETRY_BUDGET_WORDS = 36
REQUEST_QUEUE_WORDS = 131
SHARED_WORDS = 24
REGION_ERROR_MESSAGE_SIZE = 160


class TgBucket(Structure):
    """``tg_bucket``: opaque, 8-byte aligned plain memory."""

    _fields_ = [("_private", c_uint64 * BUCKET_WORDS)]


class TgQuota(Structure):
    """``tg_quota``."""

    _fields_ = [("_private", c_uint64 * QUOTA_WORDS)]


class TgWindow(Structure):
    """``tg_window``."""

    _fields_ = [("_private", c_uint64 * WINDOW_WORDS)]


class TgSlidingLog(Structure):
    """``tg_sliding_log``."""

    _fields_ = [("_private", c_uint64 * SLIDING_LOG_WORDS)]


class TgConcurrency(Structure):
    """``tg_concurrency``."""

    _fields_ = [("_private", c_uint64 * CONCURRENCY_WORDS)]


class TgWrappingClock(Structure):
    """``tg_wrapping_clock``."""

    _fields_ = [("_private", c_uint64 * WRAPPING_CLOCK_WORDS)]


class TgDecision(Structure):
    """``tg_decision``: public fields, in the header's order."""

    _fields_ = [
        ("outcome", c_uint32),
        ("verdict", c_uint32),
        ("flags", c_uint32),
        ("reserved", c_uint32),
        ("limit", c_uint64),
        ("used", c_uint64),
        ("remaining", c_uint64),
        ("retry_after", c_uint64),
        ("reset_after", c_uint64),
    ]


class TgTable(Structure):
    """``tg_table``: incomplete in C; only pointers to it are used."""


class TgKey(Structure):
    """``tg_key``: an exact 128-bit key, passed by value."""

    _fields_ = [("hi", c_uint64), ("lo", c_uint64)]


class TgWindowQuota(Structure):
    """``tg_window_quota``: a fixed-window table tier."""

    _fields_ = [("limit", c_uint64), ("window", c_uint64), ("offset", c_uint64)]


class TgTableStats(Structure):
    """``tg_table_stats``."""

    _fields_ = [
        ("capacity", c_uint64),
        ("occupied", c_uint64),
        ("reclaimed", c_uint64),
        ("rejected", c_uint64),
    ]


class TgBucketPacer(Structure):
    """``tg_bucket_pacer``."""

    _fields_ = [("_private", c_uint64 * BUCKET_PACER_WORDS)]


class TgLogPacer(Structure):
    """``tg_log_pacer``."""

    _fields_ = [("_private", c_uint64 * LOG_PACER_WORDS)]


class TgBackoff(Structure):
    """``tg_backoff``."""

    _fields_ = [("_private", c_uint64 * BACKOFF_WORDS)]


class TgRetryBudget(Structure):
    """``tg_retry_budget``."""

    _fields_ = [("_private", c_uint64 * RETRY_BUDGET_WORDS)]


class TgRequestQueue(Structure):
    """``tg_request_queue``."""

    _fields_ = [("_private", c_uint64 * REQUEST_QUEUE_WORDS)]


class TgPace(Structure):
    """``tg_pace``."""

    _fields_ = [("action", c_uint32), ("reserved", c_uint32), ("at", c_uint64)]


class TgCallLimit(Structure):
    """``tg_call_limit``."""

    _fields_ = [("used", c_uint64), ("limit", c_uint64)]


class TgNext(Structure):
    """``tg_next``."""

    _fields_ = [("action", c_uint32), ("give_up", c_uint32), ("at", c_uint64)]


class TgRelease(Structure):
    """``tg_release``."""

    _fields_ = [
        ("action", c_uint32),
        ("reserved", c_uint32),
        ("id", c_uint64),
        ("at", c_uint64),
    ]


class TgShared(Structure):
    """``tg_shared``: a handle on a limiter in shared memory."""

    _fields_ = [("_private", c_uint64 * SHARED_WORDS)]


class TgLease(Structure):
    """``tg_lease``."""

    _fields_ = [
        ("slot", c_uint32),
        ("reserved", c_uint32),
        ("generation", c_uint64),
        ("deadline", c_uint64),
    ]


class TgRegionError(Structure):
    """``tg_region_error``."""

    _fields_ = [
        ("status", c_uint32),
        ("reserved", c_uint32),
        ("found", c_uint64),
        ("expected", c_uint64),
        ("message", ctypes.c_char * REGION_ERROR_MESSAGE_SIZE),
    ]


#: ``tg_read_counter``: ``uint32_t (*)(void *context)``.
TgReadCounter = CFUNCTYPE(c_uint32, c_void_p)

#: ``struct name`` in the header → the ctypes Structure. The header test uses this map.
STRUCTS = {
    "tg_bucket": TgBucket,
    "tg_quota": TgQuota,
    "tg_window": TgWindow,
    "tg_sliding_log": TgSlidingLog,
    "tg_concurrency": TgConcurrency,
    "tg_wrapping_clock": TgWrappingClock,
    "tg_decision": TgDecision,
    "tg_table": TgTable,
    "tg_key": TgKey,
    "tg_window_quota": TgWindowQuota,
    "tg_table_stats": TgTableStats,
    "tg_bucket_pacer": TgBucketPacer,
    "tg_log_pacer": TgLogPacer,
    "tg_backoff": TgBackoff,
    "tg_retry_budget": TgRetryBudget,
    "tg_request_queue": TgRequestQueue,
    "tg_pace": TgPace,
    "tg_call_limit": TgCallLimit,
    "tg_next": TgNext,
    "tg_release": TgRelease,
    "tg_shared": TgShared,
    "tg_lease": TgLease,
    "tg_region_error": TgRegionError,
}

#: Structs whose fields are public (the others are ``uint64_t _private[TG_*_WORDS]``, or
#: incomplete: ``tg_table``).
PUBLIC_STRUCTS = (
    "tg_decision",
    "tg_key",
    "tg_window_quota",
    "tg_table_stats",
    "tg_pace",
    "tg_call_limit",
    "tg_next",
    "tg_release",
    "tg_lease",
    "tg_region_error",
)

#: Function pointer typedefs in the header → their ctypes types.
CALLBACKS = {"tg_read_counter": TgReadCounter}

_status = c_uint32  # tg_status: uint32_t in C before C23
_outcome = c_uint32  # tg_outcome
_check = c_int32  # a tg_outcome (>= 0) or a negated tg_status (< 0)
_u64 = c_uint64
_u32 = c_uint32
_P = POINTER

#: Every function the package calls: name → (restype, argtypes).
DECLARATIONS: dict[str, tuple[object, list[object]]] = {
    # version and status
    "tg_status_str": (c_char_p, [c_uint32]),
    "tg_version_number": (c_uint32, []),
    "tg_version_string": (c_char_p, []),
    # quota
    "tg_quota_init": (_status, [_P(TgQuota), _u64, _u64, _u64]),
    "tg_quota_init_min_span": (_status, [_P(TgQuota), _u64, _u64, _u64, _u64]),
    "tg_quota_init_approximate": (_status, [_P(TgQuota), _u64, _u64, _u64, _u64]),
    "tg_quota_exact_span": (_status, [_P(TgQuota), _P(_u64)]),
    "tg_quota_drain_ticks": (_status, [_P(TgQuota), _P(_u64)]),
    "tg_quota_is_exact": (_status, [_P(TgQuota), _P(c_bool)]),
    "tg_quota_params": (_status, [_P(TgQuota), _P(_u64), _P(_u64), _P(_u64)]),
    # leaky bucket
    "tg_bucket_init": (_status, [_P(TgBucket), _u64, _u64, _u64]),
    "tg_bucket_init_quota": (_status, [_P(TgBucket), _P(TgQuota)]),
    "tg_bucket_decide": (_status, [_P(TgBucket), _u64, _u64, _P(TgDecision)]),
    "tg_bucket_check": (_check, [_P(TgBucket), _u64, _u64]),
    "tg_bucket_peek": (_status, [_P(TgBucket), _u64, _u64, _P(TgDecision)]),
    "tg_bucket_is_drained": (_status, [_P(TgBucket), _u64, _P(c_bool)]),
    "tg_bucket_reset": (_status, [_P(TgBucket)]),
    "tg_bucket_set_quota": (_status, [_P(TgBucket), _P(TgQuota), _u64]),
    "tg_bucket_quota": (_status, [_P(TgBucket), _P(TgQuota)]),
    # fixed window
    "tg_window_init": (_status, [_P(TgWindow), _u64, _u64, _u64]),
    "tg_window_decide": (_status, [_P(TgWindow), _u64, _u64, _P(TgDecision)]),
    "tg_window_check": (_check, [_P(TgWindow), _u64, _u64]),
    "tg_window_peek": (_status, [_P(TgWindow), _u64, _u64, _P(TgDecision)]),
    "tg_window_is_drained": (_status, [_P(TgWindow), _u64, _P(c_bool)]),
    "tg_window_span": (_status, [_P(TgWindow), _P(_u64)]),
    "tg_window_reset": (_status, [_P(TgWindow)]),
    "tg_window_set_quota": (_status, [_P(TgWindow), _u64, _u64, _u64, _u64]),
    "tg_window_params": (_status, [_P(TgWindow), _P(_u64), _P(_u64), _P(_u64)]),
    # sliding log
    "tg_sliding_log_init": (_status, [_P(TgSlidingLog), _u64, _u64]),
    "tg_sliding_log_decide": (_status, [_P(TgSlidingLog), _u64, _u64, _P(TgDecision)]),
    "tg_sliding_log_check": (_check, [_P(TgSlidingLog), _u64, _u64]),
    "tg_sliding_log_peek": (_status, [_P(TgSlidingLog), _u64, _u64, _P(TgDecision)]),
    "tg_sliding_log_next_admit_time": (_status, [_P(TgSlidingLog), _u64, _u64, _P(_u64)]),
    "tg_sliding_log_used": (_status, [_P(TgSlidingLog), _u64, _P(_u64)]),
    "tg_sliding_log_reset": (_status, [_P(TgSlidingLog)]),
    # concurrency
    "tg_concurrency_init": (_status, [_P(TgConcurrency), _u32]),
    "tg_concurrency_acquire": (_status, [_P(TgConcurrency), _P(TgDecision)]),
    "tg_concurrency_release": (_status, [_P(TgConcurrency)]),
    "tg_concurrency_in_flight": (_status, [_P(TgConcurrency), _P(_u32), _P(_u32)]),
    # wrapping clock
    "tg_wrapping_clock_init": (_status, [_P(TgWrappingClock)]),
    "tg_wrapping_clock_now": (_status, [_P(TgWrappingClock), TgReadCounter, c_void_p, _P(_u64)]),
    "tg_wrapping_clock_last": (_status, [_P(TgWrappingClock), _P(_u64)]),
    # decisions and headers
    "tg_decision_shadow": (_status, [_P(TgDecision)]),
    "tg_outcome_http_status": (_status, [c_uint32, _P(c_uint16)]),
    "tg_header_shop_api_call_limit": (
        _status,
        [_P(TgDecision), c_char_p, c_size_t, _P(c_size_t)],
    ),
    "tg_header_retry_after_seconds": (_status, [_P(TgDecision), _u64, _P(_u64)]),
    "tg_header_retry_after": (
        _status,
        [_P(TgDecision), _u64, c_char_p, c_size_t, _P(c_size_t)],
    ),
    "tg_header_ratelimit": (
        _status,
        [_P(TgDecision), c_char_p, c_size_t, _u64, c_char_p, c_size_t, _P(c_size_t)],
    ),
    "tg_header_ratelimit_policy": (
        _status,
        [c_char_p, c_size_t, _u64, _u64, c_char_p, c_size_t, _P(c_size_t)],
    ),
    "tg_header_ratelimit_policy_bucket": (
        _status,
        [_P(TgQuota), c_char_p, c_size_t, _u64, c_char_p, c_size_t, _P(c_size_t)],
    ),
    "tg_header_ratelimit_policy_window": (
        _status,
        [_u64, _u64, c_char_p, c_size_t, _u64, c_char_p, c_size_t, _P(c_size_t)],
    ),
    # pagination
    "tg_pagination_check": (_status, [_u64, _u64, _u64, _P(_outcome)]),
    "tg_pagination_check_query": (_status, [c_char_p, c_size_t, _u64, _P(_outcome)]),
    # key table
    "tg_table_size": (c_size_t, [c_size_t, c_size_t]),
    "tg_table_align": (c_size_t, []),
    "tg_table_init_buckets": (
        _status,
        [c_void_p, c_size_t, c_size_t, _P(TgQuota), c_size_t, _u32, _u64, _u64, _P(_P(TgTable))],
    ),
    "tg_table_init_windows": (
        _status,
        [
            c_void_p,
            c_size_t,
            c_size_t,
            _P(TgWindowQuota),
            c_size_t,
            _u32,
            _u64,
            _u64,
            _P(_P(TgTable)),
        ],
    ),
    "tg_table_attach": (_status, [c_void_p, c_size_t, _P(_P(TgTable))]),
    "tg_table_decide": (_status, [_P(TgTable), TgKey, c_size_t, _u64, _u64, _P(TgDecision)]),
    "tg_table_peek": (_status, [_P(TgTable), TgKey, c_size_t, _u64, _u64, _P(TgDecision)]),
    "tg_table_check": (_check, [_P(TgTable), _u64, _u64, c_size_t, _u64, _u64, _P(TgDecision)]),
    "tg_table_peek_key": (_status, [_P(TgTable), _u64, _u64, c_size_t, _u64, _u64, _P(TgDecision)]),
    "tg_table_check_many": (
        _status,
        [_P(TgTable), _P(_u64), _P(_u64), c_size_t, c_size_t, _u64, _u64, _P(c_int32)],
    ),
    "tg_table_decide_many": (
        _status,
        [
            _P(TgTable),
            _P(_u64),
            _P(_u64),
            c_size_t,
            c_size_t,
            _u64,
            _u64,
            _P(TgDecision),
            _P(c_int32),
        ],
    ),
    "tg_table_get_stats": (_status, [_P(TgTable), _P(TgTableStats)]),
    "tg_table_probe_len": (_status, [_P(TgTable), TgKey, _P(c_size_t)]),
    "tg_key_pair": (TgKey, [_u64, _u64]),
    "tg_key_triple": (TgKey, [_u32, _u64, _u32]),
    "tg_table_key_bytes": (_status, [_P(TgTable), _P(c_uint8), c_size_t, _P(TgKey)]),
    "tg_table_key_parts": (_status, [_P(TgTable), _P(_u64), c_size_t, _P(TgKey)]),
    "tg_table_key_triple": (_status, [_P(TgTable), _u64, _u64, _u64, _P(TgKey)]),
    "tg_seed_random": (_status, [_P(_u64)]),
    # client toolkit: pacers
    "tg_bucket_pacer_init": (_status, [_P(TgBucketPacer), _u64, _u64, _u64, _u64]),
    "tg_bucket_pacer_next_send": (_status, [_P(TgBucketPacer), _u64, _u64, _P(_u64)]),
    "tg_bucket_pacer_acquire": (_status, [_P(TgBucketPacer), _u64, _u64, _P(TgPace)]),
    "tg_bucket_pacer_reserve": (_status, [_P(TgBucketPacer), _u64, _u64, _P(_u64)]),
    "tg_bucket_pacer_observe_call_limit": (_status, [_P(TgBucketPacer), _u64, _u64, _u64]),
    "tg_bucket_pacer_block_until": (_status, [_P(TgBucketPacer), _u64]),
    "tg_bucket_pacer_sync": (
        _status,
        [_P(TgBucketPacer), _u64, _u64, _u64, _u64, c_char_p, c_size_t, c_char_p, c_size_t],
    ),
    "tg_log_pacer_init": (_status, [_P(TgLogPacer), _u64, _u64, _u64]),
    "tg_log_pacer_next_send": (_status, [_P(TgLogPacer), _u64, _u64, _P(_u64)]),
    "tg_log_pacer_acquire": (_status, [_P(TgLogPacer), _u64, _u64, _P(TgPace)]),
    "tg_log_pacer_reserve": (_status, [_P(TgLogPacer), _u64, _u64, _P(_u64)]),
    "tg_log_pacer_observe_call_limit": (_status, [_P(TgLogPacer), _u64, _u64, _u64]),
    "tg_log_pacer_block_until": (_status, [_P(TgLogPacer), _u64]),
    "tg_log_pacer_sync": (
        _status,
        [_P(TgLogPacer), _u64, _u64, _u64, _u64, c_char_p, c_size_t, c_char_p, c_size_t],
    ),
    # client toolkit: parsers, backoff, budget, retry classification
    "tg_call_limit_parse": (_status, [c_char_p, c_size_t, _P(TgCallLimit)]),
    "tg_retry_after_parse": (_status, [c_char_p, c_size_t, _u64, _P(_u64)]),
    "tg_backoff_init": (_status, [_P(TgBackoff), _u64, _u64, _u32, _u32, _u64]),
    "tg_backoff_next_delay": (_status, [_P(TgBackoff), _u64, _P(c_bool), _P(_u64)]),
    "tg_backoff_retries": (_status, [_P(TgBackoff), _P(_u32)]),
    "tg_backoff_reset": (_status, [_P(TgBackoff)]),
    "tg_retry_budget_init": (_status, [_P(TgRetryBudget), _u64, _u32, _u64]),
    "tg_retry_budget_record_success": (_status, [_P(TgRetryBudget), _u64]),
    "tg_retry_budget_available": (_status, [_P(TgRetryBudget), _u64, _P(_u64)]),
    "tg_retry_budget_try_retry": (_status, [_P(TgRetryBudget), _u64, _P(c_bool)]),
    "tg_retry_class_of_status": (_status, [_u32, _P(_u32)]),
    "tg_retry_class_of_outcome": (_status, [_u32, _P(_u32)]),
    "tg_retry_class_of_transport_error": (_status, [_P(_u32)]),
    "tg_retry_next_step": (
        _status,
        [_u32, _u64, _u64, _P(TgBackoff), _P(TgRetryBudget), _P(TgNext)],
    ),
    # client toolkit: request queue
    "tg_request_queue_init": (_status, [_P(TgRequestQueue)]),
    "tg_request_queue_push": (_status, [_P(TgRequestQueue), _u64]),
    "tg_request_queue_pop": (_status, [_P(TgRequestQueue), _P(c_bool), _P(_u64)]),
    "tg_request_queue_len": (_status, [_P(TgRequestQueue), _P(c_size_t)]),
    "tg_request_queue_release_bucket": (
        _status,
        [_P(TgRequestQueue), _P(TgBucketPacer), _u64, _P(TgRelease)],
    ),
    "tg_request_queue_release_log": (
        _status,
        [_P(TgRequestQueue), _P(TgLogPacer), _u64, _P(TgRelease)],
    ),
    # shared regions
    "tg_shared_open_bucket": (
        _status,
        [_P(TgShared), c_char_p, _P(TgQuota), _u32, _u32, _P(TgRegionError)],
    ),
    "tg_shared_open_window": (
        _status,
        [_P(TgShared), c_char_p, _u64, _u64, _u64, _u32, _u32, _P(TgRegionError)],
    ),
    "tg_shared_open_log": (
        _status,
        [_P(TgShared), c_char_p, _u64, _u64, _u32, _u32, _P(TgRegionError)],
    ),
    "tg_shared_open_leases": (
        _status,
        [_P(TgShared), c_char_p, _u32, _u64, _u32, _u32, _P(TgRegionError)],
    ),
    "tg_shared_open_bucket_table": (
        _status,
        [
            _P(TgShared),
            c_char_p,
            c_size_t,
            _P(TgQuota),
            c_size_t,
            _u32,
            _P(_u64),
            _u32,
            _u32,
            _P(TgRegionError),
        ],
    ),
    "tg_shared_open_window_table": (
        _status,
        [
            _P(TgShared),
            c_char_p,
            c_size_t,
            _P(TgWindowQuota),
            c_size_t,
            _u32,
            _P(_u64),
            _u32,
            _u32,
            _P(TgRegionError),
        ],
    ),
    "tg_shared_table": (_status, [_P(TgShared), _P(_P(TgTable))]),
    "tg_shared_close": (_status, [_P(TgShared)]),
    "tg_shared_decide": (_status, [_P(TgShared), _u64, _u64, _P(TgDecision)]),
    "tg_shared_peek": (_status, [_P(TgShared), _u64, _u64, _P(TgDecision)]),
    "tg_shared_reset": (_status, [_P(TgShared)]),
    "tg_shared_created": (_status, [_P(TgShared), _P(c_bool)]),
    "tg_shared_acquire": (_status, [_P(TgShared), _u64, _u64, _P(TgDecision), _P(TgLease)]),
    "tg_shared_release": (_status, [_P(TgShared), _P(TgLease)]),
    "tg_shared_renew": (_status, [_P(TgShared), _P(TgLease), _u64, _u64]),
    "tg_shared_in_flight": (_status, [_P(TgShared), _u64, _P(_u32)]),
    # presets
    "tg_preset_shopbase_quota": (_status, [_u64, _P(TgQuota)]),
    "tg_preset_shopbase_bucket_init": (_status, [_P(TgBucket), _u64]),
    "tg_preset_tiktok_shop_window_init": (_status, [_P(TgWindow), _u64]),
    "tg_preset_tiktok_shop_client_log_init": (_status, [_P(TgSlidingLog), _u64, _u64]),
}


def _library_file_names() -> list[str]:
    if sys.platform == "win32":
        return ["tollgate.dll"]
    if sys.platform == "darwin":
        return ["libtollgate.dylib"]
    return ["libtollgate.so"]


def _workspace_root(start: Path) -> Path | None:
    """The nearest ancestor holding a Cargo workspace with the ffi crate (a source checkout)."""
    for parent in [start, *start.parents]:
        if (parent / "Cargo.toml").is_file() and (parent / "ffi" / "Cargo.toml").is_file():
            return parent
    return None


def candidate_paths() -> list[tuple[str, Path]]:
    """Where the library is looked for, in order, with a label for each place."""
    names = _library_file_names()
    here = Path(__file__).resolve().parent
    places: list[tuple[str, Path]] = [("inside the package", here / n) for n in names]
    root = _workspace_root(here)
    target_dirs: list[Path] = []
    if os.environ.get("CARGO_TARGET_DIR"):
        target_dirs.append(Path(os.environ["CARGO_TARGET_DIR"]))
    if root is not None:
        target_dirs.append(root / "target")
    for target in target_dirs:
        for profile in ("release", "debug"):
            places += [("cargo target directory", target / profile / n) for n in names]
    return places


def find_library() -> Path:
    """The library to load: ``TOLLGATE_LIB``, else the package's copy, else a cargo build."""
    env = os.environ.get("TOLLGATE_LIB")
    if env:
        path = Path(env)
        if path.is_dir():
            for name in _library_file_names():
                if (path / name).is_file():
                    return path / name
        elif path.is_file():
            return path
        raise LibraryNotFoundError(
            f"TOLLGATE_LIB={env!r} is set but names no library file "
            f"(expected a file, or a directory holding {' or '.join(_library_file_names())})"
        )
    places = candidate_paths()
    for _label, path in places:
        if path.is_file():
            return path
    looked = "\n".join(f"  - {path} ({label})" for label, path in places)
    raise LibraryNotFoundError(
        "cannot find libtollgate. Looked in TOLLGATE_LIB (not set) and:\n"
        f"{looked}\n"
        "Install the package with `pip install ./python` (it builds the library), set "
        "TOLLGATE_LIB to the library file, or run `cargo build -p tollgate-ffi --release`."
    )


def load(path: Path) -> ctypes.CDLL:
    """Loads the library at ``path`` and declares every function in ``DECLARATIONS``."""
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise LibraryNotFoundError(f"cannot load libtollgate from {path}: {exc}") from exc
    # Shared regions exist on Unix only.
    optional = () if os.name == "posix" else tuple(n for n in DECLARATIONS if "_shared_" in n)
    missing = [n for n in DECLARATIONS if not hasattr(lib, n) and n not in optional]
    if missing:
        raise LibraryNotFoundError(
            f"{path} lacks {len(missing)} function(s) this package needs ({', '.join(missing)}): "
            "it is an older or different build of libtollgate"
        )
    for name, (restype, argtypes) in DECLARATIONS.items():
        if name in optional and not hasattr(lib, name):
            continue
        func = getattr(lib, name)
        func.restype = restype
        func.argtypes = argtypes
    version = lib.tg_version_number()
    if version // 10000 != ABI_MAJOR or (version // 100) % 100 != ABI_MINOR:
        raise LibraryNotFoundError(
            f"{path} is libtollgate {lib.tg_version_string().decode()}, but this package needs "
            f"{ABI_MAJOR}.{ABI_MINOR}.x"
        )
    return lib


#: The path the library was loaded from.
LIBRARY_PATH = find_library()
#: The loaded library, every function declared.
lib = load(LIBRARY_PATH)
