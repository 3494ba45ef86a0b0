"""A patch series taken from a mailing-list thread, the way kernel developers take it.

    kernel.series entry {thread: MSGID, revision: N, source: ...}
        source "b4"            b4 am MSGID                   (lore, when the machine is online)
        source FILE | DIR      b4 am -m <the mails>          (an mbox, a .mbx, .eml files)
        source public-inbox    the thread's messages out of the git mirror, then b4 am -m
    b4's .mbx --pick--> the patches [PATCH vN k/M], 1..M, one revision; `skip` drops some

`b4` does the thread work (which messages belong to the revision, in what order,
replies and other revisions left out, trailers collected). What it cannot refuse
is checked here, so every problem is one line before anything is created: a
thread that is not there, a missing patch number, two revisions mixed.
"""
from __future__ import annotations

import email.header
import email.parser
import email.policy
import mailbox
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

# "[PATCH -next v2 09/22]", "[RFC PATCH v3 1/5]", "[PATCH 3/7]": revision and k/M.
_TAG = re.compile(r"\[([^]]*\bPATCH\b[^]]*)\]", re.I)
_NUMBER = re.compile(r"\b(\d+)/(\d+)\b")
_REVISION = re.compile(r"\bv(\d+)\b", re.I)
MAIL_SUFFIXES = (".mbx", ".mbox", ".eml", ".mail")


@dataclass(frozen=True)
class ThreadPatch:
    number: int
    total: int
    revision: int
    subject: str            # without the [PATCH ...] tag
    message_id: str | None
    mail: bytes             # the message as b4 wrote it (what `git am` reads)


@dataclass(frozen=True)
class Skipped:
    number: int
    subject: str
    reason: str


@dataclass(frozen=True)
class Thread:
    message_id: str         # the cover letter's, as given (no <>)
    revision: int
    source: str             # "b4", or the file/directory read
    patches: tuple[ThreadPatch, ...]    # the ones to apply, in order
    skipped: tuple[Skipped, ...]
    total: int


def bare_msgid(msgid: str) -> str:
    return msgid.strip().removeprefix("<").removesuffix(">").strip()


def parse_numbers(text: str, total: int | None = None) -> list[int]:
    """'1-8, 15' -> [1..8, 15]. Raises ValueError with the offending word."""
    out: list[int] = []
    for word in re.split(r"[,\s]+", str(text).strip()):
        if not word:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", word)
        if not m:
            raise ValueError(f"{word!r} is not a patch number or a range like 1-8")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo < 1 or hi < lo:
            raise ValueError(f"{word!r} is not a range of patch numbers (1-based, low-high)")
        if total is not None and hi > total:
            raise ValueError(f"{word!r}: the thread has only {total} patches")
        out.extend(range(lo, hi + 1))
    if not out:
        raise ValueError("no patch numbers given")
    return out


def _header(msg, name: str) -> str:
    raw = msg.get(name)
    if raw is None:
        return ""
    return " ".join(str(email.header.make_header(email.header.decode_header(str(raw)))).split())


def subject_tag(subject: str) -> tuple[int | None, int | None, int]:
    """(k, M, revision) of '[PATCH v2 03/22] ...'; k and M are None without k/M; revision 1 without vN."""
    m = _TAG.search(subject)
    if not m:
        return None, None, 1
    tag = m.group(1)
    num = _NUMBER.search(tag)
    rev = _REVISION.search(tag)
    return (int(num.group(1)) if num else None, int(num.group(2)) if num else None,
            int(rev.group(1)) if rev else 1)


def strip_tags(subject: str) -> str:
    return re.sub(r"^(\s*\[[^]]*\]\s*)+", "", subject).strip() or "(no subject)"


# ---------------------------------------------------------------- sources

def is_public_inbox(path: Path) -> bool:
    """A public-inbox epoch git: bare (HEAD, objects/) or a checkout, one message per commit in file `m`."""
    git_dir = path / ".git" if (path / ".git").exists() else path
    return (git_dir / "HEAD").is_file() and (git_dir / "objects").is_dir()


def _inbox_thread_mbox(repo: Path, msgid: str, out: Path) -> int:
    """Every message of the inbox that is the cover letter or refers to it, into mbox `out`.
    Returns how many. One pass over the blobs with `git cat-file --batch`."""
    revs = subprocess.run(["git", "-C", str(repo), "rev-list", "--all"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if revs.returncode != 0:
        raise UserError(f"{repo}: not a readable git repository ({revs.stderr.strip().splitlines()[-1:] or '?'})")
    want = f"<{msgid}>".encode()
    found = 0
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    with subprocess.Popen(["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as cat, open(out, "wb") as box:
        assert cat.stdin and cat.stdout
        feed = "".join(f"{c}:m\n" for c in revs.stdout.split()).encode()
        # Fed from a thread: cat-file answers while it reads, and both pipes would fill.
        t = threading.Thread(target=lambda: (cat.stdin.write(feed), cat.stdin.close()), daemon=True)
        t.start()
        while True:
            head = cat.stdout.readline()
            if not head:
                break
            parts = head.split()
            if len(parts) < 3 or parts[1] != b"blob":
                continue            # "<rev>:m missing" (a commit without m)
            blob = cat.stdout.read(int(parts[2]))
            cat.stdout.read(1)      # the newline after each object
            top = blob.split(b"\n\n", 1)[0]
            if want not in top:
                continue
            msg = parser.parsebytes(top)
            ids = " ".join(_header(msg, h) for h in ("Message-ID", "In-Reply-To", "References"))
            if f"<{msgid}>" in ids:
                box.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n")
                box.write(re.sub(rb"^(>*From )", rb">\1", blob, flags=re.M).rstrip(b"\n") + b"\n\n")
                found += 1
        t.join()
    return found


def _local_mails(source: Path, out: Path) -> None:
    """One mbox from a file or the mail files of a directory (mbox, .mbx, .eml)."""
    files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.suffix in MAIL_SUFFIXES)
    if not files:
        raise UserError(f"{source}: no mail files here ({', '.join(MAIL_SUFFIXES)}), nor a public-inbox git")
    with open(out, "wb") as box:
        for f in files:
            data = f.read_bytes()
            if not data.startswith(b"From "):        # a single .eml: give it an mbox separator
                box.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n")
            box.write(data.rstrip(b"\n") + b"\n\n")


def b4_command() -> list[str]:
    """b4 from the harness's own environment (requirements.txt), else from PATH."""
    here = Path(sys.executable).parent / "b4"
    if here.exists():
        return [str(here)]
    found = shutil.which("b4")
    if not found:
        raise UserError("kernel.series: a `thread:` entry needs b4 (pip install b4, or run `make setup`)")
    return [found]


def _b4_am(msgid: str, revision: int, local: Path | None, outdir: Path, where: str, shown: str) -> Path:
    argv = b4_command()
    if local is not None:
        argv.append("--offline-mode")           # a local copy: no trailer look-ups on lore
    argv += ["-q", "am", "-C", "--no-partial-reroll", "-v", str(revision), "-o", str(outdir)]
    if local is not None:
        argv += ["-m", str(local)]
    argv.append(msgid)
    env = {**os.environ, "XDG_CACHE_HOME": str(outdir / ".cache"), "XDG_DATA_HOME": str(outdir / ".data")}
    res = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=600)
    boxes = sorted(outdir.glob("*.mbx"))
    if res.returncode != 0 or not boxes:
        said = (res.stderr + res.stdout).strip().splitlines()
        why = next((ln for ln in said if "Unable to find revision" in ln), None)
        if why:
            raise UserError(f"{where}: thread <{msgid}> has no revision {revision} (b4: {why.strip()})")
        if local is not None:
            raise UserError(f"{where}: thread <{msgid}> not found in {shown}; check the cover letter's Message-ID")
        last = said[-1].strip() if said else f"b4 exited {res.returncode}"
        if "Could not retrieve" in last or "Failed to resolve" in last or "Max retries" in last:
            raise UserError(f"{where}: b4 am could not reach lore for thread <{msgid}> (no network?); point "
                            "`source` at an mbox, a directory of mails or a public-inbox git instead")
        raise UserError(f"{where}: thread <{msgid}> not found by b4 am ({last.removeprefix('CRITICAL: ')})")
    return boxes[0]


def pick(mbx: Path, msgid: str, revision: int, where: str) -> list[ThreadPatch]:
    """The patches of b4's .mbx, checked: one revision, every number 1..M exactly once."""
    patches: list[ThreadPatch] = []
    for msg in mailbox.mbox(str(mbx)):
        subject = _header(msg, "Subject")
        k, total, rev = subject_tag(subject)
        if k == 0:
            continue                            # a cover letter b4 kept
        if k is None:                           # a lone patch: 1/1
            k, total = 1, 1
        patches.append(ThreadPatch(k, total, rev, strip_tags(subject),
                                   (_header(msg, "Message-ID") or _header(msg, "Message-Id")) or None,
                                   msg.as_bytes()))
    if not patches:
        raise UserError(f"{where}: thread <{msgid}> holds no patches of revision {revision}")
    revs = sorted({p.revision for p in patches})
    if revs != [revision]:
        raise UserError(f"{where}: thread <{msgid}> mixes revisions "
                        f"{', '.join(f'v{r}' for r in revs)}; name one with `revision:`")
    totals = sorted({p.total for p in patches})
    if len(totals) != 1:
        raise UserError(f"{where}: thread <{msgid}> v{revision} numbers its patches out of "
                        f"{' and '.join(str(t) for t in totals)}: two postings mixed")
    total = totals[0]
    numbers = [p.number for p in patches]
    missing = [n for n in range(1, total + 1) if n not in numbers]
    if missing:
        raise UserError(f"{where}: thread <{msgid}> v{revision} lacks patch "
                        f"{', '.join(f'{n}/{total}' for n in missing)}; fetch the whole thread "
                        "(b4 am, or a fuller mbox)")
    doubled = sorted({n for n in numbers if numbers.count(n) > 1})
    if doubled:
        raise UserError(f"{where}: thread <{msgid}> v{revision} has patch {doubled[0]}/{total} twice")
    return sorted(patches, key=lambda p: p.number)


def fetch(msgid: str, revision: int, source: str, skip: list[tuple[str, str]], where: str) -> Thread:
    """Find the thread, pick its patches, drop the skipped ones. `skip` is [(numbers, reason)]."""
    msgid = bare_msgid(msgid)
    if not re.fullmatch(r"[^\s<>@]+@[^\s<>@]+", msgid):
        raise UserError(f"{where}: thread: {msgid!r} is not a Message-ID (like 2026...-1-someone@example.org)")
    with tempfile.TemporaryDirectory(prefix="kharness-thread.") as td:
        tmp = Path(td)
        local = None
        if source != "b4":
            path = Path(source).expanduser()
            if not path.exists():
                raise UserError(f"{where}: source: {source} does not exist (an mbox, a directory of mails, "
                                "a public-inbox git, or b4)")
            local = tmp / "thread.mbox"
            if path.is_dir() and is_public_inbox(path):
                if _inbox_thread_mbox(path, msgid, local) == 0:
                    raise UserError(f"{where}: thread <{msgid}> not found in the public-inbox git {path}")
            else:
                _local_mails(path, local)
        out = tmp / "b4"
        out.mkdir()
        patches = pick(_b4_am(msgid, revision, local, out, where, source), msgid, revision, where)
    total = patches[0].total
    dropped: dict[int, str] = {}
    for numbers, reason in skip:
        try:
            for n in parse_numbers(numbers, total):
                dropped[n] = reason
        except ValueError as e:
            raise UserError(f"{where}: skip: {e}")
    kept = tuple(p for p in patches if p.number not in dropped)
    if not kept:
        raise UserError(f"{where}: skip drops every patch of the thread; nothing would be applied")
    skipped = tuple(Skipped(p.number, p.subject, dropped[p.number]) for p in patches if p.number in dropped)
    return Thread(msgid, revision, source, kept, skipped, total)
