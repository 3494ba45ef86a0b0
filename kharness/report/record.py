"""A run directory read back as values: everything a report is rendered from.

summary.json is the record of a run (results.write_run writes it on every exit path);
each job's files stay in its directory under jobs/. Reports (junit.xml, report.html,
summary.txt) are always rendered from these records, never from live objects, so
`harness.py report RUN` re-renders exactly what the run itself wrote, and a merge of
shards is just a merge of records.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

OK = ("pass", "skip")


@dataclass
class JobRecord:
    id: str                     # ext4.zero-range-basic(.2 with repeats)
    variant: str
    test: str
    iteration: int
    status: str                 # verdict.VERDICTS
    message: str
    expected: str
    duration: float | None
    exit_status: int | None
    findings: list[dict]        # console.Finding.to_json()
    console_lines: list[int] | None
    detail: str                 # fstests: .out.bad diff head
    dir: str                    # relative to the run directory
    console_file: str = "console.log"   # relative to the run directory (shards: shards/<run>/console.log)
    repeat: int = 1

    @property
    def key(self) -> str:
        """The job without its iteration: what history and shards group by."""
        return f"{self.variant}.{self.test}"

    @property
    def name(self) -> str:
        return self.test if self.repeat == 1 else f"{self.test}#{self.iteration}"

    @property
    def ok(self) -> bool:
        return self.status in OK


@dataclass
class NotRun:
    id: str
    variant: str
    name: str


@dataclass
class RunRecord:
    dir: Path
    name: str
    config: str                 # config name (history is kept per config name)
    started: str
    seconds: float
    interrupted: bool
    properties: dict
    boots: int
    boot_seconds: list[float]
    jobs: list[JobRecord]
    not_run: list[NotRun]
    not_run_reason: str
    not_applicable: list[dict]  # {"variant", "test", "reason"}
    findings_outside: list[dict]
    kind: str = "run"           # run | nightly | shard | merged
    shard: str | None = None    # "2/4"
    plan: list[str] = field(default_factory=list)   # every job id of the unsharded plan
    kernel: dict = field(default_factory=dict)      # kernel.json
    baseline: "RunRecord | None" = None             # the same jobs on the baseline kernel
    merged_from: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in self.jobs:
            out[j.status] = out.get(j.status, 0) + 1
        if self.not_run:
            out["error"] = out.get("error", 0) + len(self.not_run)
        return out

    @property
    def failed(self) -> bool:
        return any(not j.ok for j in self.jobs) or bool(self.not_run)


def job_record(d: dict) -> JobRecord:
    """One verdict.json (an entry of summary.json "jobs") as a value."""
    variant, test = d["variant"], d["test"]
    iteration = d.get("iteration", 1)
    job_id = d["job"]
    # Records written before "repeat" was kept: an id longer than variant.test carries an iteration.
    repeat = d.get("repeat") or (1 if job_id == f"{variant}.{test}" else 2)
    name = test if repeat == 1 else f"{test}#{iteration}"
    rel = d.get("dir") or f"jobs/{variant}/{name.replace('#', '.')}"
    return JobRecord(id=job_id, variant=variant, test=test, iteration=iteration, status=d["status"],
                     message=d.get("message", ""), expected=d.get("expected", "pass"),
                     duration=d.get("duration"), exit_status=d.get("exit_status"),
                     findings=d.get("findings", []), console_lines=d.get("console_lines"),
                     detail=d.get("detail", ""), dir=rel, console_file=d.get("console_file", "console.log"),
                     repeat=repeat)


def _not_run(x) -> NotRun:
    if isinstance(x, str):          # runs written before the record carried variant and name
        variant, _, rest = x.partition(".")
        return NotRun(x, variant, rest)
    return NotRun(x["job"], x["variant"], x["name"])


def load(run_dir: Path) -> RunRecord:
    """Read a run directory; one clear line if it is not one."""
    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{run_dir}: not a kharness run directory (no summary.json); "
                        f"give a directory under results/, e.g. results/latest")
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable run record ({e}); the run may have been cut short")
    try:
        kernel = json.loads((run_dir / "kernel.json").read_text())
    except (OSError, ValueError):
        kernel = {}
    props = data.get("properties", {})
    rec = RunRecord(
        dir=run_dir, name=data.get("run", run_dir.name), config=props.get("config", ""),
        started=data.get("started", ""), seconds=data.get("seconds", 0.0),
        interrupted=data.get("interrupted", False), properties=props,
        boots=data.get("boots", 0), boot_seconds=data.get("boot_seconds", []),
        jobs=[job_record(j) for j in data.get("jobs", [])],
        not_run=[_not_run(x) for x in data.get("not_run", [])],
        not_run_reason=data.get("not_run_reason", "not run"),
        not_applicable=data.get("not_applicable", []),
        findings_outside=data.get("findings_outside_jobs", []),
        kind=data.get("kind", "run"), shard=data.get("shard"), plan=data.get("plan", []),
        kernel=kernel, merged_from=data.get("merged_from", []))
    if (run_dir / "baseline" / "summary.json").exists():
        rec.baseline = load(run_dir / "baseline")
    return rec
