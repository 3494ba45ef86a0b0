"""`harness.py console LOG [LOG...] [--json]`: kernel problems found in saved console logs.

Text mode: one line per finding, `FILE:LINE: KIND TYPE TITLE` (plus `(xN)` when the same
report was seen N times).  JSON mode: one object per file per line,
{"file": LOG, "findings": [Finding.to_json(), ...]}.  Files are read in chunks, never whole.
"""

from __future__ import annotations

import codecs
import json
import os
import stat
import sys
from typing import TextIO

from .console import ConsoleAnalyzer
from .model import Finding
from .errors import UserError

CHUNK = 1 << 20


def _check(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        raise UserError(f"{path}: cannot read console log: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a directory, expected a console log file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: cannot read console log: permission denied")


def analyze_file(path: str) -> list[Finding]:
    """Findings of one console log, streamed in chunks (invalid UTF-8 is replaced)."""
    analyzer = ConsoleAnalyzer()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                analyzer.feed(decoder.decode(chunk))
    except OSError as e:
        raise UserError(f"{path}: cannot read console log: {e.strerror or e}") from None
    analyzer.feed(decoder.decode(b"", final=True))
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
