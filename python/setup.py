"""Build step: compile libtollgate with cargo and place it inside the package.

`pip install ./python` runs this in the source checkout (pip builds in-tree); `pip install` of
the sdist runs it in the unpacked sdist, which carries the Rust sources it needs under `rust/`
(a two-crate workspace: the core and the C ABI, with a Cargo.lock pruned to them). It runs
`cargo build -p tollgate-ffi --release --locked` on that workspace, reads the cdylib's path from
cargo's JSON messages (so CARGO_TARGET_DIR is honoured, and an already-built library in the
workspace's `target/` is reused), and copies it next to `tollgate/__init__.py`. Progress (one
line per compiled crate) goes to stderr, which `pip install -v` shows, and to the terminal when
there is one, since pip hides a build's output otherwise.
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
from setuptools.command.sdist import sdist
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
# The repository checkout (python/ inside it), else the Rust sources an sdist carries.
WORKSPACE = HERE.parent if (HERE.parent / "ffi" / "Cargo.toml").is_file() else HERE / "rust"
# What an sdist carries from the repository: the two crates libtollgate is built from.
SDIST_RUST = ["core/Cargo.toml", "core/src", "ffi/Cargo.toml", "ffi/build.rs", "ffi/src"]
SDIST_TOP = ["LICENSE-MIT", "LICENSE-APACHE"]


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
            "a checkout of the repository (`pip install ./python`) or from the sdist."
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
    progress = _Progress()
    progress.say("compiling libtollgate with cargo (a first build takes about a minute)")
    print("tollgate: " + " ".join(cmd), file=sys.stderr, flush=True)
    suffix = {"win32": ".dll", "darwin": ".dylib"}.get(sys.platform, ".so")
    found = None
    with subprocess.Popen(cmd, cwd=WORKSPACE, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if msg.get("reason") != "compiler-artifact":
                continue
            target = msg.get("target", {})
            progress.crate(target.get("name", "?"), bool(msg.get("fresh")))
            if "cdylib" not in target.get("kind", []):
                continue
            for name in msg.get("filenames", []):
                if name.endswith(suffix):
                    found = Path(name)
    if proc.returncode != 0:
        raise SystemExit(f"tollgate: cargo failed (exit {proc.returncode}); see the output above")
    if found is None:
        raise SystemExit("tollgate: cargo reported no cdylib for tollgate-ffi")
    progress.say(f"built {found.name}")
    return found


class _Progress:
    """One line per compiled crate, on stderr and, when there is one, on the terminal."""

    def __init__(self) -> None:
        self.count = 0
        self.tty = None
        try:
            self.tty = open("/dev/tty", "w")  # noqa: SIM115 - kept open for the whole build
        except OSError:
            self.tty = None

    def say(self, text: str) -> None:
        print(f"tollgate: {text}", file=sys.stderr, flush=True)
        if self.tty is not None:
            try:
                print(f"tollgate: {text}", file=self.tty, flush=True)
            except OSError:
                self.tty = None

    def crate(self, name: str, fresh: bool) -> None:
        self.count += 1
        self.say(f"[{self.count}] {'up to date' if fresh else 'compiled'}: {name}")


# Dev-only crates the tests use, which the sdist does not carry (its manifests must not name
# them: cargo reads every dependency's manifest, dev-dependencies included).
DEV_ONLY_CRATES = ("tollgate-models",)


def _without_targets(manifest: str) -> str:
    """`manifest` without its `[[test]]`, `[[bench]]` and `[[example]]` tables and without the
    dev-only crates' dependency lines."""
    out: list[str] = []
    skipping = False
    for line in manifest.splitlines():
        header = line.strip()
        if header.startswith("["):
            skipping = header in ("[[test]]", "[[bench]]", "[[example]]")
        if header.startswith(tuple(f"{name} =" for name in DEV_ONLY_CRATES)):
            continue
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def stage_rust_sources(dest: Path) -> None:
    """Copies the Rust sources libtollgate is built from into `dest` (an sdist's `rust/`)."""
    for rel in SDIST_RUST:
        src = WORKSPACE / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("target"))
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    # The crates' own test, bench and example targets name files the sdist does not carry.
    for crate in ("core", "ffi"):
        path = dest / crate / "Cargo.toml"
        path.write_text(_without_targets(path.read_text(encoding="utf-8")), encoding="utf-8")
    # The workspace manifest with only the two crates; the lock file pruned to match (cargo
    # drops the other members' packages and changes no version), so `--locked` still holds.
    manifest = (WORKSPACE / "Cargo.toml").read_text(encoding="utf-8")
    lines = [
        'members = ["core", "ffi"]' if line.startswith("members = ") else line
        for line in manifest.splitlines()
        if not line.startswith("exclude = ")
    ]
    (dest / "Cargo.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy2(WORKSPACE / "Cargo.lock", dest / "Cargo.lock")
    subprocess.run(
        [_cargo(), "metadata", "--format-version", "1", "--manifest-path",
         str(dest / "Cargo.toml")],
        stdout=subprocess.DEVNULL,
        check=True,
    )


class SdistWithRust(sdist):
    """An sdist that carries the Rust sources and the licences, so it builds from source."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        if WORKSPACE != HERE.parent:  # already an sdist: its rust/ came with the files
            return
        stage_rust_sources(Path(base_dir) / "rust")
        for name in SDIST_TOP:
            shutil.copy2(WORKSPACE / name, Path(base_dir) / name)


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
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel, "sdist": SdistWithRust},
    distclass=BinaryDistribution,
)
