"""Header values (docs/semantics.md#header-values), formatted by the library."""

from __future__ import annotations

import pytest

import tollgate as tg
from tollgate import Decision, Outcome, headers

from conftest import SECOND


def limited(retry: int | None, reset: int = 0, outcome: Outcome = Outcome.LIMITED) -> Decision:
    return Decision(outcome, outcome, 30, 30, 0, retry, reset, 0)


def test_retry_after_rounds_up_and_is_never_zero_for_a_denial() -> None:
    assert headers.retry_after(limited(SECOND // 2)) == "1"
    assert headers.retry_after(limited(SECOND + 1)) == "2"
    assert headers.retry_after(limited(0)) == "1"
    assert headers.retry_after_seconds(limited(3 * SECOND)) == 3
    allowed = Decision(Outcome.ALLOWED, Outcome.ALLOWED, 30, 1, 29, 0, 0, 0)
    assert headers.retry_after(allowed) == ""
    assert headers.retry_after(limited(None, outcome=Outcome.NEVER)) == ""  # retrying cannot help
    assert headers.retry_after(limited(None, outcome=Outcome.OVERLOADED)) == "1"
    with pytest.raises(tg.InvalidArgumentError):
        headers.retry_after(limited(1), 0)


def test_ratelimit_fields() -> None:
    d = Decision(Outcome.ALLOWED, Outcome.ALLOWED, 30, 22, 8, 0, 11 * SECOND - 1, 0)
    assert headers.shop_api_call_limit(d) == "22/30"
    assert headers.ratelimit(d, "shopbase") == '"shopbase";r=8;t=11'
    assert headers.ratelimit_policy("api", 50, 1) == '"api";q=50;w=1'
    assert headers.ratelimit_policy_window(50, SECOND, "tiktok") == '"tiktok";q=50;w=1'
    assert (
        headers.ratelimit_policy_bucket(tg.Quota(30, 2, SECOND), "shopbase")
        == '"shopbase";q=30;w=15'
    )
    assert headers.for_decision(d, name="shopbase") == {
        "X-Sb-Shop-Api-Call-Limit": "22/30",
        "RateLimit": '"shopbase";r=8;t=11',
    }


def test_long_names_grow_the_buffer_and_bad_names_are_refused() -> None:
    name = "n" * 500
    d = limited(SECOND)
    assert headers.ratelimit(d, name) == f'"{name}";r=0;t=0'
    assert (
        headers.ratelimit_policy(name, 2**64 - 1, 2**64 - 1)
        == f'"{name}";q={2**64 - 1};w={2**64 - 1}'
    )
    with pytest.raises(tg.InvalidArgumentError, match="TG_STATUS_INVALID_ARGUMENT"):
        headers.ratelimit(d, 'a"b')
    with pytest.raises(tg.InvalidArgumentError, match="ASCII"):
        headers.ratelimit(d, "café")
    with pytest.raises(tg.ArgumentTypeError):
        headers.ratelimit(d, 5)  # type: ignore[arg-type]


def test_decisions_are_checked_before_c() -> None:
    with pytest.raises(tg.InvalidArgumentError, match="used"):
        headers.shop_api_call_limit(Decision(Outcome.ALLOWED, Outcome.ALLOWED, 1, -1, 0, 0, 0, 0))
    with pytest.raises(tg.ArgumentTypeError):
        headers.shop_api_call_limit((0, 0, 1, 1, 0, 0, 0, 0))  # type: ignore[arg-type]
    with pytest.raises(tg.InvalidArgumentError, match="TG_STATUS_INVALID_ARGUMENT"):
        headers.shop_api_call_limit(Decision(9, 9, 1, 1, 0, 0, 0, 0))  # type: ignore[arg-type]
