"""Which patches a kernel gets: a series directory under patches/ or a mailing-list thread.

    patches/<name>/series (quilt/b4 style) or one .mbx/.mbox   -> Series(inputs for git am)
    kernel.series entry {thread: MSGID, ...}                    -> Series(thread: the picked mails)

Pure reading: nothing here touches a kernel tree (kernel.py applies what this returns).
"""
from __future__ import annotations

import email.parser
import email.policy
import mailbox
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from . import cache, files, thread
from .config import REPO, ThreadSeries, repo_path
from .errors import UserError

PATCHES_DIR = REPO / "patches"
MAX_PATCH_BYTES = 64 << 20          # one patch file or mbox
# A patch holds a diff: git's header, or a unified diff's ---/+++ pair (quilt, diff -u).
_DIFF = re.compile(rb"^diff --git |^--- [^\n]*\n\+\+\+ ", re.M)


@dataclass(frozen=True)
class Patch:
    series: str
    file: str           # path relative to the repository (patches/<series>/<file>)
    subject: str
    message_id: str | None
    sha256: str
    author: str = ""    # From: of the patch mail


@dataclass(frozen=True)
class Series:
    name: str
    inputs: tuple[Path, ...]     # files given to `git am`, in order (patches or one mbox); none for a thread
    patches: tuple[Patch, ...]
    thread: thread.Thread | None = None     # taken from a mailing-list thread: its mails are the input
    apply: str = "strict"        # strict | fuzzy (threads only)
    fuzz: int = 0
    take: int | None = None      # only the first `take` messages of an mbox input (bisection)

    def describe(self) -> dict:
        """What kernel.json records of the series (the report shows all of it)."""
        out: dict = {"name": self.name, "patches": [p.__dict__ for p in self.patches]}
        if self.thread:
            t = self.thread
            out["thread"] = {"message_id": f"<{t.message_id}>", "revision": t.revision, "source": t.source,
                             "total": t.total, "apply": self.apply, "fuzz": self.fuzz if self.apply == "fuzzy" else 0,
                             "skipped": [s.__dict__ for s in t.skipped]}
        return out


def series_label(entry: str | ThreadSeries) -> str:
    return entry.name if isinstance(entry, ThreadSeries) else entry


def _subject(msg) -> str:
    subj = " ".join(str(msg.get("Subject", "")).split())
    return re.sub(r"^(\[[^]]*\]\s*)+", "", subj) or "(no subject)"


def _author(msg) -> str:
    return " ".join(str(msg.get("From", "")).split())


def _message_id(msg) -> str | None:
    mid = msg.get("Message-ID") or msg.get("Message-Id")
    return str(mid).strip() if mid else None


def available_series() -> list[str]:
    return sorted(p.name for p in PATCHES_DIR.iterdir() if p.is_dir()) if PATCHES_DIR.is_dir() else []


_threads: dict[tuple, thread.Thread] = {}


def thread_source(t: ThreadSeries) -> str:
    """`source`, or the environment variable `source_env` names when it is set; paths relative to the repo."""
    src = os.environ.get(t.source_env, "") if t.source_env else ""
    src = src or t.source
    return src if src == "b4" else os.path.normpath(repo_path(src))


def read_thread(t: ThreadSeries) -> Series:
    """The thread's patches (b4 picks them; skip drops some), read once per process."""
    src = thread_source(t)
    try:
        stamp = Path(src).stat().st_mtime_ns if src != "b4" else 0
    except OSError:
        stamp = -1
    key = (t.thread, t.revision, src, stamp, tuple((s.patches, s.reason) for s in t.skip))
    if key not in _threads:
        _threads[key] = thread.fetch(t.thread, t.revision, src, [(s.patches, s.reason) for s in t.skip],
                                     f"series {t.name!r}")
    th = _threads[key]
    header = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes
    patches = tuple(Patch(t.name, f"<{th.message_id}> {p.number}/{p.total}", p.subject, p.message_id,
                          cache.digest(p.mail), _author(header(p.mail))) for p in th.patches)
    return Series(t.name, (), patches, th, t.apply, t.fuzz)


def read_series(name: str | ThreadSeries, patches_dir: Path | None = None) -> Series:
    """patches/<name>/series (quilt/b4 style, '#' comments), a single mbox in that directory,
    or a thread from the mailing list (kernel.series entry with `thread:`)."""
    if isinstance(name, ThreadSeries):
        return read_thread(name)
    base = (patches_dir or PATCHES_DIR) / name
    rel = lambda p: os.path.relpath(p, REPO)  # noqa: E731
    if not base.is_dir():
        avail = ", ".join(available_series()) or "none"
        raise UserError(f"series {name!r}: no directory {rel(base)} (available: {avail})")
    series_file = base / "series"
    if series_file.exists():
        paths = []
        text = files.read_text(series_file, "series file", 1 << 20)
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            p = base / line.split()[0]
            if not p.is_file():
                raise UserError(f"{rel(series_file)}:{lineno}: names {line.split()[0]!r}, which does not exist in {rel(base)}")
            paths.append(p)
        if not paths:
            raise UserError(f"{rel(series_file)}: the series is empty; list patch files one per line")
        patches = []
        for p in paths:
            data = files.read_bytes(p, "patch", MAX_PATCH_BYTES)
            msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
            if not msg.get("Subject"):
                raise UserError(f"{rel(p)}: not a mail-formatted patch (no Subject:); make it with git format-patch")
            if not _DIFF.search(data):
                raise UserError(f"{rel(p)}: not a patch (no diff in it: no `diff --git` or ---/+++ lines); "
                                f"make it with git format-patch")
            patches.append(Patch(name, rel(p), _subject(msg), _message_id(msg), cache.digest(data), _author(msg)))
        return Series(name, tuple(paths), tuple(patches))
    mboxes = sorted(list(base.glob("*.mbx")) + list(base.glob("*.mbox")))
    if len(mboxes) != 1:
        raise UserError(f"series {name!r}: {rel(base)} needs a `series` file or exactly one .mbx/.mbox (b4 am output)")
    box = mboxes[0]
    st = files.check_regular(box, "mbox")
    if st.st_size > MAX_PATCH_BYTES:
        raise UserError(f"{rel(box)}: mbox is larger than {files.human(MAX_PATCH_BYTES)}; is it the right file?")
    patches = []
    for msg in mailbox.mbox(str(box)):
        body = msg.as_bytes()
        if not _DIFF.search(body):
            raise UserError(f"{rel(box)}: message {_subject(msg)!r} is not a patch (no diff in it); "
                            f"give the mbox of the patches only (b4 am output)")
        patches.append(Patch(name, rel(box), _subject(msg), _message_id(msg), cache.digest(body), _author(msg)))
    if not patches:
        raise UserError(f"{rel(box)}: the mbox holds no messages")
    return Series(name, (box,), tuple(patches))


def first_patches(series: list[Series], k: int) -> list[Series]:
    """The series cut to their first k patches in all, in order (bisection's candidate k);
    a series left with none is dropped."""
    out = []
    for s in series:
        m = min(k, len(s.patches))
        k -= m
        if m == 0:
            continue
        if m == len(s.patches):
            out.append(s)
        elif s.thread:
            out.append(replace(s, patches=s.patches[:m], thread=replace(s.thread, patches=s.thread.patches[:m])))
        elif len(s.inputs) == len(s.patches):           # a series file: one input per patch
            out.append(replace(s, inputs=s.inputs[:m], patches=s.patches[:m]))
        else:                                           # one mbox: git am its first m messages
            out.append(replace(s, patches=s.patches[:m], take=m))
    return out
