"""Render a run directory: junit.xml, report.html, summary.txt, and the results index.

    record.read_run(run dir) -> RunRecord (how the run judged, warn_is_failure, included)
    history: record the run, then what each job did in earlier runs of the config
    runview.view(): groups jobs per variant.test with their labels (repeats, baseline, history)
    junit.write / html.write_report / text.summary / html.write_index
Called at the end of every run, and by `harness.py report`.
"""
from __future__ import annotations

from pathlib import Path

from . import html, junit, text
from .history import History
from .record import NO_HISTORY, read_run
from .runview import RunView, job_labels, view


def render_run(run_dir: Path) -> RunView:
    """(Re)write junit.xml, report.html and summary.txt of a run dir from its record alone;
    record it in history. A baseline (RUN/baseline) has no history of its own: its run is
    the one in history."""
    rec = read_run(run_dir)
    root = rec.dir.parent
    hist = History(root) if rec.kind not in NO_HISTORY else None
    try:
        if hist:
            if hist.created:        # first render here: earlier run directories become history
                hist.backfill(root, read_run)
            hist.record(rec)
        v = view(rec, hist)
        junit.write(rec.dir / "junit.xml", rec, job_labels(v))
        html.write_report(rec.dir / "report.html", v)
        (rec.dir / "summary.txt").write_text(text.summary(v))
        if hist:
            html.write_index(root / "index.html", hist)
    finally:
        if hist:
            hist.close()
    return v
