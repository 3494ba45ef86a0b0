"""Getting fstests' results out of the guest and keeping its history: SFTP pulls of
results/SECTION (result.xml is rewritten before every test, so a partial run keeps every
finished test), per-test files, check.time kept per variant, the console tail that
watches for `run fstests TEST at ...` lines while ./check runs."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from .. import cache
from ..guest import Guest
from .config import section_name
from .output import format_check_time, parse_check_time
from .source import GUEST_FSTESTS

MAX_PULL_BYTES = 16 << 20                     # per file pulled from the guest


class ConsoleTail:
    """New complete lines of the run's console.log from a given line on, without re-reading it."""

    def __init__(self, path: Path, after_line: int, offset: int | None):
        self.path = path
        self.line = after_line
        # None: the stream could not say (console.log writes failed); start at the file's end
        self.offset = offset if offset is not None else (os.path.getsize(path) if path.exists() else 0)
        self._partial = b""

    def poll(self) -> list[tuple[int, str]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        if not data:
            return []
        self.offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        out = []
        for raw in complete:
            self.line += 1
            out.append((self.line, raw.decode("utf-8", "replace")))
        return out


def history_file(v) -> Path:
    tag = cache.digest(v.fstype, v.mkfs, v.mount)[:10]
    return cache.cache_root() / "fstests" / "check.time" / f"{section_name(v.name)}-{tag}"


def load_history(v) -> dict[str, float]:
    try:
        return parse_check_time(history_file(v).read_text())
    except OSError:
        return {}


def save_history(v, times: dict[str, float]) -> None:
    p = history_file(v)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(format_check_time(times))
    os.replace(tmp, p)


def pull_results(guest: Guest, section: str, out_dir: Path, seen: dict | None = None) -> bool:
    """results/SECTION/** (result.xml, check.log, per-test files) and results/check.time -> out_dir.
    `seen` (remote path -> (size, mtime)) skips files already pulled unchanged."""
    seen = {} if seen is None else seen
    try:
        sftp = guest.client.open_sftp()
    except Exception as e:     # the guest may be too far gone
        (out_dir / "pull-error.txt").write_text(f"cannot open sftp: {e}\n")
        return (out_dir / "result.xml").exists()
    try:
        sftp.get_channel().settimeout(60)
        base = f"{GUEST_FSTESTS}/results"
        _sftp_get(sftp, f"{base}/check.time", out_dir / "check.time", seen)
        _sftp_tree(sftp, f"{base}/{section}", out_dir, seen)
        return True
    except Exception as e:
        (out_dir / "pull-error.txt").write_text(f"pulling results failed: {e}\n")
        return (out_dir / "result.xml").exists()
    finally:
        try:
            sftp.close()
        except Exception:
            pass


def _sftp_get(sftp, remote: str, local: Path, seen: dict) -> bool:
    try:
        st = sftp.stat(remote)
    except IOError:
        return False
    if seen.get(remote) == (st.st_size, st.st_mtime) and local.exists():
        return True
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(local.name + ".part")
    with sftp.open(remote, "rb") as src, open(tmp, "wb") as dst:
        left = min(st.st_size or 0, MAX_PULL_BYTES)
        while left > 0:
            chunk = src.read(min(left, 1 << 16))
            if not chunk:
                break
            dst.write(chunk)
            left -= len(chunk)
        if (st.st_size or 0) > MAX_PULL_BYTES:
            dst.write(f"\n[... truncated at {MAX_PULL_BYTES} bytes by kharness]\n".encode())
    os.replace(tmp, local)
    seen[remote] = (st.st_size, st.st_mtime)
    return True


def _sftp_tree(sftp, remote: str, local: Path, seen: dict) -> None:
    try:
        entries = sftp.listdir_attr(remote)
    except IOError:
        return
    for e in entries:
        r = f"{remote}/{e.filename}"
        if stat.S_ISDIR(e.st_mode or 0):
            _sftp_tree(sftp, r, local / e.filename, seen)
        elif stat.S_ISREG(e.st_mode or 0):
            _sftp_get(sftp, r, local / e.filename, seen)


TEST_FILES = (".out.bad", ".full", ".dmesg", ".notrun", ".hints")


def copy_test_files(out_dir: Path, test: str, dest: Path) -> None:
    d, num = test.split("/", 1) if "/" in test else ("", test)
    for suffix in TEST_FILES:
        p = out_dir / d / (num + suffix)
        if p.is_file():
            shutil.copyfile(p, dest / (num + suffix))


def golden_and_bad(tree: Path, out_dir: Path, test: str) -> tuple[str | None, str | None]:
    d, num = test.split("/", 1) if "/" in test else ("", test)
    try:
        return ((tree / "tests" / d / f"{num}.out").read_text(errors="replace"),
                (out_dir / d / f"{num}.out.bad").read_text(errors="replace"))
    except OSError:
        return None, None
