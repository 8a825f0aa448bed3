"""The web suite: real servers (uvicorn, gunicorn) and real clients (requests, httpx)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
