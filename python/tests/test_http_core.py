"""The paced-client engine without an HTTP library: keys, sync, classification, retries."""

from __future__ import annotations

import threading

import pytest

from tollgate.client import BucketPacer, Pace, PaceAction
from tollgate.http import NeverError, Pacing, Retry, Vendor, key_from_query, shopbase, tiktok_shop

SB = "https://shop42.example/admin/orders.json"
SB_IDS = {"X-App-Id": "7", "X-Shop-Id": "42"}


def test_vendor_keys() -> None:
    sb = shopbase()
    assert sb.key("GET", SB, SB_IDS) == ("shop42.example", "7", "42")
    assert sb.key("GET", SB, {"x-app-id": "7"}) == ("shop42.example", "7", None)
    tt = tiktok_shop()
    url = "https://api.example/product/202309/products/search?app_key=a&shop_cipher=c&x=1"
    assert tt.key("POST", url, {}) == ("api.example", "a", "c", "/product/202309/products/search")
    url2 = "https://api.example/orders?app_key=a&shop_id=9"
    assert tt.key("GET", url2, {}) == ("api.example", "a", "9", "/orders")
    assert key_from_query("a", path=False, host=False)("GET", "http://h/p?a=1", {}) == ("1",)


def test_pacers_are_per_key_and_shared() -> None:
    pacing = Pacing(shopbase())
    got: list = []
    threads = [
        threading.Thread(target=lambda: got.append(pacing.call("GET", SB, SB_IDS).pacer))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(p) for p in got}) == 1 and len(pacing) == 1
    other = pacing.call("GET", SB, {"X-App-Id": "7", "X-Shop-Id": "43"}).pacer
    assert other is not got[0] and len(pacing) == 2


def test_shopbase_mirror_and_call_limit_sync() -> None:
    pacing = Pacing(shopbase())  # jitter 0.2 s: a mirror of 29
    calls = [pacing.call("GET", SB, SB_IDS) for _ in range(30)]
    assert [c.ready() for c in calls[:29]] == [None] * 29
    wait = calls[29].ready()
    assert wait is not None and 0.4 < wait <= 0.51
    # A fresh mirror told by the server that 30 of 30 are used waits too.
    pacing = Pacing(shopbase(jitter=0))
    call = pacing.call("GET", SB, SB_IDS)
    assert call.ready() is None
    assert call.answered(200, {"X-Sb-Shop-Api-Call-Limit": "30/30"}) is None
    wait = pacing.call("GET", SB, SB_IDS).ready()
    assert wait is not None and 0.4 < wait <= 0.51
    # A garbled header is ignored, not raised.
    call = pacing.call("GET", SB, {"X-App-Id": "1", "X-Shop-Id": "1"})
    assert call.ready() is None
    assert call.answered(200, {"X-Sb-Shop-Api-Call-Limit": "lots"}) is None


def test_429_with_retry_after_holds_the_key_back() -> None:
    pacing = Pacing(shopbase(jitter=0), retry=Retry(base=0.001, cap=0.01))
    call = pacing.call("GET", SB, SB_IDS)
    assert call.ready() is None
    delay = call.answered(429, {"Retry-After": "2"})
    assert delay is not None and 1.9 < delay <= 2.0  # never sooner than Retry-After
    wait = pacing.call("GET", SB, SB_IDS).ready()  # every call of the key waits
    assert wait is not None and 1.9 < wait <= 2.01
    assert pacing.stats.retries == 1 and pacing.stats.statuses[429] == 1


def test_classification() -> None:
    pacing = Pacing(
        tiktok_shop(), retry=Retry(base=0.001, cap=0.01, extra_statuses=frozenset({502}))
    )
    url = "https://api.example/x?app_key=a&shop_id=1"

    def answer(method: str, status: int, headers: dict | None = None):
        call = pacing.call(method, url, {})
        assert call.ready() is None
        return call.answered(status, headers or {})

    assert answer("GET", 200) is None
    assert answer("GET", 304) is None
    assert answer("GET", 429) is None  # no Retry-After: Never, not retried
    assert answer("GET", 404) is None
    assert answer("GET", 500) is None  # fatal
    assert answer("GET", 503) is not None
    assert answer("POST", 503) is not None  # refused before processing: any method
    assert answer("GET", 502) is not None  # an extra status, idempotent method
    assert answer("POST", 502) is None
    assert answer("GET", 429, {"Retry-After": "0"}) is not None
    assert pacing.stats.retries == 4 and pacing.stats.gave_up == 0

    get, post = pacing.call("GET", url, {}), pacing.call("POST", url, {})
    assert get.ready() is None and post.ready() is None
    assert get.failed() is not None
    assert post.failed() is None  # may have reached the server: not retried
    lenient = Pacing(tiktok_shop(), retry=Retry(base=0.001, retry_non_idempotent=True))
    call = lenient.call("POST", url, {})
    assert call.ready() is None and call.failed() is not None


def test_attempts_and_budget_run_out() -> None:
    pacing = Pacing(tiktok_shop(), retry=Retry(max_retries=2, base=0.001, cap=0.002))
    call = pacing.call("GET", "https://h/x?app_key=a&shop_id=1", {})
    assert [call.answered(503, {}) is not None for _ in range(3)] == [True, True, False]
    assert pacing.stats.gave_up == 1
    # A budget of 2 retries per window and nothing earned from successes.
    stingy = Pacing(
        tiktok_shop(), retry=Retry(base=0.001, cap=0.002, budget_per_mille=0, budget_floor=2)
    )
    results = [
        stingy.call("GET", "https://h/x?app_key=a&shop_id=1", {}).answered(503, {}) is not None
        for _ in range(4)
    ]
    assert results == [True, True, False, False]
    assert stingy.stats.gave_up == 2


def test_never_pace_and_custom_factory() -> None:
    class Never:
        def acquire(self, cost: int = 1, now: int | None = None) -> Pace:
            return Pace(PaceAction.NEVER, None)

        def sync(self, sent_at: int, **headers: object) -> None:
            pass

    made: list = []

    def factory(key: object) -> BucketPacer | Never:
        made.append(key)
        return Never()

    pacing = Pacing(Vendor("x", Never, lambda m, u, h: u), pacer_factory=factory)
    with pytest.raises(NeverError):
        pacing.call("GET", "http://h/a", {}).ready()
    assert made == ["http://h/a"]
