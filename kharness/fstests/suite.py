"""The fstests suite: what differs from other suites, and only that.

    plan      selectors x variants x iterations (plan.py)
    prepare   the guest image with fstests built in (source.py), or why fstests is unavailable
    run       per variant: mkfs+mount (Session.prepare), that variant's local.config section,
              `./check -R xunit -s SECTION TESTS` through lifecycle.watched, with the suite's own
              watch: the `run fstests TEST at ...` console lines say which test runs, and its
              watchdog (check.time history, else fstests.test_timeout) stops it
    read      result.xml / check's output per test (output.py), each test judged by verdict.judge
              from fstests' status plus the findings of its own window of the console

After trouble the lifecycle stops the guest; the tests not reached resume on a fresh one.
"""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Iterator

from .. import ui, verdict
from ..errors import InfraError, UserError
from ..lifecycle import Watched, best_effort, copy_windows, watched
from ..model import Job, JobResult, Outcome, Trouble
from ..session import Session
from .config import FstestsConfig, check_config, fstests_config, is_selector, is_test_name, render_local_config, \
    section_name
from .output import CaseResult, check_output_of, failure_detail, findings_in, format_check_time, \
    case_outcome, judge_reported, judge_stopped, stopped_outcome, parse_check_output, parse_check_time, parse_xunit, test_starts, watchdog_for, windows
from .plan import plan
from .pull import ConsoleTail, copy_test_files, golden_and_bad, load_history, pull_results, save_history
from .source import GUEST_FSTESTS, SourceTree, Unavailable, _last_line, build_image, image_meta, plan_source, \
    resolve_source

NAME = "fstests"
class FstestsSuite:
    name = NAME
    config_sections = {"fstests": (FstestsConfig, check_config)}
    guest_unit = "variant"       # -j N: a variant's tests run in one ./check (its results/, check.time)

    def owns(self, name: str) -> bool:
        return is_selector(name)

    def plan(self, cfg, only=None, variants=None, repeat=None, duration=None):
        jobs, skipped = plan(cfg, only, variants=variants, repeat=repeat)
        if only and jobs:
            # Named on the command line (repro generic/363, --only): without a source that is bad
            # input, refused before anything is created. The config's own fstests.tests without a
            # source still run as errors naming fstests.source, beside the other jobs.
            try:
                plan_source(fstests_config(cfg))
            except Unavailable as e:
                raise UserError(f"{', '.join(only)}: fstests is unavailable: {e}") from None
        return jobs, skipped

    def prepare(self, cfg, run_dir: Path, jobs: list[Job]) -> "Prepared":
        """Resolve the source and build (or find) the fstests image, if any fstests job is planned.
        Never raises for "fstests unavailable": the jobs will say why."""
        p = Prepared(cfg, run_dir)
        if not jobs:
            return p
        ui.stage("fstests")
        try:
            p.src = resolve_source(p.fst, run_dir / "fstests-build.log")
            with ui.progress("guest image with fstests") as bar:
                p.image, hit = build_image(cfg, p.src, run_dir / "image-build.log", progress=bar.update)
                bar.update("cache hit" if hit else "built")
        except Unavailable as e:
            p.unavailable = str(e)
        except (InfraError, UserError) as e:
            p.unavailable = f"fstests image: {str(e).splitlines()[0]}"
        if p.unavailable:
            ui.warn(f"fstests jobs will be errors: {p.unavailable}")
            return p
        p.meta = {**image_meta(p.image), "origin": p.src.origin, "commit": p.src.commit, "image_key": p.image.key}
        out = run_dir / "fstests"
        out.mkdir(exist_ok=True)
        (out / "fstests.json").write_text(json.dumps(p.meta, indent=2) + "\n")
        variants = [v for v in cfg.variants if any(j.variant == v for j in jobs)]
        (out / "local.config").write_text(render_local_config(variants, p.src.origin))
        ui.info(f"fstests {p.src.commit[:12]} ({p.src.origin}); image {p.image.key[:12]}")
        return p


class Prepared:
    """The fstests part of one run: the image to boot, and the runs of ./check."""

    def __init__(self, cfg, run_dir: Path):
        self.cfg = cfg
        self.run_dir = run_dir
        self.fst: FstestsConfig = fstests_config(cfg)
        self.image = None               # ImageArtifact with fstests, when available
        self.tools: dict[str, Path] = {}        # ./check runs from the image: nothing for the tools disk
        self.src: SourceTree | None = None
        self.unavailable: str | None = None
        self.meta: dict = {}

    def run(self, s: Session, jobs: list[Job]) -> Iterator[JobResult]:
        """Run the fstests jobs (grouped by variant and iteration); yields a JobResult per test."""
        groups: dict[tuple, list[Job]] = {}
        for j in jobs:
            groups.setdefault((j.variant.name, j.iteration), []).append(j)
        for group in groups.values():
            if self.unavailable:
                for j in group:
                    yield self._result(j, verdict.errored(self.unavailable))
                continue
            if bad := [j for j in group if not is_test_name(j.test.name)]:   # a group not expanded at plan time
                for j in bad:
                    yield self._result(j, verdict.errored(f"fstests: group {j.test.name!r} could not be expanded "
                                                          "when the run was planned"))
                group = [j for j in group if j not in bad]
            if group:
                yield from self._run_group(s, group)

    def _job_dir(self, job: Job) -> Path:
        d = self.run_dir / "jobs" / job.variant.name / job.dir_name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _result(self, job: Job, v, outcome: Outcome | None = None, detail: str = "", seconds=None,
                lines=None) -> JobResult:
        d = self._job_dir(job)
        for name in ("stdout", "stderr"):
            if not (d / name).exists():
                (d / name).write_text("")
        return JobResult(job, v, outcome, d, seconds, lines, detail)

    def _run_group(self, s: Session, group: list[Job]) -> Iterator[JobResult]:
        v = group[0].variant
        section = section_name(v.name)
        pending = list(group)
        attempt = 0
        history = load_history(v)
        fixed = {t: to.seconds for to in self.fst.timeouts for t in to.tests}
        while pending:
            attempt += 1
            label = section + (f".{group[0].iteration}" if group[0].repeat > 1 else "") + \
                (f".resume{attempt - 1}" if attempt > 1 else "")
            out_dir = self.run_dir / "fstests" / label
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                guest = s.guest_ready()
                skip = s.prepare(guest, v, self.run_dir / "setup.log")
                if skip:
                    for j in pending:
                        yield self._result(j, verdict.skipped(skip))
                    return
                guest.put_text(render_local_config([v], self.src.origin), f"{GUEST_FSTESTS}/local.config", mode=0o644)
                guest.run(f"rm -rf {GUEST_FSTESTS}/results/{section} && mkdir -p {GUEST_FSTESTS}/results", timeout=60)
                # results/check.time is shared by all sections: give ./check this variant's history only.
                guest.put_text(format_check_time(history), f"{GUEST_FSTESTS}/results/check.time", mode=0o644)
            except InfraError as e:
                for j in pending:
                    yield self._result(j, verdict.errored(str(e)))
                return

            names = [j.test.name for j in pending]
            check = f"cd {GUEST_FSTESTS} && ./check -R xunit -s {section} {' '.join(shlex.quote(n) for n in names)}"
            (out_dir / "command").write_text(check + "\n")
            ui.info(f"fstests {section}: ./check -R xunit -s {section} {' '.join(names)}"
                    + (" (resuming after a restart)" if attempt > 1 else ""))
            run = CheckRun(s, guest, section, out_dir, history, self.fst.test_timeout, fixed)
            total = sum(watchdog_for(n, history, self.fst.test_timeout, fixed) for n in names) + 600
            with watched(s, guest, f"fstests.{label}", "-", ["sh", "-c", check], timeout=total,
                         stdout=out_dir / "check.stdout", stderr=out_dir / "check.stderr",
                         evidence_dir=lambda: run.victim_dir(names, pending, self._job_dir, out_dir),
                         watch=run.watch) as w:
                run.note_starts(pull=False)     # a test that started just before the end
                victim = run.test or (names[0] if w.trouble else None)
                pulled = pull_results(guest, section, out_dir, run.pulled) if not w.trouble or guest.ping() \
                    else (out_dir / "result.xml").exists()     # what was pulled while the run went on
            s.mounted = None            # fstests remounts and reformats: the next job mkfs's again
            run.seen += test_starts(run.tail.poll() if run.tail else [])   # the lines up to the window's end

            cases: dict[str, CaseResult] = {}
            if pulled and (out_dir / "result.xml").exists():
                cases = {c.name: c for c in parse_xunit((out_dir / "result.xml").read_text(errors="replace"))}
            stdout_text = (out_dir / "check.stdout").read_text(errors="replace") \
                if (out_dir / "check.stdout").exists() else ""
            for name, c in parse_check_output(stdout_text, names).items():
                cases.setdefault(name, c)
            if w.trouble and victim in cases and victim == run.test:
                del cases[victim]       # a status line printed before the hang was noticed is not the verdict
            wins = windows(run.seen, w.window[0], w.window[1])
            self._update_history(v, history, cases, out_dir)
            best_effort(copy_windows, s, w, {self._job_dir(j) / "console.txt": wins[j.test.name]
                                             for j in pending if j.test.name in wins})

            still = []
            for j in pending:
                name = j.test.name
                d = self._job_dir(j)
                (d / "stdout").write_text(
                    f"fstests {self.meta.get('commit', '?')} ({self.meta.get('origin', '?')}), section {section}\n"
                    f"$ {check}\n" + check_output_of(stdout_text, name, names))
                (d / "stderr").write_text("")
                if name in cases:
                    yield self._judge_reported(j, cases[name], w, wins.get(name), out_dir, stdout_text, names)
                elif w.trouble and name == victim:
                    yield self._judge_stopped(j, run, w, wins.get(name), out_dir)
                elif w.trouble:
                    still.append(j)     # not reached: resume after a fresh boot
                else:
                    why = _last_line(out_dir / "check.stdout") if stdout_text else "no output"
                    yield self._result(j, verdict.errored(f"fstests did not report {name} ({why}); "
                                                          f"see {out_dir / 'check.stdout'}"))
            if w.trouble and len(still) == len(pending):
                for j in still:      # no progress at all: do not loop
                    yield self._result(j, verdict.errored(f"fstests made no progress: {w.outcome.aborted}"))
                return
            pending = still

    def _judge_reported(self, j: Job, c: CaseResult, w: Watched, win, out_dir: Path, stdout_text: str,
                        names: list[str]) -> JobResult:
        """fstests said how the test ended; the console findings of its window may overrule it."""
        d = self._job_dir(j)
        copy_test_files(out_dir, c.name, d)
        v = judge_reported(c, findings_in(w.findings, win), self.cfg.warn_is_failure)
        golden, bad = golden_and_bad(self.src.path, out_dir, c.name)
        detail = failure_detail(c, v, golden, bad, check_output_of(stdout_text, c.name, names))
        return self._result(j, v, case_outcome(c), detail, c.seconds, win)

    def _judge_stopped(self, j: Job, run: "CheckRun", w: Watched, win, out_dir: Path) -> JobResult:
        """The test the harness stopped (hang or crash finding, QEMU's death, the watchdog)."""
        name = j.test.name
        o = w.outcome
        secs = time.monotonic() - run.since if run.test else o.duration
        why, lost = o.aborted, o.lost and f"ssh connection lost during {name}: {o.lost}"
        if not run.test:
            why = why or Trouble("hang", "stopped")
            why = Trouble(why.kind, f"during ./check's set-up before {name} started: {why.why}")
        fs = findings_in(w.findings, win) if win else w.findings
        v = judge_stopped(fs, why, secs, timed_out=o.timed_out, lost=lost, watchdog=run.watchdog,
                          warn_is_failure=self.cfg.warn_is_failure)
        copy_test_files(out_dir, name, self._job_dir(j))
        oc = stopped_outcome(why, secs, timed_out=o.timed_out, lost=lost)
        return self._result(j, v, oc, failure_detail(None, v), None, win or w.window)

    def _update_history(self, v, history: dict[str, float], cases: dict[str, CaseResult], out_dir: Path) -> None:
        ct = out_dir / "check.time"
        if ct.exists():
            history.update(parse_check_time(ct.read_text(errors="replace")))
        for c in cases.values():
            if c.status == "pass" and c.seconds:
                history[c.name] = c.seconds
        try:
            save_history(v, history)
        except OSError:
            pass


class CheckRun:
    """The suite's own watch over one ./check: which test runs now (from the console's
    `run fstests TEST at` lines), its watchdog, and pulling a finished test's files at once."""

    def __init__(self, s: Session, guest, section: str, out_dir: Path, history: dict[str, float], bound: int,
                 fixed: dict[str, int]):
        self.s, self.guest, self.section, self.out_dir = s, guest, section, out_dir
        self.history, self.bound, self.fixed = history, bound, fixed
        self.tail: ConsoleTail | None = None
        self.seen: list[tuple[int, str]] = []
        self.pulled: dict = {}
        self.test: str | None = None
        self.since = time.monotonic()
        self.watchdog: int | None = None

    def note_starts(self, pull: bool) -> None:
        if self.tail is None:       # the lifecycle has opened the window: tail console.log from its offset
            self.tail = ConsoleTail(self.s.stream.path, self.s.window_start, self.s.window_offset)
        started = test_starts(self.tail.poll())
        if started and self.seen and pull:
            # A test ended: pull what it left now, while the guest is well (a later crash loses it).
            pull_results(self.guest, self.section, self.out_dir, self.pulled)
        for no, test in started:
            self.seen.append((no, test))
            self.watchdog = watchdog_for(test, self.history, self.bound, self.fixed)
            self.test, self.since = test, time.monotonic()
            ui.info(f"fstests {self.section}: {test} started (watchdog {self.watchdog} s)")

    def watch(self) -> Trouble | None:
        self.note_starts(pull=True)
        if self.test and self.watchdog and time.monotonic() - self.since > self.watchdog:
            last = f" ({self.history[self.test]:.0f} s last time)" if self.test in self.history else ""
            return Trouble("hang", f"fstests watchdog: {self.test} ran past {self.watchdog} s{last}")
        return None

    def victim_dir(self, names: list[str], pending: list[Job], job_dir, out_dir: Path) -> Path:
        """Where the evidence of trouble goes: the directory of the test that was running."""
        self.note_starts(pull=False)
        victim = self.test or names[0]
        return job_dir(next(j for j in pending if j.test.name == victim)) if victim in names else out_dir
