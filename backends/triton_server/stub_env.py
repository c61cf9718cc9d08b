"""The Python environment the Triton Python-backend stub runs model code in: numpy < 2, torch visible.

The stub embeds the libpython of the interpreter it was built for and runs model code with the first `python3`
on PATH. Its tensor exchange is compiled against numpy 1.x: under numpy 2 tensors arrive as zeros, silently.
So the harness keeps one virtual environment per interpreter under the cache dir, holding numpy 1.26.4 and a
`.pth` line that appends this environment's site-packages (torch, the repo's dependencies): numpy 1.26 comes
first on sys.path and shadows 2.x. It is made once, on first use, and reused; `GENREC_WHEELHOUSE` names a
folder of wheels to install from where no package index can be reached.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from genrec_bench.matrices.errors import BackendError

NUMPY_PIN = "numpy==1.26.4"
CACHE_ENV = "GENREC_CACHE_DIR"
WHEELHOUSE_ENV = "GENREC_WHEELHOUSE"
_PTH_NAME = "genrec_parent_site.pth"
_DONE_MARK = ".genrec-stub-env-ok"


def cache_dir() -> Path:
    """`.genrec-cache/` at the repository root, or `$GENREC_CACHE_DIR`."""
    root = os.environ.get(CACHE_ENV) or str(Path(__file__).resolve().parents[2] / ".genrec-cache")
    return Path(root)


def python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def libpython_dir() -> Path:
    """Where the shared libpython of this interpreter lives (the stub links it by soname)."""
    soname = f"libpython{python_tag()}.so.1.0"
    places = [sysconfig.get_config_var(v) for v in ("LIBDIR", "LIBPL")]
    places += [
        f"/usr/lib/{sysconfig.get_config_var('MULTIARCH') or 'x86_64-linux-gnu'}",
        "/usr/local/lib",
        "/usr/lib",
    ]
    for place in places:
        if place and (Path(place) / soname).exists():
            return Path(place)
    raise BackendError(
        f"triton | the Python-backend stub needs a shared {soname}, found in none of "
        f"{', '.join(p for p in places if p)}; install libpython{python_tag()} or use a Python "
        f"built with --enable-shared"
    )


def parent_site_packages() -> list[str]:
    """This environment's site-packages (purelib and platlib), which the stub env appends after its own."""
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return sorted(p for p in paths if Path(p).is_dir())


def stub_env_dir() -> Path:
    """Keyed by interpreter version and parent environment: each needs its own."""
    key = hashlib.sha256(sys.prefix.encode()).hexdigest()[:10]
    return cache_dir() / "triton" / f"stub-env-py{python_tag()}-{key}"


def _env_site_packages(env: Path) -> Path:
    return env / "lib" / f"python{python_tag()}" / "site-packages"


@contextlib.contextmanager
def cache_lock(name: str):
    """An exclusive lock file under the cache dir: two sessions never build the same thing at once."""
    path = cache_dir() / "triton" / f".{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_stub_env() -> Path:
    """Make (once) and return the stub environment's root; its `bin/` goes first on the server's PATH."""
    env = stub_env_dir()
    if (env / _DONE_MARK).exists():
        return env
    with cache_lock(env.name):
        if not (env / _DONE_MARK).exists():  # another session may have made it while we waited
            _make(env)
    return env


def _make(env: Path) -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", "--clear", str(env)], "creating the stub venv")
    site = _env_site_packages(env)
    if not site.is_dir():
        raise BackendError(f"triton | the stub venv has no {site}; venv layout not understood")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(site),
        NUMPY_PIN,
    ]
    wheelhouse = os.environ.get(WHEELHOUSE_ENV)
    if wheelhouse:
        cmd[4:4] = ["--no-index", "--find-links", wheelhouse]
    _run(cmd, f"installing {NUMPY_PIN} into the stub venv")
    (site / _PTH_NAME).write_text("".join(p + "\n" for p in parent_site_packages()))
    check = subprocess.run(
        [str(env / "bin" / "python3"), "-c", "import numpy; print(numpy.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0 or not check.stdout.startswith("1."):
        raise BackendError(
            f"triton | the stub venv does not import numpy 1.x: "
            f"{(check.stdout + check.stderr).strip()[-400:]}"
        )
    (env / _DONE_MARK).write_text(check.stdout)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-600:]
        raise BackendError(f"triton | {what} failed (exit {proc.returncode}): {tail}")
