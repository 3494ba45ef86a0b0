"""The registered suites, and the small protocol each one implements.

A suite says only what differs between suites: which jobs a config plans, what its
guest image needs, how a job runs in the guest (through lifecycle.watched) and how to
read its own result. The runner loops over SUITES and never asks which suite a job is.
Suites own their config sections: registering one here tells config.py its key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Protocol

from . import config, fstests
from .config import RunConfig
from .model import Job, JobResult, Test, Variant
from .reproducers import ReproducerSuite
from .session import Session


class Prepared(Protocol):
    image: object | None        # the image artifact this suite's jobs boot (None: the base image)
    tools: dict[str, Path]      # files for the tools disk's bin/ (tools_disk.py): name -> host file

    def run(self, s: Session, jobs: list[Job]) -> Iterator[JobResult]: ...


class Suite(Protocol):
    name: str
    config_sections: dict        # top-level config key -> (dataclass, check(cfg, path))
    guest_unit: str              # -j N: "test" (a test's repeats share a guest) or "variant" (all its jobs do)

    def owns(self, name: str) -> bool:
        """Is a name given on the command line (--only, repro) one of this suite's tests?"""

    def plan(self, cfg: RunConfig, only: list[str] | None = None, variants: list[str] | None = None,
             repeat: int | None = None, duration: int | None = None
             ) -> tuple[list[Job], list[tuple[Variant, Test, str]]]:
        """Jobs in run order and the (variant, test, why) that do not apply. only=None: the config's."""

    def prepare(self, cfg: RunConfig, run_dir: Path, jobs: list[Job]) -> Prepared:
        """Build what this suite's jobs need before the first boot (its image, or None for the
        base image); the Prepared runs the jobs on the session's guests, a JobResult as each ends."""


# Order matters for --only: the first suite that owns a name gets it (the reproducers own the rest).
SUITES: list[Suite] = [fstests.FstestsSuite(), ReproducerSuite()]
BY_NAME = {s.name: s for s in SUITES}

for _s in SUITES:
    for _key, (_cls, _check) in _s.config_sections.items():
        config.register_section(_key, _cls, _check)


def split_only(only: list[str] | None) -> dict[str, list[str] | None]:
    """--only names -> {suite name: its names}; every suite gets None when --only is not given."""
    if not only:
        return {s.name: None for s in SUITES}
    out: dict[str, list[str] | None] = {s.name: [] for s in SUITES}
    for n in only:
        owner = next(s for s in SUITES if s.owns(n))
        out[owner.name].append(n)
    return out


def guest_unit(job: Job) -> str:
    """What must run on the same guest as this job (`-j N`, shard.by_guest): the suite says
    whether its jobs of one variant share state in the guest (fstests: one ./check, its
    results and check.time) or only a test's own repeats belong together (reproducers)."""
    together = BY_NAME[job.suite].guest_unit
    return f"{job.variant.name}.{job.test.name}" if together == "test" else f"{job.variant.name}.{job.suite}"


def owner(name: str) -> Suite:
    return next(s for s in SUITES if s.owns(name))
