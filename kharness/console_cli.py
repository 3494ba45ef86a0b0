"""`harness.py console LOG [LOG...] [--json]`: kernel problems found in saved console logs.

Text mode: one line per finding, `FILE:LINE: KIND TYPE TITLE` (plus `(xN)` when the same
report was seen N times).  JSON mode: one object per file per line,
{"file": LOG, "findings": [Finding.to_json(), ...]}.  Files are read in chunks, never whole,
and must be regular files (a FIFO would block, /dev/zero never ends); a line longer than
MAX_LINE is cut there, so memory stays bounded whatever the log holds.
"""

from __future__ import annotations

import codecs
import json
import os
import stat
import sys
from typing import TextIO

from . import files
from .console import ConsoleAnalyzer
from .model import Finding
from .errors import UserError

CHUNK = 1 << 20
MAX_LINE = 64 << 10         # characters of one console line kept (a kernel line is at most 1 KiB)


class LineCap:
    """Cuts every line of a stream of text at MAX_LINE characters, across chunk boundaries."""

    def __init__(self, limit: int = MAX_LINE):
        self.limit = limit
        self.col = 0            # characters of the current line seen so far

    def __call__(self, text: str) -> str:
        pieces = text.split("\n")
        out = []
        for i, piece in enumerate(pieces):
            if i:
                self.col = 0
            room = self.limit - self.col
            out.append(piece[:room] if room > 0 else "")
            self.col += len(piece)
        return "\n".join(out)


def _check(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        raise UserError(f"{path}: cannot read console log: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a directory, expected a console log file")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: is {files.describe_mode(st.st_mode)}, expected a console log file; "
                        f"save the log to a file first")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: cannot read console log: permission denied")


def analyze_file(path: str) -> list[Finding]:
    """Findings of one console log, streamed in chunks (invalid UTF-8 is replaced)."""
    analyzer = ConsoleAnalyzer()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    cap = LineCap()
    try:
        with files.open_regular(path, "console log") as f:
            while chunk := f.read(CHUNK):
                analyzer.feed(cap(decoder.decode(chunk)))
    except OSError as e:
        raise UserError(f"{path}: cannot read console log: {e.strerror or e}") from None
    analyzer.feed(cap(decoder.decode(b"", final=True)))
    analyzer.finish()
    return analyzer.findings


def main(paths: list[str], as_json: bool, out: TextIO = sys.stdout) -> int:
    for p in paths:          # every file is checked before anything is printed
        _check(p)
    for p in paths:
        findings = analyze_file(p)
        if as_json:
            out.write(json.dumps({"file": p, "findings": [f.to_json() for f in findings]}) + "\n")
            continue
        for f in findings:
            count = f" (x{f.count})" if f.count > 1 else ""
            out.write(f"{p}:{f.line}: {f.kind} {f.type} {f.title}{count}\n")
    return 0
