"""What a report shows of a run: its jobs grouped per variant.test, with their labels.

    view(rec, history) -> RunView: a JobGroup per variant.test (its iterations, repeat
    tally, baseline label, history), the matrix axes, new failures, regressions, flaky
    jobs; job_labels(view) -> the junit label properties
Pure over a RunRecord and History. render.py builds it; html.py and text.py show it
(they import this module, not render.py, which imports them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .history import History
from .labels import JobHistory, Tally, baseline_label, tallies
from .record import JobRecord, RunRecord

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
