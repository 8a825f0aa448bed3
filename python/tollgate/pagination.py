"""The deep-pagination rule (docs/semantics.md#deep-pagination): ``limit × page`` above a maximum offset is Never (429)."""

from __future__ import annotations

import ctypes

from ._ffi import lib
from ._util import check, text_bytes, u64
from .decision import Outcome

#: ShopBase's maximum offset.
DEFAULT_MAX_OFFSET = 100_000


def check_offset(limit: int, page: int, max_offset: int = DEFAULT_MAX_OFFSET) -> Outcome:
    """``Outcome.NEVER`` if ``limit × page > max_offset`` (exact, no wrapping), else ALLOWED."""
    out = ctypes.c_uint32()
    status = lib.tg_pagination_check(
        u64("limit", limit), u64("page", page), u64("max_offset", max_offset), ctypes.byref(out)
    )
    check(status, "tg_pagination_check")
    return Outcome(out.value)


def check_query(query: str | bytes, max_offset: int = DEFAULT_MAX_OFFSET) -> Outcome:
    """The rule on a URL query string (``limit=250&page=401``, no ``?``).

    A missing ``limit`` or ``page`` is allowed; a value that is not a decimal u64 raises
    :class:`~tollgate.MalformedError` (a gateway answers 400).
    """
    q = text_bytes("query", query)
    out = ctypes.c_uint32()
    status = lib.tg_pagination_check_query(
        q, len(q), u64("max_offset", max_offset), ctypes.byref(out)
    )
    check(status, "tg_pagination_check_query")
    return Outcome(out.value)
