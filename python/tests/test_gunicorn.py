"""gunicorn with several pre-forked workers behind one shared limit: a fresh key gets exactly
the burst across all workers, then the drain rate."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
WORKERS = 4

if os.environ.get("TOLLGATE_REQUIRE_GUNICORN") != "1":
    pytest.importorskip("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, shop: int) -> tuple[int, str, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"X-App-Id": "1", "X-Shop-Id": str(shop)})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-Worker") or "", resp.getheader("Retry-After")
    finally:
        conn.close()


@pytest.fixture(params=["gunicorn_app:app", "gunicorn_generic_app:app"])
def server(tmp_path: Path, request: pytest.FixtureRequest):
    """gunicorn serving the stdlib WSGI middleware (tollgate.wsgi) or the generic one
    (tollgate.middleware), over one SharedKeys directory and one shared key table."""
    port = free_port()
    env = dict(os.environ, TOLLGATE_TEST_KEYS_DIR=str(tmp_path / "keys"))
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind",
            f"127.0.0.1:{port}", "--chdir", str(HERE), "--log-level", "warning",
            request.param,
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(port, 0)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_one_limit_across_gunicorn_workers(server: int) -> None:
    port, shop = server, 4242
    # The burst: 90 requests from 12 threads at once, spread over the workers.
    start = time.monotonic()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: get(port, shop), range(90)))
    burst_end = time.monotonic()
    admitted = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] == 429]
    assert len(admitted) + len(refused) == 90
    # Exactly the burst, plus what drained (2 per second) while the requests were made.
    drained = int(2 * (burst_end - start))
    assert 30 <= len(admitted) <= 30 + drained, (len(admitted), burst_end - start)
    assert all(r[2] is not None for r in refused)  # Retry-After on every 429
    workers = {a[1] for a in admitted}
    print(f"burst: {len(admitted)} of 90 admitted in {burst_end - start:.2f} s by {len(workers)} workers")
    assert len(workers) >= 2, "the requests all went to one worker"
    # Then the drain rate: 3 s of requests every 50 ms admit 2 per second.
    phase_start = time.monotonic()
    later = []
    while time.monotonic() - phase_start < 3.0:
        later.append(get(port, shop))
        time.sleep(0.05)
    phase_end = time.monotonic()
    passed = sum(a[0] == 200 for a in later)
    print(f"drain: {passed} admitted in {phase_end - phase_start:.2f} s at 2 per second")
    # At least what drained during the phase (the last token may still be unspent); at most
    # what the quota allows over the whole run: 30 + 2 per second since the first request.
    assert passed >= int(2 * (phase_end - phase_start)) - 1, passed
    assert len(admitted) + passed <= 30 + int(2 * (phase_end - start)), passed
    # Another key is untouched by all this.
    assert get(port, shop + 1)[0] == 200
