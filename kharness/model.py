"""The values every layer shares: what a job is, what happened to it, and its verdict.

Plain dataclasses; this module imports nothing of ours, so that config, console,
guest, verdict, the lifecycle, the suites and the reports can all speak in the
same terms without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

VERDICTS = ("pass", "fail", "hang", "crash", "warn", "error", "skip")
TROUBLE_KINDS = ("hang", "crash", "warn", "error")


@dataclass
class Variant:
    """A filesystem set-up the jobs run on."""
    name: str
    fstype: str
    mkfs: str = ""
    mount: str = ""
    proof: str = ""                     # kharness/proof.py: counters that must move during each job


@dataclass
class Finding:
    """One kernel problem report found on the console (kharness/console.py)."""
    kind: str      # verdict class: hang | crash | warn
    type: str      # HANG, SOFTLOCKUP, WARNING, LOCKDEP, KASAN, ... (console.KIND)
    title: str     # syzbot-style title
    line: int      # 1-based line in the stream where the (first) report starts
    report: str    # the report's lines, prefixes removed
    count: int = 1
    lines: list[int] = field(default_factory=list)   # start line of each occurrence (the first 1000: console.py)
    corrupted: bool = False   # the report was cut, interleaved or without a usable stack (syzbot's CORRUPTED)
    alt_titles: list[str] = field(default_factory=list)   # other titles syzbot may give the same report
    console: str = ""         # the console file `line` is in, when not the run's console.log (-j N: guest k's)

    def to_json(self) -> dict:
        return {"kind": self.kind, "type": self.type, "title": self.title, "line": self.line,
                "count": self.count, "report": self.report, **({"console": self.console} if self.console else {})}


@dataclass(frozen=True)
class Trouble:
    """Why the harness stopped waiting for a guest command, and what kind of verdict that is."""
    kind: str      # one of TROUBLE_KINDS
    why: str

    def __post_init__(self):
        if self.kind not in TROUBLE_KINDS:
            raise ValueError(f"trouble kind {self.kind!r} is not one of {TROUBLE_KINDS}")

    def __str__(self) -> str:
        return f"{self.kind}: {self.why}"


@dataclass
class Outcome:
    """What a command did in the guest. exit_status is None when it did not finish."""
    exit_status: int | None
    duration: float              # wall time seen by the harness
    timed_out: bool = False
    aborted: Trouble | None = None   # why the harness stopped waiting (a hang finding, a crash)
    lost: str | None = None      # the SSH connection died under it
    stdout: str = ""             # tail, for messages; the whole output is in the job's files
    stderr: str = ""


@dataclass
class Verdict:
    status: str                  # one of VERDICTS
    message: str                 # one line: the title of the evidence
    expected: str = "pass"       # what the job declared it expects
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self):
        if self.status not in VERDICTS:
            raise ValueError(f"verdict {self.status!r} is not one of {VERDICTS}")

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "skip")


class Test(Protocol):
    """What every suite's test description has (catalogue.Reproducer, fstests' FstestsTest)."""
    name: str
    timeout: int
    expect: str


@dataclass(frozen=True)
class Job:
    suite: str                   # the suite that plans and runs it (kharness/suites.py)
    variant: Variant
    test: Test
    iteration: int
    repeat: int
    duration: int | None = None  # seconds: run the reproducer for this long instead of its default

    @property
    def timeout(self) -> int:
        return self.test.timeout + (self.duration or 0)

    @property
    def name(self) -> str:
        return self.test.name if self.repeat == 1 else f"{self.test.name}#{self.iteration}"

    @property
    def id(self) -> str:
        return f"{self.variant.name}.{self.test.name}" + (f".{self.iteration}" if self.repeat > 1 else "")

    @property
    def dir_name(self) -> str:
        """jobs/<variant>/<this>: the job's directory in the run directory."""
        return self.name.replace("#", ".")


@dataclass
class JobResult:
    job: Job
    verdict: Verdict
    outcome: Outcome | None
    dir: Path
    guest_seconds: float | None = None   # the command's own time inside the guest
    console_lines: tuple[int, int] | None = None
    detail: str = ""                     # the suite's failure text (fstests: .out.bad diff head)
    console_file: str = "console.log"    # the guest's console file console_lines are in (-j N: console-k.log)
