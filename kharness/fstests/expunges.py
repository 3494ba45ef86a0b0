"""Expunge files: fstests tests not to run, per kernel, filesystem and section, one test a line.

    expunges/<kernel>/<fs>/<section>.txt

<kernel> is the kernel's major.minor ("6.12"), as known before the kernel is built (kernel_key),
or `all`; <fs> is the variant's fstype ("ext4", "xfs") or `all`; <section> is the variant's fstests
section (kharness.fstests.config.section_name(variant.name): "ext4_4k") or `all`. A variant gets
the tests of every file that matches it (6.12/ext4/ext4_4k.txt, 6.12/ext4/all.txt, all/ext4/ext4_4k.txt,
..., all/all/all.txt); when a test is in several, the most specific file's line is the one shown.

A line is a test, then `#`, then `reason: TEXT` and optionally `; bug: URL`:

    generic/475  # reason: hangs in xfs_buf_lock under TCG; bug: https://lore.kernel.org/...

Blank lines and lines starting with `#` are comments. Everything after the first `#` is a comment
to fstests too, so a file is also valid input to `./check -E FILE`. The config's
`fstests.expunge:` adds to these and wins where both name a test (its reason is shown).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..config import REPO, repo_path
from ..errors import UserError
from .config import is_test_name

ROOT = REPO / "expunges"            # tests point this elsewhere
ALL = "all"
_KERNEL_RE = re.compile(r"^\d+\.\d+$")
_FS_RE = re.compile(r"^[a-z0-9]+$")
_SECTION_RE = re.compile(r"^[A-Za-z0-9_]+$")
_FIELD_RE = re.compile(r"^\s*(reason|bug)\s*:\s*(.*)$")
_URL_RE = re.compile(r"^https?://\S+$")
# linux-source-6.12.tar.xz (Debian), linux-6.12.3.tar.xz, linux-7.2-rc3.tar.gz (kernel.org)
_TARBALL_RE = re.compile(r"^linux(?:-source)?-(\d+)\.(\d+)(?:[.-]|$)")
_PACKAGE_RE = re.compile(r"^linux-source-(\d+)\.(\d+)$")


@dataclass(frozen=True)
class Expunge:
    test: str
    reason: str
    bug: str | None
    file: Path
    line: int

    def why(self) -> str:
        """The skip message: where the line is and what it says."""
        return f"expunged in {_shown(self.file)}:{self.line}: {self.reason}" + (f" (bug: {self.bug})" if self.bug else "")


def _shown(p: Path) -> str:
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


# ====================================================================== the kernel's key

def kernel_key(k) -> str | None:
    """major.minor of the kernel a KernelConfig builds, from what is known before it is built:
    the Debian package name (linux-source-7.2), the tarball's file name (linux-source-6.12.tar.xz,
    linux-6.12.3.tar.xz) or, for a git tree, VERSION and PATCHLEVEL of the Makefile at `ref`.
    None when none of these tells (a tarball named otherwise, an unreadable tree)."""
    if k is None:
        return None
    if getattr(k, "debian", None) and (m := _PACKAGE_RE.match(k.debian.package)):
        return f"{m.group(1)}.{m.group(2)}"
    if getattr(k, "tarball", None) and (m := _TARBALL_RE.match(Path(k.tarball).name)):
        return f"{m.group(1)}.{m.group(2)}"
    if getattr(k, "git", None):
        try:
            text = subprocess.run(["git", "-C", str(repo_path(k.git)), "show", f"{k.ref or 'HEAD'}:Makefile"],
                                  capture_output=True, text=True, timeout=30, check=True).stdout[:4096]
        except (OSError, subprocess.SubprocessError):
            return None
        v = re.search(r"^VERSION\s*=\s*(\d+)\s*$", text, re.M)
        p = re.search(r"^PATCHLEVEL\s*=\s*(\d+)\s*$", text, re.M)
        return f"{v.group(1)}.{p.group(1)}" if v and p else None
    return None


def describe_kernel(k) -> str:
    if k is None:
        return "the config names no kernel"
    for attr in ("tarball", "git"):
        if getattr(k, attr, None):
            return f"kernel.{attr}: {getattr(k, attr)}"
    if getattr(k, "debian", None):
        return f"kernel.debian.package: {k.debian.package}"
    return "the config's kernel"


# ====================================================================== files

def parse(text: str, path: Path) -> list[Expunge]:
    """The lines of one expunge file; a malformed line is a UserError naming file:line."""
    out: list[Expunge] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{_shown(path)}:{n}"
        test, hash_, comment = line.partition("#")
        test = test.strip()
        if not is_test_name(test) or " " in test:
            raise UserError(f"{where}: {test!r} is not a test name like generic/475 "
                            "(a line is `TEST # reason: WHY; bug: URL`)")
        if test in seen:
            raise UserError(f"{where}: {test} is already expunged at line {seen[test]}")
        fields: dict[str, str] = {}
        last = None
        for part in comment.split(";") if hash_ else []:
            if not part.strip():
                continue
            m = _FIELD_RE.match(part)
            if m and m.group(1) not in fields:
                last = m.group(1)
                fields[last] = m.group(2).strip()
            elif last == "reason" and not m:
                fields["reason"] += ";" + part          # a ';' inside the reason
            else:
                raise UserError(f"{where}: {test}: expected `reason: WHY` and optionally `; bug: URL` after "
                                f"the '#', got {part.strip()!r}")
        if not fields.get("reason", "").strip():
            raise UserError(f"{where}: {test}: no reason; write `{test} # reason: WHY` (and `; bug: URL` if there is one)")
        bug = fields.get("bug")
        if bug is not None and not _URL_RE.match(bug):
            raise UserError(f"{where}: {test}: bug: {bug!r} is not a link (http:// or https://)")
        seen[test] = n
        out.append(Expunge(test, fields["reason"].strip(), bug, path, n))
    return out


def load(root: Path | None = None) -> dict[tuple[str, str, str], list[Expunge]]:
    """Every expunge file under root (default: the repository's expunges/), checked, by
    (kernel, fs, section). A .txt file outside the layout is a UserError (a typo would be ignored)."""
    root = root or ROOT
    table: dict[tuple[str, str, str], list[Expunge]] = {}
    if not root.is_dir():
        return table
    for p in sorted(root.rglob("*.txt")):
        parts = p.relative_to(root).parts
        if len(parts) != 3 or not (parts[0] == ALL or _KERNEL_RE.match(parts[0])) or not _FS_RE.match(parts[1]) \
                or not _SECTION_RE.match(p.stem):
            raise UserError(f"{_shown(p)}: expunge files go at {_shown(root)}/<kernel>/<fs>/<section>.txt, where "
                            "<kernel> is major.minor or 'all', <fs> an fstype or 'all' and <section> an fstests "
                            f"section or 'all' (e.g. {_shown(root)}/6.12/ext4/ext4_4k.txt)")
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{_shown(p)}: cannot read it ({e})") from None
        table[(parts[0], parts[1], p.stem)] = parse(text, p)
    return table


def for_variant(table: dict[tuple[str, str, str], list[Expunge]], kernel: str | None, fstype: str,
                section: str) -> dict[str, Expunge]:
    """{test: Expunge} for one variant; the most specific file's line wins (kernel, then fs, then section)."""
    out: dict[str, Expunge] = {}
    for k in ([kernel] if kernel else []) + [ALL]:
        for f in (fstype, ALL):
            for s in (section, ALL):
                for e in table.get((k, f, s), []):
                    out.setdefault(e.test, e)
    return out


def kernel_dirs(table) -> list[str]:
    """The kernels that have expunge files of their own (not `all`)."""
    return sorted({k for k, _, _ in table if k != ALL})
