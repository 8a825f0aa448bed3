"""Real servers in child processes, on a socket bound here to 127.0.0.1 (no port races)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps"


@contextmanager
def serve(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    ready: str = "/_ready",
    timeout: float = 30.0,
) -> Iterator[str]:
    """Runs ``argv`` with ``{fd}`` replaced by a listening socket's descriptor; yields the base
    URL once ``ready`` answers, stops the server (SIGTERM, then SIGKILL) on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(APPS), os.environ.get("PYTHONPATH", "")) if p
    )
    child_env.update(env or {})
    args = [a.replace("{fd}", str(sock.fileno())) for a in argv]
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], env=child_env, cwd=str(APPS), pass_fds=[sock.fileno()]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {argv}")
            try:
                with urllib.request.urlopen(base + ready, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.close()


def uvicorn(app: str, env: dict[str, str] | None = None, ready: str = "/_stats"):
    """``python -m uvicorn app`` on the socket, one process."""
    return serve(
        ["uvicorn", app, "--fd", "{fd}", "--log-level", "warning", "--no-access-log"],
        env,
        ready=ready,
    )


def gunicorn(app: str, workers: int, env: dict[str, str] | None = None, ready: str = "/_ready"):
    """``python -m gunicorn app`` on the socket with ``workers`` processes of 4 threads."""
    return serve(
        [
            "gunicorn",
            app,
            "--bind",
            "fd://{fd}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        env,
        ready=ready,
    )
