"""Finding libtollgate: TOLLGATE_LIB, then inside the package, then the cargo target directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tollgate
from tollgate import _ffi

from conftest import REPO

PACKAGE = Path(tollgate.__file__).resolve().parent


def run_import(
    code: str, env_extra: dict[str, str], pythonpath: Path | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TOLLGATE_LIB", "CARGO_TARGET_DIR")}
    env.update(env_extra)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/", timeout=60
    )


@pytest.mark.skipif(
    os.environ.get("TOLLGATE_EXPECT_INSTALLED") != "1", reason="only for the installed package"
)
def test_installed_package_carries_its_library() -> None:
    assert not PACKAGE.is_relative_to(REPO / "python"), PACKAGE
    assert "TOLLGATE_LIB" not in os.environ
    assert tollgate.LIBRARY_PATH.parent == PACKAGE
    assert tollgate.LIBRARY_PATH.name == "libtollgate.so"


def test_tollgate_lib_wins(tmp_path: Path) -> None:
    copy = tmp_path / "custom" / "libtollgate.so"
    copy.parent.mkdir()
    shutil.copy2(tollgate.LIBRARY_PATH, copy)
    code = "import tollgate; print(tollgate.LIBRARY_PATH)"
    for value in (str(copy), str(copy.parent)):
        out = run_import(code, {"TOLLGATE_LIB": value}, PACKAGE.parent)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == str(copy)


def test_a_bad_tollgate_lib_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.so"
    out = run_import("import tollgate", {"TOLLGATE_LIB": str(missing)}, PACKAGE.parent)
    assert out.returncode != 0
    assert "LibraryNotFoundError" in out.stderr and str(missing) in out.stderr
    garbage = tmp_path / "libtollgate.so"
    garbage.write_bytes(b"not a library")
    out = run_import("import tollgate", {"TOLLGATE_LIB": str(garbage)}, PACKAGE.parent)
    assert out.returncode != 0
    assert "cannot load libtollgate from" in out.stderr and str(garbage) in out.stderr


def test_no_library_anywhere_lists_where_it_looked(tmp_path: Path) -> None:
    # A copy of the package with no library inside and no cargo workspace above it.
    pkg = tmp_path / "site" / "tollgate"
    shutil.copytree(
        PACKAGE, pkg, ignore=shutil.ignore_patterns("*.so", "*.dylib", "*.dll", "__pycache__")
    )
    out = run_import("import tollgate", {}, pkg.parent)
    assert out.returncode != 0
    assert "cannot find libtollgate" in out.stderr
    assert "TOLLGATE_LIB (not set)" in out.stderr
    assert str(pkg / "libtollgate.so") in out.stderr
    assert "pip install ./python" in out.stderr


def test_workspace_target_directory_is_the_last_resort(tmp_path: Path) -> None:
    # A package copy without a library inside a fake workspace whose target/release holds one.
    ws = tmp_path / "ws"
    (ws / "ffi").mkdir(parents=True)
    (ws / "Cargo.toml").write_text("[workspace]\n")
    (ws / "ffi" / "Cargo.toml").write_text("[package]\n")
    (ws / "target" / "release").mkdir(parents=True)
    shutil.copy2(tollgate.LIBRARY_PATH, ws / "target" / "release" / "libtollgate.so")
    pkg = ws / "python" / "tollgate"
    shutil.copytree(
        PACKAGE, pkg, ignore=shutil.ignore_patterns("*.so", "*.dylib", "*.dll", "__pycache__")
    )
    out = run_import("import tollgate; print(tollgate.LIBRARY_PATH)", {}, pkg.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(ws / "target" / "release" / "libtollgate.so")
    # CARGO_TARGET_DIR is looked at first
    other = tmp_path / "elsewhere"
    (other / "release").mkdir(parents=True)
    shutil.copy2(tollgate.LIBRARY_PATH, other / "release" / "libtollgate.so")
    out = run_import(
        "import tollgate; print(tollgate.LIBRARY_PATH)",
        {"CARGO_TARGET_DIR": str(other)},
        pkg.parent,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(other / "release" / "libtollgate.so")


def test_candidate_order() -> None:
    labels = [label for label, _ in _ffi.candidate_paths()]
    assert labels[0] == "inside the package"
    assert all(label == "cargo target directory" for label in labels[1:])
