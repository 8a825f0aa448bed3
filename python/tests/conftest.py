"""Shared fixtures: the repository's header, and the installed-package check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEADER = REPO / "include" / "tollgate.h"

SECOND = 1_000_000_000


@pytest.fixture(scope="session")
def header_text() -> str:
    return HEADER.read_text()


def pytest_report_header(config: object) -> list[str]:
    import tollgate

    return [
        f"tollgate package: {Path(tollgate.__file__).parent}",
        f"libtollgate: {tollgate.LIBRARY_PATH} (TOLLGATE_LIB={os.environ.get('TOLLGATE_LIB')!r})",
    ]
