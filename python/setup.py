"""Build step: compile libtollgate with cargo and place it inside the package.

`pip install ./python` runs this in the source checkout (pip builds in-tree). It runs
`cargo build -p tollgate-ffi --release --locked` on the workspace one directory up, reads the
cdylib's path from cargo's JSON messages (so CARGO_TARGET_DIR is honoured, and an already-built
library in the workspace's `target/` is reused), and copies it next to `tollgate/__init__.py`.
The wheel is tagged for the platform but not for a Python ABI: ctypes needs no extension module.

Environment: CARGO (the cargo to run; default: `cargo` on PATH or in ~/.cargo/bin),
CARGO_TARGET_DIR (cargo's own), TOLLGATE_CARGO_PROFILE (`release` by default).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent


def _cargo() -> str:
    if os.environ.get("CARGO"):
        return os.environ["CARGO"]
    found = shutil.which("cargo")
    if found:
        return found
    home = Path.home() / ".cargo" / "bin" / "cargo"
    if home.is_file():
        return str(home)
    raise SystemExit(
        "tollgate: cargo not found (looked at $CARGO, PATH and ~/.cargo/bin). Install Rust with "
        "rustup (https://rustup.rs): the package builds libtollgate from source."
    )


def build_library() -> Path:
    """Runs cargo and returns the path of the built shared library."""
    manifest = WORKSPACE / "Cargo.toml"
    if not (WORKSPACE / "ffi" / "Cargo.toml").is_file():
        raise SystemExit(
            f"tollgate: no Rust workspace at {WORKSPACE} (expected ffi/Cargo.toml). Build from "
            "a checkout of the repository: `pip install ./python`."
        )
    profile = os.environ.get("TOLLGATE_CARGO_PROFILE", "release")
    cmd = [
        _cargo(),
        "build",
        "--manifest-path",
        str(manifest),
        "-p",
        "tollgate-ffi",
        "--locked",
        "--message-format=json-render-diagnostics",
        "--profile",
        profile,
    ]
    print("tollgate: " + " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=WORKSPACE, stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"tollgate: cargo failed (exit {proc.returncode}); see the output above")
    suffix = {"win32": ".dll", "darwin": ".dylib"}.get(sys.platform, ".so")
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        if "cdylib" not in msg.get("target", {}).get("kind", []):
            continue
        for name in msg.get("filenames", []):
            if name.endswith(suffix):
                return Path(name)
    raise SystemExit("tollgate: cargo reported no cdylib for tollgate-ffi")


class BuildPyWithLibrary(build_py):
    """build_py, then the Rust library copied into the built package."""

    def run(self) -> None:
        super().run()
        library = build_library()
        dest = Path(self.build_lib) / "tollgate" / library.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, dest)
        print(f"tollgate: {library} -> {dest}", file=sys.stderr, flush=True)


class PlatformWheel(bdist_wheel):
    """A platform wheel (it holds a native library) usable by any Python 3 (no extension)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _python, _abi, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    """Marks the distribution as platform-specific."""

    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
