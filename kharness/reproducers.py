"""The reproducer suite: our zero-range programs (reproducers/manifest.yaml) as jobs.

What differs from other suites, and only that: plan (variants x tests x iterations),
build the binaries on the host before the first boot (they reach the guest on the tools
disk, tools_disk.py), the command line, and how to read its result (exit status, MISMATCH
lines, the variant's path proof). The lifecycle is lifecycle.py's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from . import catalogue, proof, verdict
from .catalogue import Reproducer
from .config import RunConfig, check_job_count, select_variants
from .errors import InfraError, UserError
from .lifecycle import Watched, best_effort, copy_windows, watched
from .model import Job, JobResult, Variant
from .proof import PROOFS
from .session import GUEST_DIR, TEST_MNT, Session

NAME = "reproducers"


class ReproducerSuite:
    name = NAME
    config_sections: dict = {}   # `tests:` is the run config's own key
    guest_unit = "test"          # -j N: each test's jobs may go to any guest (its repeats together)

    def __init__(self, cat: dict[str, Reproducer] | None = None):
        self._cat = cat

    @property
    def catalogue(self) -> dict[str, Reproducer]:
        if self._cat is None:
            self._cat = catalogue.load()
        return self._cat

    def owns(self, name: str) -> bool:
        """Names on the command line (--only, repro) that are this suite's: anything not another's."""
        return True

    def plan(self, cfg: RunConfig, only: list[str] | None = None, variants: list[str] | None = None,
             repeat: int | None = None, duration: int | None = None
             ) -> tuple[list[Job], list[tuple[Variant, Reproducer, str]]]:
        """Jobs in run order (variant-major, so a variant's fs is set up once per boot), plus the
        (variant, test, reason) pairs that do not apply. only=None: the config's `tests:`."""
        names = cfg.tests if only is None else only
        if not names:
            return [], []
        chosen = [catalogue.lookup(self.catalogue, n) for n in names]
        vs = select_variants(cfg, variants)
        if not vs:
            raise UserError(f"{cfg.path}: variants: the config lists no variants")
        n = repeat or cfg.repeat
        pairs = [(v, t) for v in vs for t in chosen]
        check_job_count(cfg, n * sum(t.applies_to(v) for v, t in pairs),
                        f"{len(vs)} variant(s) x {len(chosen)} test(s) x repeat {n}")
        jobs, skipped = [], []
        for v, t in pairs:
            if not t.applies_to(v):
                skipped.append((v, t, t.not_applicable_reason(v)))
                continue
            jobs += [Job(NAME, v, t, i, n, duration) for i in range(1, n + 1)]
        return jobs, skipped

    def prepare(self, cfg: RunConfig, run_dir: Path, jobs: list[Job]) -> "Built":
        """Each planned test's binary (or script), built now for the tools disk. A test that
        does not build is not the run's end: its jobs are errors that say why."""
        built = Built()
        for t in {j.test.name: j.test for j in jobs}.values():
            try:
                built.tools[t.name] = catalogue.build(t, run_dir / "setup.log")
            except InfraError as e:
                built.errors[t.name] = str(e)
        return built


class Built:
    """The reproducer part of one run: the base image, and the binaries for the tools disk."""
    image = None

    def __init__(self):
        self.tools: dict[str, Path] = {}     # /opt/kharness/bin/NAME in the guest
        self.errors: dict[str, str] = {}     # tests that did not build: why

    def run(self, s: Session, jobs: list[Job]) -> Iterator[JobResult]:
        for job in jobs:
            yield execute(s, job, s.run_dir / "jobs" / job.variant.name / job.dir_name,
                          self.errors.get(job.test.name))


def argv(job: Job, remote: str) -> list[str]:
    t = job.test
    if not t.source:
        return ["sh", remote, TEST_MNT, *t.args]
    if job.duration:
        # The C reproducers stop at whichever of -n/-t ends first; a later -n/-t wins.
        return [remote, *t.args, "-n", "2000000000", "-t", str(job.duration)]
    return [remote, *t.args]


def execute(s: Session, job: Job, job_dir: Path, build_error: str | None = None) -> JobResult:
    job_dir.mkdir(parents=True, exist_ok=True)
    expect = job.test.expect
    try:
        if build_error:
            raise InfraError(build_error)
        guest = s.guest_ready()
        skip = s.prepare(guest, job.variant, s.run_dir / "setup.log")
        if skip:
            return JobResult(job, verdict.skipped(skip, expect), None, job_dir)
    except InfraError as e:
        return JobResult(job, verdict.judge(None, [], expect=expect, error=str(e)), None, job_dir)
    remote = f"{GUEST_DIR}/bin/{job.test.name}"

    path_proof = PROOFS.get(job.variant.proof)
    with watched(s, guest, job.id, f"{TEST_MNT}/{job.id}", argv(job, remote), timeout=job.timeout,
                 stdout=job_dir / "stdout", stderr=job_dir / "stderr", evidence_dir=lambda: job_dir,
                 path_proof=path_proof, progress_bound=job.test.progress_bound) as w:
        unproven = _check_proof(w, path_proof, job_dir)
    best_effort(copy_windows, s, w, {job_dir / "console.txt": w.window})
    v = verdict.judge(w.outcome, w.findings, expect=expect, warn_is_failure=s.cfg.warn_is_failure,
                      timeout=job.timeout, unproven=unproven)
    return JobResult(job, v, w.outcome, job_dir, w.guest_seconds, w.window)


def _check_proof(w: Watched, p: proof.Proof | None, job_dir: Path) -> str | None:
    """The variant's path proof: did its counters move during the job? (None: proven or no proof.)"""
    if not p or w.trouble or w.outcome.exit_status == verdict.SKIP_STATUS:
        return None
    unproven = proof.unproven(p, w.proof_before, w.proof_after)
    best_effort(_write_proof, job_dir / "path-proof.txt", p, w.proof_before, w.proof_after, unproven)
    return unproven


def _write_proof(dest: Path, p: proof.Proof, before: str | None, after: str | None, unproven: str | None) -> None:
    moved = proof.describe(proof.delta(before or "", after or "")) if before and after else "-"
    dest.write_text(f"proof: {p.name} ({p.what}), counters {p.path}\n"
                    f"verdict: {unproven or 'proven'}\nmoved during the job: {moved}\n"
                    f"--- before\n{before or '(unreadable)'}\n--- after\n{after or '(unreadable)'}\n")


def describe(cat: dict[str, Reproducer]) -> list[str]:
    """`harness.py list`'s catalogue lines."""
    return [f"  {t.name:40} [{', '.join(t.filesystems + t.needs)}] {t.description}" for t in cat.values()]

