"""One guest command, watched: the job lifecycle every suite runs its jobs through.

    start    open the console window (a fresh analyzer; the byte offset of its first line)
    watch    poll while the command runs: a hang or crash finding in the window (a WARNING
             too, when warnings fail the job and warn_action is stop), QEMU's death, a full
             results disk, a silent console with no SSH reply, the job's progress heartbeat
             (progress.py), plus the suite's own watch (fstests' per-test watchdog)
    settle   a channel that closed because QEMU died is a crash; drain a dead guest's
             last console output; dump blocked tasks (sysrq-w over SSH, else QMP); for a
             hang with no hung-task report, also where the job's tasks are (livelock.py):
             all-CPU backtraces (sysrq-l) and two dumps of their kernel stacks
    release  leaving the `watched` block stops the guest after trouble, so the next
             job boots a fresh one; the window then runs to QEMU's last line

Read the window (findings, lines) after the block: trouble extends it on release.

The suite reads its own result inside the block (a reproducer's exit status, fstests'
result.xml) and hands the facts to verdict.judge: nothing here decides a verdict.
"""
from __future__ import annotations

import contextlib
import errno
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import livelock, proof, ui
from .guest import Guest
from .model import Finding, Outcome, Trouble
from .progress import ProgressWatch
from .session import GUEST_DIR, JOB_SID, Session, results_disk_full
from .verdict import timeout_message

EVIDENCE_QUIET = 2.0          # seconds of console silence that end a sysrq dump
EVIDENCE_MAX_WAIT = 20.0
LIVENESS_PERIOD = 30          # a silent console this long triggers an ssh probe
QEMU_DIED = Trouble("crash", "QEMU exited during the job (the guest panicked or was killed)")
_TIME_LINE = re.compile(r"kharness-time (\d+\.\d+) (\d+\.\d+)")


@dataclass
class Watched:
    """What happened to one watched command: the facts a suite and verdict.judge work from."""
    outcome: Outcome
    findings: list[Finding]         # the window's, up to its end marker when the command finished
    window: tuple[int, int]         # console.log lines [first, last]
    offset: int | None              # byte offset of line window[0] in console.log (None: unknown)
    proof_before: str | None = None
    proof_after: str | None = None

    @property
    def trouble(self) -> bool:
        """The command did not finish: the harness stopped it, it timed out, or ssh was lost."""
        return self.outcome.exit_status is None

    @property
    def guest_seconds(self) -> float | None:
        """The command's own time inside the guest (run-job's last stderr line)."""
        m = _TIME_LINE.search(self.outcome.stderr)
        return float(m.group(2)) - float(m.group(1)) if m else None


class TroubleWatch:
    """Why to stop waiting for a guest command, polled while it runs; None to go on."""

    def __init__(self, s: Session, guest: Guest):
        self.s, self.guest, self.last_ping = s, guest, time.monotonic()
        # A WARNING fails the job anyway: end it as soon as the report is complete (the way a
        # hang or crash does), unless the config keeps soak runs going for every report.
        self.stop_kinds = ("hang", "crash", "warn") if s.cfg.warn_is_failure and s.cfg.warn_action == "stop" \
            else ("hang", "crash")

    def __call__(self) -> Trouble | None:
        for f in self.s.window_findings():
            if f.kind in self.stop_kinds:
                return Trouble(f.kind, f.title)
        # QEMU drops console output it cannot write: with the disk full, a hang report could vanish.
        if full := self.s.stream.error or results_disk_full(self.s.run_dir):
            return Trouble("error", full)
        if self.s.vm and not self.s.vm.alive():
            return QEMU_DIED
        now = time.monotonic()
        if now - self.s.stream.last_activity > LIVENESS_PERIOD and now - self.last_ping > LIVENESS_PERIOD:
            self.last_ping = now
            if not self.guest.ping():
                # QEMU stops the guest when a write to its disks fails with ENOSPC: not the kernel's hang.
                if full := results_disk_full(self.s.run_dir):
                    return Trouble("error", full)
                return Trouble("hang", f"guest stopped answering (console silent and no ssh reply for "
                                       f"{LIVENESS_PERIOD} s)")
        return None


@contextlib.contextmanager
def watched(s: Session, guest: Guest, run_id: str, workdir: str, argv: list[str], *, timeout: float,
            stdout: Path, stderr: Path, evidence_dir: Callable[[], Path],
            watch: Callable[[], Trouble | None] | None = None,
            path_proof: proof.Proof | None = None, progress_bound: float | None = None) -> Iterator[Watched]:
    """Run argv in the guest (in a fresh `workdir`, or "-" for where it is) as job `run_id`.
    evidence_dir() names where evidence.txt goes once trouble is known (fstests: the test
    that was running). progress_bound: seconds an operation may stay in flight (or the
    heartbeat stay silent) before the job is a hang. Yields the facts; on leaving, a guest
    in trouble is stopped."""
    before = read_proof(guest, path_proof) if path_proof else None
    start_line, offset = s.open_window()
    base = TroubleWatch(s, guest)
    beats = _StderrProgress(stderr, progress_bound) if progress_bound else None

    def check() -> Trouble | None:
        return base() or (beats() if beats else None) or (watch() if watch else None)

    cmd = shlex.join([f"{GUEST_DIR}/run-job", run_id, workdir, *argv])
    outcome = guest.run(cmd, timeout=timeout, stdout_path=stdout, stderr_path=stderr, check_abort=check)
    w = _settle(s, guest, run_id, outcome, start_line, offset, evidence_dir, timeout)
    if path_proof and not w.trouble:
        w.proof_before, w.proof_after = before, read_proof(guest, path_proof)
    try:
        yield w
    finally:
        if w.trouble:
            why = outcome.aborted or outcome.lost or "timed out"
            ui.info(f"{run_id}: {why}; restarting the guest")
            s.stop()
            # Until QEMU is gone the kernel keeps reporting (a hung task every check interval):
            # whatever it printed up to its death belongs to this job's window, not between jobs.
            s.close_window()
            w.findings = s.window_findings()
            w.window = (w.window[0], s.stream.lines)


class _StderrProgress:
    """The job's heartbeat, read from its stderr file on the host as Guest.run writes it."""

    PERIOD = 1.0

    def __init__(self, path: Path, bound: float):
        self.path, self.watch, self.offset, self.next = path, ProgressWatch(bound), 0, 0.0

    def __call__(self) -> Trouble | None:
        now = time.monotonic()
        if now < self.next:
            return None
        self.next = now + self.PERIOD
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(1 << 20)
        except OSError:
            return None
        self.offset += len(data)
        if data:
            self.watch.feed(data.decode("utf-8", "replace"), now)
        return self.watch.check(now)


def _settle(s: Session, guest: Guest, run_id: str, outcome: Outcome, start_line: int, offset: int | None,
            evidence_dir: Callable[[], Path], timeout: float) -> Watched:
    # A killed QEMU's sockets close before its process can be reaped: ssh sees the end first.
    if outcome.lost and s.vm and s.vm.exited(grace=3):
        outcome.aborted = QEMU_DIED
    if not outcome.aborted and (full := s.stream.error or results_disk_full(s.run_dir)):
        outcome.aborted = Trouble("error", full)   # filled up after the last poll: the window may be incomplete
    trouble = outcome.exit_status is None
    if trouble and s.vm and s.vm.exited(grace=0):
        s.vm.drain()    # a dead guest's last words (its panic) may still be on their way to console.log
    if trouble:
        # No hung-task (or other) report explains this hang: it may spin. Ask where its tasks are.
        unexplained = (outcome.timed_out or (outcome.aborted and outcome.aborted.kind == "hang")) and \
            not any(f.kind in ("hang", "crash") for f in s.window_findings())
        where_to = evidence_dir()
        best_effort(collect_evidence, s, guest, where_to)
        where = best_effort(collect_livelock_evidence, s, guest, where_to) if unexplained else None
        if where:
            why = outcome.aborted.why if outcome.aborted else timeout_message(timeout)
            outcome.aborted = Trouble("hang", f"{where} ({why})")
    else:
        # The end marker is written before the command returns; let the console catch up.
        s.stream.wait(lambda: f"end {run_id}" in s.stream.marks, 10)
    end_line = s.stream.marks.get(f"end {run_id}") if not trouble else None
    with s.stream.cond:       # a long run on one boot must not keep every job's marks
        s.stream.marks.pop(f"start {run_id}", None)
        s.stream.marks.pop(f"end {run_id}", None)
    if not trouble:
        s.close_window()
    findings = s.window_findings(end_line)
    return Watched(outcome, findings, (start_line + 1, end_line or s.stream.lines), offset)


def read_proof(guest: Guest, p: proof.Proof) -> str | None:
    out = guest.run(f"cat {shlex.quote(p.path)}", timeout=30, stdout_path=None, stderr_path=None)
    return out.stdout if out.exit_status == 0 else None


def collect_evidence(s: Session, guest: Guest, job_dir: Path) -> None:
    """Dump every blocked task (sysrq-w): over a fresh SSH channel, else through QMP."""
    how = _sysrq(s, guest, "w") if s.vm and s.vm.alive() else "none"
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / "evidence.txt", "a") as f:
        f.write(f"blocked-task dump requested via {how}; see console.txt\n")


def _sysrq(s: Session, guest: Guest, key: str) -> str:
    """Press SysRq-<key> over a fresh SSH channel, else through QMP; wait for the console to
    print it and go quiet. Returns how it was pressed."""
    before = s.stream.lines
    out = guest.run(f"echo {key} > /proc/sysrq-trigger", timeout=10) if guest.alive() else None
    if out and out.exit_status == 0:
        how = f"ssh: echo {key} > /proc/sysrq-trigger"
    else:
        try:
            s.vm.sysrq(key)
            how = f"qmp: send-key alt-sysrq-{key}"
        except Exception as e:  # the guest or QEMU may be too far gone; record, go on
            how = f"sysrq failed over ssh and qmp ({e})"
    # Wait for the dump to start, then for the console to go quiet.
    s.stream.wait(lambda: s.stream.lines > before, 5)
    deadline = time.monotonic() + EVIDENCE_MAX_WAIT
    while time.monotonic() < deadline and time.monotonic() - s.stream.last_activity < EVIDENCE_QUIET:
        time.sleep(0.2)
    return how


def collect_livelock_evidence(s: Session, guest: Guest, job_dir: Path) -> str | None:
    """Where the job's tasks are when nothing reported them: their states and kernel stacks
    twice, livelock.DUMP_GAP apart, with all-CPU backtraces (sysrq-l) between. Written to
    tasks.txt; returns the title of a task running in the kernel, or None."""
    if not (s.vm and s.vm.alive()):
        return None
    job_dir.mkdir(parents=True, exist_ok=True)
    answers = guest.alive() and guest.ping(timeout=5)     # a wedged guest: QMP's sysrq-l only
    dumps: list[str] = []
    problems: list[str] = []
    how_l = "none"
    cpu_stacks = []
    for i in range(2):
        if i:
            time.sleep(max(0.0, livelock.DUMP_GAP - EVIDENCE_QUIET))
        dest = job_dir / f"tasks-{i + 1}.txt"     # a whole file: Outcome.stdout is only a tail
        out = guest.run(f"sh -c {shlex.quote(livelock.TASKS_SCRIPT)} - {JOB_SID}", timeout=30,
                        stdout_path=dest, stderr_path=None) if answers else None
        dumps.append(dest.read_text(errors="replace") if out and out.exit_status is not None and dest.exists()
                     else "")
        dest.unlink(missing_ok=True)
        if out and not dumps[-1]:
            problems.append(f"dump {i + 1}: exit {out.exit_status}, {out.lost or out.aborted or out.stderr.strip()[-200:]}")
        with s.stream.cond:
            offset = s.stream.next_line_offset()
        how_l = _sysrq(s, guest if answers else _NoSsh(), "l")
        cpu_stacks.append(livelock.nmi_stacks(_console_since(s, offset)))
    first, second = (livelock.with_cpu_stacks(livelock.parse_tasks(d), nmi) for d, nmi in zip(dumps, cpu_stacks))
    if dumps[1]:
        where, line = livelock.conclude(first, second)
    else:
        where, line = None, f"the job's tasks could not be read ({'; '.join(problems) or 'no ssh reply'})"
    (job_dir / "tasks.txt").write_text("".join(f"--- dump {i + 1}\n{d or '(no reply)'}\n" for i, d in enumerate(dumps)))
    with open(job_dir / "evidence.txt", "a") as f:
        f.write(f"{line}\nall-CPU backtraces (sysrq-l) requested via {how_l}; task stacks in tasks.txt\n")
    return where


def _console_since(s: Session, offset: int | None, max_bytes: int = 1 << 20) -> str:
    if offset is None:
        return ""
    with s.stream.cond:
        s.stream.out.flush()
    with open(s.stream.path, "rb") as f:
        f.seek(offset)
        return f.read(max_bytes).decode("utf-8", "replace")


class _NoSsh:
    """A guest that does not answer: _sysrq goes straight to QMP."""

    def alive(self) -> bool:
        return False


def copy_windows(s: Session, w: Watched, dests: dict[Path, tuple[int, int]], max_bytes: int = 2 << 20) -> None:
    """Copy console.log lines [a, b] of the watched window into each dest (console.log's line
    numbers kept), reading from the byte offset where the window opened: a job late in a long
    run on one boot costs its own window, not the whole log again. Lines are counted as the
    console stream counts them (b"\\n"), so a lone carriage return cannot shift them."""
    if not dests:
        return
    with s.stream.cond:
        s.stream.out.flush()
    first, last = w.window
    outs = {d: open(d, "w") for d in dests}
    sizes = dict.fromkeys(dests, 0)
    try:
        with open(s.stream.path, "rb") as src:
            no = 1
            if w.offset is not None:
                src.seek(w.offset)
                no = first
            for raw in src:
                if no > last:
                    break
                if no >= first:
                    line = raw.decode("utf-8", "replace")
                    for d, (a, b) in dests.items():
                        if a <= no <= b and sizes[d] <= max_bytes:
                            sizes[d] += len(line)
                            outs[d].write(f"{no:7d}  {line}" if sizes[d] <= max_bytes else
                                          f"[... console window truncated at {max_bytes} bytes; see console.log]\n")
                no += 1
    finally:
        for f in outs.values():
            f.close()


def best_effort(fn, *args):
    """Evidence files are worth less than the verdict: a full results disk must not lose the job.
    Returns what fn returns, or None when the disk was full."""
    try:
        return fn(*args)
    except OSError as e:
        if not disk_full_error(e):
            raise
        ui.warn(f"results disk full: {fn.__name__.strip('_').replace('_', ' ')} failed ({e.strerror}); "
                f"the job's evidence files are incomplete")
        return None


def disk_full_error(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)
