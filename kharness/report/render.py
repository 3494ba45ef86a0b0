"""Render a run directory: junit.xml, report.html, summary.txt, and the results index.

    record.read_run(run dir) -> RunRecord (how the run judged, warn_is_failure, included)
    history: record the run, then what each job did in earlier runs of the config
    view(): groups jobs per variant.test with their labels (repeats, baseline, history)
    junit.write / html.write_report / text.summary / html.write_index
Called at the end of every run, and by `harness.py report`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import html, junit, text
from .history import History
from .labels import JobHistory, Tally, baseline_label, tallies
from .record import JobRecord, RunRecord, read_run

# Worst first: the status a matrix cell shows for a job with several iterations.
SEVERITY = ("crash", "hang", "error", "fail", "warn", "pass", "skip")


@dataclass
class JobGroup:
    key: str
    variant: str
    test: str
    jobs: list[JobRecord]
    tally: Tally
    baseline: Tally | None = None
    baseline_label: str | None = None
    history: JobHistory | None = None

    @property
    def status(self) -> str:
        return min((j.status for j in self.jobs), key=SEVERITY.index)

    @property
    def failed(self) -> list[JobRecord]:
        return [j for j in self.jobs if not j.ok]

    @property
    def labels(self) -> list[str]:
        out = []
        if self.tally.label.startswith("flaky"):
            out.append(self.tally.label)
        if self.baseline_label and self.baseline_label != "stable":
            out.append(self.baseline_label)
        if self.history and self.history.new_failure and self.history.previous:
            out.append("new failure")
        return out


@dataclass
class RunView:
    rec: RunRecord
    groups: list[JobGroup]
    previous_run: str | None = None          # the last earlier run of the config
    rendered: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()))

    @property
    def variants(self) -> list[str]:
        """Matrix columns, in run order (jobs that did not run too)."""
        return list(dict.fromkeys([g.variant for g in self.groups] + [n.variant for n in self.rec.not_run]))

    @property
    def tests(self) -> list[str]:
        """Matrix rows, in run order."""
        return list(dict.fromkeys([g.test for g in self.groups] + [n.name.split("#")[0] for n in self.rec.not_run]))

    def cell(self, variant: str, test: str) -> JobGroup | None:
        return self._by_key.get(f"{variant}.{test}")

    def __post_init__(self):
        self._by_key = {g.key: g for g in self.groups}

    @property
    def new_failures(self) -> list[JobGroup]:
        return [g for g in self.groups if g.history and g.history.new_failure and g.history.previous]

    @property
    def still_failing(self) -> list[JobGroup]:
        return [g for g in self.groups if g.tally.any_failed and g not in self.new_failures]

    @property
    def regressions(self) -> list[JobGroup]:
        return [g for g in self.groups if g.baseline_label == "regression"]

    @property
    def flaky(self) -> list[JobGroup]:
        return [g for g in self.groups if g.tally.label.startswith("flaky")]


def view(rec: RunRecord, hist: History | None) -> RunView:
    ts = tallies(rec.jobs)
    base = tallies(rec.baseline.jobs) if rec.baseline else {}
    histories = hist.job_histories(rec) if hist else {}
    groups: dict[str, JobGroup] = {}
    for j in rec.jobs:
        g = groups.get(j.key)
        if g is None:
            g = groups[j.key] = JobGroup(j.key, j.variant, j.test, [], ts[j.key])
            g.baseline = base.get(j.key)
            g.baseline_label = baseline_label(g.tally, g.baseline)
            g.history = histories.get(j.key)
        g.jobs.append(j)
    previous = None
    if hist:
        earlier = [r for r in hist.runs(rec.config) if (r.started, r.name) < (rec.started, rec.name)]
        previous = earlier[0].name if earlier else None
    return RunView(rec, list(groups.values()), previous)


def job_labels(v: RunView) -> dict[str, str]:
    return {g.key: "; ".join(g.labels) for g in v.groups if g.labels}


def render_run(run_dir: Path) -> RunView:
    """(Re)write junit.xml, report.html and summary.txt of a run dir from its record alone;
    record it in history. A baseline (RUN/baseline) has no history of its own: its run is
    the one in history."""
    rec = read_run(run_dir)
    root = rec.dir.parent
    hist = History(root) if rec.kind != "baseline" else None
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
