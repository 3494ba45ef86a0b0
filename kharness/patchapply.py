"""Apply one patch to the cache's kernel tree: strict (`git am --3way`) or fuzzy.

Fuzzy is for a series posted against another base (issue 13): when `git am --3way`
cannot apply a patch, GNU patch applies it with fuzz, and every hunk that needed an
offset or fuzz is recorded. Fuzz can land a hunk in the wrong place without any
error (a context line that occurs twice), so the record is what a developer reads
first when the result misbehaves, and `blame_build_error` points a compile error
back at the hunk it sits in.
"""
from __future__ import annotations

import email.parser
import email.policy
import email.utils
import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

# GNU patch 2.7: "patching file fs/ext4/inode.c", "Hunk #2 succeeded at 4760 with fuzz 3 (offset 12 lines).",
# "Hunk #3 FAILED at 5411.", "Hunk #1 ignored at 10." (-N, already applied)
_FILE = re.compile(r"^(?:patching|checking) file '?([^'\n]+?)'?$", re.M)
_HUNK = re.compile(r"^Hunk #(\d+) (succeeded|FAILED|ignored) at (\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?")
_HUNK_HEADER = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,(\d+))? @@", re.M)
_DIFF_FILE = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.M)
_BUILD_ERROR = re.compile(r"^(\S+?\.[ch]):(\d+):(?:\d+:)? (?:fatal )?error: (.*)$", re.M)


@dataclass(frozen=True)
class Hunk:
    file: str
    hunk: int           # 1-based within that file, as patch numbers them
    line: int           # where it landed
    offset: int
    fuzz: int
    length: int         # lines on the new side (for locating a later build error)


@dataclass
class Applied:
    """How one patch went in: which tool, and the hunks that did not fit exactly."""
    label: str          # "09/22" for a thread's patch, the file name otherwise
    subject: str
    method: str         # "git am --3way" | "patch -F3"
    commit: str = ""
    hunks: list[Hunk] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


class Rejected(Exception):
    def __init__(self, file: str, hunk: int, line: int, fuzz: int):
        super().__init__(f"hunk #{hunk} of {file} (at line {line}) does not apply even with fuzz {fuzz}")
        self.file, self.hunk = file, hunk


def parse_patch_output(text: str, lengths: dict[str, list[int]]) -> tuple[list[Hunk], list[tuple[str, int, int]]]:
    """(hunks with offset or fuzz, rejected [(file, hunk, line)]) from GNU patch's messages."""
    notes: list[Hunk] = []
    rejected: list[tuple[str, int, int]] = []
    current = "?"
    for line in text.splitlines():
        if m := _FILE.match(line):
            current = m.group(1)
            continue
        m = _HUNK.match(line)
        if not m:
            continue
        n, state, at = int(m.group(1)), m.group(2), int(m.group(3))
        if state != "succeeded":
            rejected.append((current, n, at))
            continue
        fuzz, offset = int(m.group(4) or 0), int(m.group(5) or 0)
        length = (lengths.get(current) or [])[n - 1:n] or [0]
        notes.append(Hunk(current, n, at, offset, fuzz, length[0]))
    return notes, rejected


def hunk_lengths(diff: str) -> dict[str, list[int]]:
    """file -> new-side length of each of its hunks, in order."""
    out: dict[str, list[int]] = {}
    current = None
    for line in diff.splitlines():
        if m := _DIFF_FILE.match(line):
            current = m.group(1)
            out.setdefault(current, [])
        elif current and (m := _HUNK_HEADER.match(line)):
            out[current].append(int(m.group(1)) if m.group(1) is not None else 1)
    return out


def _mail_parts(mail: bytes) -> tuple[str, str, str, str]:
    """(author, date, commit message, diff text) of a patch mail, decoded (b4 may write QP)."""
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(mail)
    payload = msg.get_payload(decode=True)
    if isinstance(payload, bytes):
        body = payload.decode(msg.get_content_charset() or "utf-8", errors="replace")
    else:                   # multipart: the first text part carries the patch
        part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
        body = (part.get_payload(decode=True) or b"").decode(errors="replace") if part else ""
    subject = " ".join(str(msg.get("Subject", "")).split())
    subject = re.sub(r"^(\s*\[[^]]*\]\s*)+", "", subject)
    log, _, _ = body.partition("\n---\n")
    if "\ndiff --git " in log:
        log = log.split("\ndiff --git ", 1)[0]
    date = msg.get("Date", "")
    try:
        date = email.utils.parsedate_to_datetime(date).isoformat() if date else ""
    except (TypeError, ValueError):
        date = ""
    return str(msg.get("From", "")), date, f"{subject}\n\n{log.strip()}\n", body


def apply_fuzzy(repo: Path, mail: bytes, fuzz: int, ident: dict) -> tuple[str, list[Hunk]]:
    """`patch -p1 -F<fuzz>` of a mail onto the work tree, then a commit as the mail's author.
    A dry run first: a rejected hunk raises Rejected with the tree untouched."""
    author, date, message, diff = _mail_parts(mail)
    lengths = hunk_lengths(diff)
    with tempfile.NamedTemporaryFile("w", suffix=".diff", prefix="kharness-fuzzy.", delete=False) as f:
        f.write(diff)
        diff_file = f.name
    try:
        base = ["patch", "-p1", f"-F{fuzz}", "-f", "--no-backup-if-mismatch", "-d", str(repo), "-i", diff_file]
        for argv in (base + ["--dry-run"], base):       # the dry run leaves the tree untouched on a reject
            res = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            notes, rejected = parse_patch_output(res.stdout, lengths)
            if rejected or res.returncode != 0:
                raise Rejected(*(rejected[0] if rejected else ("?", 0, 0)), fuzz)
    finally:
        os.unlink(diff_file)
    git = ["git", "-C", str(repo)]
    subprocess.run(git + ["add", "-A", "-f", "--", "."], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    # The kernel tree's own .gitignore'd build leftovers never exist here (builds use O=).
    subprocess.run(git + ["reset", "-q", "--", ".kharness-base"], capture_output=True, stdin=subprocess.DEVNULL)
    env = {**os.environ, **ident}
    name, addr = email.utils.parseaddr(author)
    if name or addr:
        env.update(GIT_AUTHOR_NAME=name or addr, GIT_AUTHOR_EMAIL=addr or name)
    if date:
        env["GIT_AUTHOR_DATE"] = date
    subprocess.run(git + ["commit", "-q", "--no-verify", "--allow-empty", "-F", "-"], input=message, text=True,
                   env=env, check=True, capture_output=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    return head, [h for h in notes if h.offset or h.fuzz]


@dataclass(frozen=True)
class BuildErrorSite:
    file: str
    line: int
    message: str
    applied: Applied | None     # the patch that wrote the line (None: the base's own line)
    hunk: Hunk | None           # the offset/fuzzed hunk it sits in, if any

    def describe(self) -> str:
        where = f"{self.file}:{self.line}: {self.message}"
        if self.applied is None:
            return f"{where} (a line of the base tree, not of a patch)"
        if self.hunk is not None:
            return (f"{where} — in patch {self.applied.label} ({self.applied.subject}), hunk #{self.hunk.hunk} of "
                    f"{self.hunk.file}, applied with fuzz {self.hunk.fuzz} at line {self.hunk.line} "
                    f"(offset {self.hunk.offset:+d})")
        return f"{where} — a line of patch {self.applied.label} ({self.applied.subject}), in no fuzzed hunk"


def blame_build_error(repo: Path, build_output: str, applied: list[Applied]) -> BuildErrorSite | None:
    """The first compiler error, traced with `git blame` to the patch (and fuzzed hunk) that wrote its line."""
    m = _BUILD_ERROR.search(build_output)
    if not m:
        return None
    file, line, message = m.group(1), int(m.group(2)), m.group(3).strip()
    # O= builds print paths relative to the output tree (../../src/<id>/fs/ext4/inode.c) or
    # absolute: the longest tail of the path that names a file of the tree is the file.
    parts = file.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts)) if ".." not in parts[i:] and parts[i]]
    file = next((t for t in tails if (repo / t).is_file()), file)
    if not (repo / file).is_file():
        return BuildErrorSite(file, line, message, None, None)
    res = subprocess.run(["git", "-C", str(repo), "blame", "--porcelain", "-L", f"{line},{line}", "HEAD", "--", file],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    first = res.stdout.split("\n", 1)[0].split() if res.returncode == 0 else []
    if len(first) < 2:
        return BuildErrorSite(file, line, message, None, None)
    commit, orig_line = first[0], int(first[1])
    patch = next((a for a in applied if a.commit == commit), None)
    if patch is None:
        return BuildErrorSite(file, line, message, None, None)
    hunk = next((h for h in patch.hunks if h.file == file and h.line - 3 <= orig_line <= h.line + h.length + 3), None)
    return BuildErrorSite(file, line, message, patch, hunk)
