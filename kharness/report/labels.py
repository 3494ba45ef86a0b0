"""Labels a report puts on each job (variant.test): pure functions over records.

    repeats    xfstests-bld's convention: failed every time = failing,
               some of the time = "flaky k/N", never = pass
    baseline   the same jobs on the same base without the series:
               regression (fails only with the series), fixed (fails only without),
               still failing (both), stable (neither)
    history    previous runs of the same config: new failure, failing since, streak,
               last pass, flake rate (kharness/report/history.py supplies the outcomes)

It imports nothing of ours: record.py (which writes the repeat tallies into summary.json)
uses these rules, so they must not depend on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol


class Judged(Protocol):
    """A job as the labels see it (record.JobRecord is one)."""
    @property
    def key(self) -> str: ...          # variant.test

    @property
    def status(self) -> str: ...

    @property
    def ok(self) -> bool: ...


@dataclass
class Tally:
    key: str
    failed: int = 0
    runs: int = 0

    @property
    def label(self) -> str:
        if self.runs == 0:
            return "not run"
        if self.failed == 0:
            return "pass"
        if self.failed == self.runs:
            return "failing"
        return f"flaky {self.failed}/{self.runs}"

    @property
    def any_failed(self) -> bool:
        return self.failed > 0


def tallies(jobs: Iterable[Judged]) -> dict[str, Tally]:
    """variant.test -> how many of its runs failed; skips count as neither."""
    out: dict[str, Tally] = {}
    for j in jobs:
        t = out.setdefault(j.key, Tally(j.key))
        if j.status == "skip":
            continue
        t.runs += 1
        t.failed += not j.ok
    return out


def baseline_label(ours: Tally, base: Tally | None) -> str | None:
    """The question a series author asks first: did my patches do this?"""
    if base is None or base.runs == 0 or ours.runs == 0:
        return None
    if ours.any_failed and not base.any_failed:
        return "regression"
    if base.any_failed and not ours.any_failed:
        return "fixed"
    if ours.any_failed:
        return "still failing"
    return "stable"


@dataclass
class JobHistory:
    """One job's record over earlier runs of the same config (oldest first) plus this one."""
    previous: str | None = None          # the latest earlier run that had this job
    previous_failed: bool | None = None
    last_pass: str | None = None         # latest run (this one included) where it passed
    failing_since: str | None = None     # first run of the current failure streak
    streak: int = 0                      # consecutive failing runs, ending with this one
    flake_rate: float | None = None      # failing runs / runs, over the window
    window: int = 0

    @property
    def new_failure(self) -> bool:
        """Fails now and did not fail the last time it ran (or never ran before)."""
        return self.streak > 0 and not self.previous_failed


def job_history(earlier: list[tuple[str, bool]], run: str, failed_now: bool, window: int = 10) -> JobHistory:
    """earlier: (run name, failed) for previous runs containing the job, oldest first."""
    h = JobHistory()
    if earlier:
        h.previous, h.previous_failed = earlier[-1]
    seq = earlier + [(run, failed_now)]
    for name, failed in reversed(seq):
        if not failed:
            h.last_pass = name
            break
    for name, failed in reversed(seq):
        if not failed:
            break
        h.streak += 1
        h.failing_since = name
    recent = seq[-window:]
    h.window = len(recent)
    h.flake_rate = sum(f for _, f in recent) / len(recent)
    return h
