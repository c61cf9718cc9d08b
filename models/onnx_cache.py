"""On-disk cache of exported ONNX files: one self-contained file per key, written atomically, verified on
load.

Layout under `cache_root()` (`$GENREC_CACHE_DIR/onnx`, default `<repo>/.genrec-cache/onnx`):

    <stem>-<key16>.onnx    the model, weights inside (no external data)
    <stem>-<key16>.json    its manifest: the key's fields, sha256 and size of the .onnx

An entry counts only when both files are there, the manifest names the same key, the file's sha256 matches
the manifest and `onnx.checker` accepts the file. Anything else — a crash between the two renames, a file
truncated or overwritten afterwards, a manifest from another key — is a miss: the entry is rebuilt, never
loaded. Writes go to a temporary file in the same directory and are renamed into place (atomic on POSIX), the
model first and the manifest last, so a reader never sees a manifest for a file that is not fully there.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_ENV = "GENREC_CACHE_DIR"
_CHUNK = 1 << 22
# (path, size, mtime_ns, inode) of entries already verified in this process: a nightly run opens the same
# 1 GB base export for many cells, and re-hashing it each time would cost seconds per cell.
_verified: set[tuple] = set()


def cache_root() -> Path:
    """Where ONNX exports live: `$GENREC_CACHE_DIR/onnx`, else `.genrec-cache/onnx` under the repo root."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base).expanduser() if base else REPO_ROOT / ".genrec-cache") / "onnx"


def cache_key(fields: dict) -> str:
    """sha256 over the canonical JSON of everything that changes the exported file."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_onnx(path: Path) -> None:
    """onnx.checker on the file (by path, so models up to the 2 GB protobuf limit are checked in full)."""
    import onnx

    onnx.checker.check_model(str(path), full_check=False)


@dataclass(frozen=True)
class Entry:
    """A verified cache entry: the file to load, its manifest, and whether this call built it."""

    path: Path
    manifest: dict
    built: bool


class OnnxCache:
    """Get-or-build of exported files under `root`; `build(tmp_path)` writes one file and raises on
    failure."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_root()

    def paths(self, stem: str, key: str) -> tuple[Path, Path]:
        base = self.root / f"{stem}-{key[:16]}"
        return base.with_suffix(".onnx"), base.with_suffix(".json")

    def lookup(self, stem: str, key: str) -> tuple[Entry | None, str]:
        """The verified entry, or (None, why it is a miss) — the reason goes into the record."""
        model, manifest_path = self.paths(stem, key)
        if not model.exists() and not manifest_path.exists():
            return None, "not cached"
        if not manifest_path.exists():
            return None, f"partial entry: {model.name} has no manifest"
        try:
            manifest = json.loads(manifest_path.read_text())
            stat = model.stat()
        except (OSError, ValueError) as exc:
            return None, f"unreadable entry {manifest_path.name}: {type(exc).__name__}: {exc}"
        if manifest.get("key") != key:
            return None, f"manifest {manifest_path.name} belongs to another key"
        stamp = (str(model), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if stamp in _verified:
            return Entry(model, manifest, built=False), "cached, verified earlier in this process"
        if stat.st_size != manifest.get("size"):
            return (
                None,
                f"size mismatch: {model.name} is {stat.st_size} bytes, manifest says {manifest.get('size')}",
            )
        digest = file_sha256(model)
        if digest != manifest.get("sha256"):
            return (
                None,
                f"sha256 mismatch: {model.name} is {digest[:12]}…, "
                f"manifest says {manifest.get('sha256', '')[:12]}…",
            )
        try:
            check_onnx(model)
        except Exception as exc:  # noqa: BLE001 — any checker failure is a corrupt entry: rebuild it
            return None, f"onnx.checker rejects {model.name}: {_first_line(exc)}"
        _verified.add(stamp)
        return Entry(model, manifest, built=False), "cached, sha256 and onnx.checker verified"

    def get_or_build(
        self, stem: str, key: str, fields: dict, build: Callable[[Path], dict]
    ) -> tuple[Entry, str]:
        """The entry for `key`, building it with `build(tmp_path) -> extra manifest fields` on a miss."""
        entry, why = self.lookup(stem, key)
        if entry is not None:
            return entry, why
        self.root.mkdir(parents=True, exist_ok=True)
        model, manifest_path = self.paths(stem, key)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{model.stem}.", suffix=".onnx.tmp", dir=self.root)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            extra = build(tmp)
            check_onnx(tmp)
            manifest = {
                "key": key,
                **fields,
                **extra,
                "file": model.name,
                "size": tmp.stat().st_size,
                "sha256": file_sha256(tmp),
            }
            _readable(tmp)
            os.replace(tmp, model)
            _atomic_write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
        finally:
            tmp.unlink(missing_ok=True)
        stat = model.stat()
        _verified.add((str(model), stat.st_size, stat.st_mtime_ns, stat.st_ino))
        return Entry(model, manifest, built=True), f"built ({why})"


def _readable(path: Path) -> None:
    # mkstemp makes 0600 files; a shared cache wants the mode a plain open() would give (0666 minus umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        _readable(Path(tmp_name))
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
