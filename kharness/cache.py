"""Content-addressed store for heavy artifacts (kernels, images, fstests builds).

Layout: $KHARNESS_CACHE (default ~/.cache/kharness)/<kind>/<key>/. An entry is
built in a temporary sibling directory and published with an atomic rename, so
concurrent harness runs never see half an artifact; a loser of the race simply
discards its copy. Long-lived mutable state (kernel worktrees, build trees) is
guarded by flock() locks.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


ENV = "KHARNESS_CACHE"


def _configured_root() -> Path:
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "kharness").expanduser()


def _unusable(root: Path, why: str) -> UserError:
    where = f"${ENV}" if os.environ.get(ENV) else "the cache"
    return UserError(f"{where}: {root} {why}; point ${ENV} at a writable directory")


# The cache's own directories (the layout in the module note and docs/architecture.md).
LAYOUT = ("src", "build", "kernels", "images", "bin", "tools", "ccache", "debian", "fstests", "locks")


def check_root() -> None:
    """One line if the cache directory cannot be used (preflight: before a run directory exists):
    writable, and every directory of its layout that exists is a directory. Creates the cache
    directory itself if it is missing, nothing in it."""
    root = cache_root()
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-test.", dir=root))
    except OSError as e:
        raise _unusable(root, f"is not writable ({e.strerror})") from None
    for name in LAYOUT:
        d = root / name
        if os.path.lexists(d) and not d.is_dir():
            raise UserError(f"${ENV if os.environ.get(ENV) else ' cache'}: {d} is not a directory (the cache keeps "
                            f"its {name} there); move it aside, or point ${ENV} at another directory")


def cache_root() -> Path:
    root = _configured_root()
    if os.path.lexists(root) and not root.is_dir():
        raise _unusable(root, "is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unusable(root, f"cannot be created ({e.strerror})") from None
    return root


def digest(*parts: bytes | str) -> str:
    """sha256 over length-prefixed parts, so ("ab","c") and ("a","bc") differ."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def existing(*parts: str) -> Path | None:
    """$CACHE/<parts...> if it is there, else None; creates nothing (not even the cache directory)."""
    p = _configured_root().joinpath(*parts)
    return p if os.path.lexists(p) else None


def entry(kind: str, key: str) -> Path:
    return cache_root() / kind / key


@contextmanager
def publishing(kind: str, key: str):
    """Yield a fresh temporary directory; on success rename it to entry(kind, key).

    If another writer published the same key first, ours is dropped (same content).
    On failure the temporary directory is removed: nothing half-written remains.
    """
    final = entry(kind, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", dir=final.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def locked(name: str):
    """An exclusive flock on $CACHE/locks/<name>; released when the block ends or the process dies."""
    path = cache_root() / "locks" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
