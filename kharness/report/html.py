"""report.html (one self-contained static page per run) and results/index.html.

Jinja2 with autoescaping on: everything from the guest (job output, console lines,
titles) is text, never markup. No scripts, no external resources: the page opens
from a CI artifact, a mail attachment or file:// the same way.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import files
from ..errors import UserError
from .history import History

if TYPE_CHECKING:
    from .runview import RunView

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
EXCERPT_BEFORE, EXCERPT_AFTER = 8, 40
TAIL_LINES = 30

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                   trim_blocks=True, lstrip_blocks=True)


def preload() -> None:
    """Parse and compile the pages' templates now (Jinja2 does it on first use, about 0.1 s
    here): a background thread calls this while a run's first guest boots."""
    for name in ("report.html.j2", "index.html.j2"):
        _env.get_template(name)


def console_excerpt(run_dir: Path, job_dir: str, console_file: str, line: int) -> list[tuple[int, str]]:
    """console.log lines around `line`, with their numbers: from the job's console.txt
    (numbered lines of its window) when it covers them, else from the console log itself."""
    lo, hi = line - EXCERPT_BEFORE, line + EXCERPT_AFTER
    out: list[tuple[int, str]] = []
    window = run_dir / job_dir / "console.txt"
    try:
        with files.open_text(window, "console window") as f:
            for raw in files.bounded_lines(f):
                num, _, text = raw.lstrip().partition("  ")
                if not num.isdigit():
                    continue
                n = int(num)
                if n > hi:
                    break
                if n >= lo:
                    out.append((n, text.rstrip("\n")))
    except (OSError, UserError):        # missing, or not a regular file: no excerpt
        pass
    if out:
        return out
    try:
        with files.open_text(run_dir / console_file, "console log") as f:
            for n, text in enumerate(itertools.islice(files.bounded_lines(f), max(lo - 1, 0), hi), start=max(lo, 1)):
                out.append((n, text.rstrip("\n")))
    except (OSError, UserError):
        pass
    return out


def tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = 64 << 10) -> str:
    try:
        with files.open_regular(path, "job output") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(size - max_bytes, 0))
            data = f.read(max_bytes).decode("utf-8", errors="replace")
    except (OSError, UserError):
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _evidence(v: "RunView"):
    """Per failing job: what the page shows under its heading."""
    rec = v.rec
    for g in v.groups:
        for j in g.failed:
            yield {
                "group": g, "job": j,
                "findings": [{**f.to_json(), "excerpt": console_excerpt(rec.dir, j.dir, j.console_file, f.line)}
                             for f in j.findings],
                "stderr": tail(rec.dir / j.dir / "stderr"),
                "stdout": tail(rec.dir / j.dir / "stdout"),
                "files": [name for name in ("stdout", "stderr", "console.txt", "evidence.txt")
                          if (rec.dir / j.dir / name).exists()],
            }


def write_report(path: Path, v: "RunView") -> None:
    page = _env.get_template("report.html.j2").render(v=v, rec=v.rec, evidence=list(_evidence(v)))
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(path)


def trend_bars(rows, width: int = 600, height: int = 60) -> list[dict]:
    """SVG bars for runs, oldest left: total height = jobs, red part = failed jobs."""
    rows = list(reversed(rows))[-60:]
    if not rows:
        return []
    most = max(r.jobs for r in rows) or 1
    w = width / max(len(rows), 1)
    bars = []
    for i, r in enumerate(rows):
        h = height * r.jobs / most
        fh = height * r.failed / most
        bars.append({"x": round(i * w, 1), "w": round(max(w - 2, 1), 1), "h": round(h, 1),
                     "fh": round(fh, 1), "y": round(height - h, 1), "fy": round(height - fh, 1), "run": r})
    return bars


def write_index(path: Path, hist: History) -> None:
    rows = hist.runs()
    configs: dict[str, list] = {}
    for r in rows:
        configs.setdefault(r.config, []).append(r)
    charts = {c: trend_bars(rs) for c, rs in configs.items()}
    root = path.parent
    page = _env.get_template("index.html.j2").render(
        rows=rows, charts=charts, has_dir={r.name: (root / r.name / "report.html").exists() for r in rows})
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(path)
