"""Worker processes for the shared-pacer tests: each makes its own ``Pacing(shared=...)`` (as a
gunicorn or Celery worker would) and calls the fake vendor with ``requests`` from threads."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from tollgate.client import Pace
from tollgate.http import PacerLike, Pacing, SharedPacers, Vendor, shopbase, tiktok_shop
from tollgate.http.requests import PacedSession


def vendor_of(name: str) -> Vendor:
    # TikTok Shop with the margin of the single-process throughput test (see test_clients.py).
    return shopbase() if name == "shopbase" else tiktok_shop(jitter=0.1)


class _Recording:
    """A shared pacer that notes the times of its SENDs in this process."""

    def __init__(self, inner: PacerLike, sends: list[int]) -> None:
        self.inner, self.sends = inner, sends

    def acquire(self, cost: int = 1, now: int | None = None) -> Pace:
        pace = self.inner.acquire(cost, now)
        if pace.send and pace.at is not None:
            self.sends.append(pace.at)
        return pace

    def sync(self, sent_at: int, **headers: Any) -> None:
        self.inner.sync(sent_at, **headers)


def drive(
    vendor_name: str,
    directory: str,
    url: str,
    headers: dict[str, str],
    threads: int,
    seconds: float,
    ready: Any,
    go: Any,
    results: Any,
    calls: int = 0,
) -> None:
    """Reports ``ready``, waits for ``go``, then calls ``url`` from ``threads`` threads for
    ``seconds`` (or ``calls`` times each, if given); puts (send times, statuses, call-limit
    headers seen) on ``results``."""
    sends: list[int] = []
    shared = SharedPacers(directory, vendor_of(vendor_name))
    pacing = Pacing(shared.vendor, pacer_factory=lambda key: _Recording(shared(key), sends))
    statuses: Counter[int] = Counter()
    seen: list[str] = []
    lock = threading.Lock()
    sessions = [PacedSession(pacing=pacing) for _ in range(threads)]
    ready.put(True)
    go.wait()
    deadline = time.monotonic() + seconds

    def worker(session: PacedSession) -> None:
        n = 0
        while (n < calls) if calls else (time.monotonic() < deadline):
            n += 1
            r = session.get(url, headers=headers, timeout=10)
            with lock:
                statuses[r.status_code] += 1
                seen.append(r.headers.get("X-Sb-Shop-Api-Call-Limit", ""))

    pool = [threading.Thread(target=worker, args=(s,)) for s in sessions]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put((sends, dict(statuses), seen))
