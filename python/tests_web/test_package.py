"""The installed package: its web modules import no framework or HTTP library by themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tollgate

THIRD_PARTY = {"fastapi", "starlette", "flask", "werkzeug", "django", "requests", "httpx", "anyio"}


def test_core_web_modules_need_no_third_party_import() -> None:
    code = (
        "import sys, json\n"
        "import tollgate.middleware, tollgate.middleware.asgi, tollgate.middleware.wsgi\n"
        "import tollgate.middleware.flask, tollgate.middleware.django, tollgate.http\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & THIRD_PARTY, loaded & THIRD_PARTY


def test_the_installed_package_is_tested() -> None:
    if os.environ.get("TOLLGATE_EXPECT_INSTALLED"):
        package = Path(tollgate.__file__).resolve().parent
        assert "site-packages" in package.parts, package
        assert (package / "middleware" / "asgi.py").is_file()
        assert (package / "http" / "httpx.py").is_file()
        assert (package / "py.typed").is_file()
