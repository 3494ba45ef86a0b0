"""run / repro / list / shell: plan the jobs, boot guests, execute, judge, write results.

    plan(cfg) -> [Job]                       variants x tests x iterations
    Session: boots VMs (accel choice, fresh disks, fresh console file per boot)
    execute(job) -> Outcome + findings in the job's console window -> verdict.judge
    results.write(...)                       junit.xml, summary.json, per-job files

After a hang, a crash, a timeout or a lost connection the VM is killed and the
next job gets a freshly booted guest: one deadlock never poisons later jobs.
"""
from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import os
import re
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import catalogue, config, fstests, image, kernel, proof, results, ui, vm
from . import series as series_mod
from . import verdict as verdict_mod
from .catalogue import Reproducer
from .config import RunConfig
from .console import ConsoleAnalyzer
from .errors import InfraError, UserError
from .guest import Guest
from .model import Finding, Job, JobResult, Outcome, Trouble, Variant, Verdict
from .proof import PROOFS
from .verdict import judge

GUEST_DIR = "/opt/kharness"
TEST_MNT = "/mnt/test"
TEST_DEV, SCRATCH_DEV = "/dev/vdb", "/dev/vdc"
MAX_BOOT_FAILURES = 2         # in a row: then the run stops booting
EVIDENCE_QUIET = 2.0          # seconds of console silence that end a sysrq dump
EVIDENCE_MAX_WAIT = 20.0
LIVENESS_PERIOD = 30          # a silent console this long triggers an ssh probe
RESERVE_BYTES = 8 << 20       # kept allocated in the run directory until junit.xml/summary.json are written

# Runs in the guest around every job: marks the job's window on the console
# (/dev/kmsg), gives it a fresh working directory, and reports the command's own
# time on the last stderr line.
RUN_JOB = r"""#!/bin/sh
id="$1"; dir="$2"; shift 2
echo "<5>kharness: job-start $id" > /dev/kmsg
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
start=$(date +%s.%N)
"$@"
rc=$?
end=$(date +%s.%N)
echo "<5>kharness: job-end $id rc=$rc" > /dev/kmsg
echo "kharness-time $start $end" >&2
exit $rc
"""
_TIME_LINE = re.compile(r"kharness-time (\d+\.\d+) (\d+\.\d+)")


@dataclass(frozen=True)
class Job:
    variant: Variant
    test: Reproducer
    iteration: int
    repeat: int
    duration: int | None = None     # seconds: run the reproducer for this long instead of its default

    @property
    def args(self) -> list[str]:
        if self.duration and self.test.source:
            # The C reproducers stop at whichever of -n/-t ends first; a later -n/-t wins.
            return [*self.test.args, "-n", "2000000000", "-t", str(self.duration)]
        return list(self.test.args)

    @property
    def timeout(self) -> int:
        return self.test.timeout + (self.duration or 0)

    @property
    def name(self) -> str:
        return self.test.name if self.repeat == 1 else f"{self.test.name}#{self.iteration}"

    @property
    def id(self) -> str:
        return f"{self.variant.name}.{self.test.name}" + (f".{self.iteration}" if self.repeat > 1 else "")


@dataclass
class JobResult:
    job: Job
    verdict: Verdict
    outcome: Outcome | None
    dir: Path
    guest_seconds: float | None = None   # the command's own time inside the guest
    console_lines: tuple[int, int] | None = None


# ---------------------------------------------------------------- planning

def select_variants(cfg: RunConfig, names: list[str] | None) -> list[Variant]:
    """The config's variants, or those named with --fs (each must exist)."""
    if not names:
        return list(cfg.variants)
    by_name = {v.name: v for v in cfg.variants}
    for n in names:
        if n not in by_name:
            raise UserError(f"--fs {n}: no such variant in {cfg.path} (variants: {', '.join(by_name) or 'none'})")
    return [by_name[n] for n in names]


def plan(cfg: RunConfig, cat: dict[str, Reproducer], tests: list[str] | None = None,
         variants: list[str] | None = None, repeat: int | None = None, duration: int | None = None) -> tuple[list[Job], list[tuple[Variant, Reproducer, str]]]:
    """Jobs in run order (variant-major, so a variant's fs is set up once per boot),
    plus the (variant, test, reason) pairs that do not apply."""
    names = tests or cfg.tests
    if not names:
        raise UserError(f"{cfg.path}: tests: the config lists no tests")
    chosen = [catalogue.lookup(cat, n) for n in names]
    vs = select_variants(cfg, variants)
    if not vs:
        raise UserError(f"{cfg.path}: variants: the config lists no variants")
    n = repeat or cfg.repeat
    jobs, skipped = [], []
    for v in vs:
        for t in chosen:
            if not t.applies_to(v):
                skipped.append((v, t, t.not_applicable_reason(v)))
                continue
            jobs += [Job(v, t, i, n, duration) for i in range(1, n + 1)]
    return jobs, skipped


# ---------------------------------------------------------------- guest session

class Session:
    """Boots guests for a run, one at a time; knows which variant the test disk holds."""

    def __init__(self, cfg: RunConfig, run_dir: Path, kernel_art, image_art, accel: str | None):
        self.cfg = cfg
        self.run_dir = run_dir
        self.kernel = kernel_art
        self.image = image_art
        self.accel_pref = accel or cfg.vm.accel
        self.accel: str | None = None
        self.accel_note = ""
        self.analyzer = ConsoleAnalyzer()          # the whole run: findings outside any job
        self.job_analyzer: ConsoleAnalyzer | None = None
        self.window_start = 0
        self.window_offset: int | None = None    # byte offset of the window's first line in console.log
        self.stream = vm.ConsoleStream(run_dir / "console.log", self._feed)
        self.vm: vm.Vm | None = None
        self.guest: Guest | None = None
        self.boots = 0
        self.boot_failures = 0
        self.last_boot_error: str | None = None
        self.boot_seconds: list[float] = []
        self.mounted: Variant | None = None
        self.cannot_mount: dict[str, str] = {}
        self.uploads: dict[str, Path] = {}
        self.vm_dir = run_dir / "vm"
        self.vm_dir.mkdir(mode=0o700, exist_ok=True)
        self.sock_dir: Path | None = None

    def _feed(self, text: str) -> None:
        # Called by the console tail with stream.cond held, so findings stay consistent.
        try:
            self.analyzer.feed(text)
            if self.job_analyzer:
                self.job_analyzer.feed(text)
        except Exception as e:  # an analyzer bug must not stop console capture; say it loudly
            ui.warn(f"console analyzer failed ({type(e).__name__}: {e}); findings after "
                    f"console.log line {self.stream.lines} are missing")
            self.analyzer = self.job_analyzer = _NullAnalyzer()

    def open_window(self) -> int:
        """Start a job's console window: a fresh analyzer, so a report that repeats an
        earlier job's title is still this job's finding. Returns the last line before it."""
        with self.stream.cond:
            self.job_analyzer = ConsoleAnalyzer()
            self.window_start = self.stream.lines
            self.window_offset = self.stream.next_line_offset()
            return self.window_start

    def window_findings(self, until: int | None = None) -> list[Finding]:
        """Findings of the open window (lines of console.log), up to line `until`."""
        with self.stream.cond:
            if not self.job_analyzer:
                return []
            found = [dataclasses.replace(f, line=f.line + self.window_start) for f in self.job_analyzer.findings]
        return [f for f in found if until is None or f.line <= until]

    def close_window(self) -> None:
        with self.stream.cond:
            if self.job_analyzer:
                self.job_analyzer.finish()

    # -- boot

    def guest_ready(self) -> Guest:
        if self.guest and self.vm and self.vm.alive() and self.guest.alive():
            return self.guest
        self.stop()
        while True:
            if self.boot_failures >= MAX_BOOT_FAILURES:
                raise InfraError(f"not booting again after {self.boot_failures} failed boots in a row: "
                                 f"{self.last_boot_error}")
            try:
                guest = self._boot()
            except InfraError as e:
                self.boot_failures += 1
                self.last_boot_error = str(e).splitlines()[0]
                self.stop()
                if self.boot_failures >= MAX_BOOT_FAILURES or not isinstance(e, vm.BootCrash):
                    raise
                # One more boot for the same job: a guest can crash while booting for reasons
                # that are not the kernel's (seen: "int3 in sched_clock_stable", about 1 boot in
                # 50 under multi-threaded TCG, while static keys are patched at late init).
                # The crash stays on record as a finding outside any job; a kernel that cannot
                # boot fails twice in a row and the run stops booting.
                ui.warn(f"{self.last_boot_error}; booting once more")
                continue
            self.boot_failures = 0
            return guest

    def _boot(self) -> Guest:
        if self.accel is None:
            self.accel, self.accel_note = self._choose_accel()
            if self.accel == "kvm":
                guest = self._try_boot("kvm", banner_timeout=self.cfg.vm.kvm_banner_timeout,
                                       fallback_ok=self.accel_pref == "auto")
                if guest:
                    return guest
                self.accel = "tcg"
                reason = f"KVM: no kernel banner within {self.cfg.vm.kvm_banner_timeout} s"
                self.accel_note = f"tcg (fell back: {reason}; remembered in {vm._probe_file()})"
                ui.warn(f"{reason}; falling back to TCG")
                vm.remember_kvm_failure(reason)
        guest = self._try_boot(self.accel, banner_timeout=self.cfg.vm.boot_timeout, fallback_ok=False)
        assert guest
        return guest

    def _choose_accel(self) -> tuple[str, str]:
        if self.accel_pref == "tcg":
            return "tcg", "tcg (configured)"
        if self.accel_pref == "kvm":
            if not vm.kvm_usable():
                raise UserError("vm.accel is kvm but /dev/kvm cannot be opened; use accel: auto or tcg")
            return "kvm", "kvm (configured)"
        if not vm.kvm_usable():
            return "tcg", "tcg (/dev/kvm not usable)"
        if seen := vm.remembered_kvm_failure():
            return "tcg", (f"tcg (KVM stalled when probed on {seen['when']}: {seen['reason']}; "
                           f"delete {vm._probe_file()} to probe again)")
        return "kvm", "kvm (probed: kernel banner seen)"

    def _try_boot(self, accel: str, banner_timeout: float, fallback_ok: bool) -> Guest | None:
        for attempt in range(3):   # a hostfwd port lost to another process: pick another
            self.boots += 1
            n = self.boots
            disks = []
            for name in ("test", "scratch"):
                d = self.vm_dir / f"{name}.img"
                d.unlink(missing_ok=True)
                with open(d, "wb") as f:
                    f.truncate(config.size_bytes(self.cfg.vm.disk_size))
                disks.append(d)
            if self.sock_dir is None:
                # A unix socket path must fit in 108 bytes, which a deep results/ can exceed:
                # QMP lives in a short private (0700) directory instead, removed at close().
                self.sock_dir = Path(tempfile.mkdtemp(prefix="kharness-"))
            spec = vm.VmSpec(kernel=self.kernel.bzimage, rootfs=self.image.path, disks=tuple(disks),
                             memory=self.cfg.vm.memory, cpus=self.cfg.vm.cpus, accel=accel,
                             cmdline=vm.kernel_cmdline(self.cfg.vm.hung_task_timeout, self.cfg.vm.cmdline),
                             ssh_port=vm.free_port(), console=self.vm_dir / f"boot-{n}.console",
                             qmp=self.sock_dir / "qmp.sock", name=f"kharness-{self.run_dir.name}")
            self.stream.new_boot(f"boot {n} ({accel}, ssh port {spec.ssh_port})")
            machine = vm.Vm(spec, self.stream, self.run_dir / "qemu.log")
            start = time.monotonic()
            with ui.progress(f"booting {self.kernel.release} ({accel})") as p:
                p.update("starting QEMU")
                machine.start()
                self.vm = machine
                problem = vm.wait_boot(machine, banner_timeout, self.cfg.vm.boot_timeout)
                if problem and "hostfwd" in machine.qemu_error() and attempt < 2:
                    p.update(f"port {spec.ssh_port} was taken; retrying")
                    machine.kill()
                    continue
                if problem:
                    if fallback_ok and "banner" in problem:
                        machine.kill()
                        return None
                    if "banner" in problem and self.cfg.vm.cmdline:
                        problem += (f" (vm.cmdline adds {self.cfg.vm.cmdline!r}: does it send the console "
                                    f"elsewhere or silence the kernel?)")
                    vm.raise_boot_error(problem, machine)
                p.update("waiting for sshd")
                guest = Guest(spec.ssh_port, self.image.host_key_pub, self.image.client_key)
                guest.connect(time.monotonic() + self.cfg.vm.boot_timeout, alive=machine.alive)
                elapsed = time.monotonic() - start
                p.update(f"ssh ready in {elapsed:.1f} s")
            self.boot_seconds.append(elapsed)
            self.guest = guest
            self.mounted = None
            self.uploads = {}
            self._mkdir(guest)
            guest.put_text(RUN_JOB, f"{GUEST_DIR}/run-job")
            return guest
        raise InfraError("could not find a free port for the guest's ssh forward")

    def _mkdir(self, guest: Guest) -> None:
        out = guest.run(f"mkdir -p {GUEST_DIR}/bin", timeout=30)
        if out.exit_status != 0:
            raise InfraError(f"cannot prepare {GUEST_DIR} in the guest: {out.stderr.strip() or out.lost}")

    def stop(self) -> None:
        if self.guest:
            self.guest.close()
            self.guest = None
        if self.vm:
            self.vm.kill()
            self.vm = None
        self.mounted = None

    def close(self) -> None:
        self.stop()
        self.stream.close()
        for disk in self.vm_dir.glob("*.img"):    # scratch disks: fresh per boot, worthless after
            disk.unlink()
        if self.sock_dir:
            shutil.rmtree(self.sock_dir, ignore_errors=True)

    # -- per job set-up

    def upload(self, guest: Guest, t: Reproducer, log: Path) -> str:
        remote = f"{GUEST_DIR}/bin/{t.name}"
        if t.name not in self.uploads:
            local = catalogue.build(t, log)
            guest.put(local, remote)
            self.uploads[t.name] = local
        return remote

    def prepare(self, guest: Guest, v: Variant, log: Path) -> str | None:
        """mkfs + mount the test disk for variant v; returns a skip reason if the kernel cannot."""
        if self.mounted == v:
            return None
        if v.name in self.cannot_mount:       # same kernel all run long: do not ask again
            return self.cannot_mount[v.name]
        mkfs = ["mkfs.xfs", "-f", "-q"] if v.fstype == "xfs" else ["mkfs.ext4", "-F", "-q"]
        mkfs += shlex.split(v.mkfs) + [TEST_DEV]
        mount = ["mount", "-t", v.fstype] + shlex.split(v.mount) + [TEST_DEV, TEST_MNT]
        # mount(8) exits 32 when the kernel refused the mount (an option it lacks: skip, with the
        # kernel's word from dmesg); any other failure (1: bad usage) is an error, said by mount.
        cmd = (f"umount {TEST_MNT} 2>/dev/null; {shlex.join(mkfs)} && mkdir -p {TEST_MNT} && "
               f"{{ {shlex.join(mount)} || {{ rc=$?; [ $rc = 32 ] || exit $rc; dmesg | tail -n 1 >&2; exit 77; }}; }}")
        out = guest.run(cmd, timeout=300, stdout_path=None, stderr_path=None)
        with open(log, "a") as f:
            f.write(f"$ {cmd}\n{out.stdout}{out.stderr}[exit {out.exit_status}]\n")
        if out.exit_status == 77:
            why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "mount failed"
            self.cannot_mount[v.name] = (f"variant {v.name}: this kernel cannot mount {v.fstype} with "
                                         f"{v.mount or 'default options'!r}: {why}")
            return self.cannot_mount[v.name]
        if out.exit_status != 0:
            raise InfraError(f"setting up variant {v.name} failed: {(out.stderr or out.lost or '').strip()[-300:]}")
        self.mounted = v
        return None


class _NullAnalyzer(ConsoleAnalyzer):
    def feed(self, text: str) -> list[Finding]:
        return []


def _check_disk_room(cfg: RunConfig, where: Path) -> None:
    """The test and scratch disks are sparse, but a job may fill them: the host must be able to hold both."""
    need = 2 * config.size_bytes(cfg.vm.disk_size)
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if need > free:
        raise UserError(f"{cfg.path}: vm.disk_size: two disks of {cfg.vm.disk_size} need {need >> 30} GiB but "
                        f"{where} has {free >> 30} GiB free; lower vm.disk_size or point `results:` elsewhere")


def results_disk_full(where: Path) -> str | None:
    """'results disk full: ...' when the filesystem holding `where` has (almost) no room left."""
    try:
        st = os.statvfs(where)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < 1 << 20:
        return f"results disk full: {where} has less than 1 MiB free (the console log and VM disks live there)"
    return None


def _reserve(run_dir: Path) -> Path:
    """Hold RESERVE_BYTES in the run directory, so that junit.xml and summary.json can still be
    written when the disk fills up during the run (released by run_jobs before writing them)."""
    path = run_dir / ".reserve"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)
    except OSError as e:
        path.unlink(missing_ok=True)
        run_dir.rmdir()
        raise UserError(f"results: cannot set aside {RESERVE_BYTES >> 20} MiB in {run_dir.parent} for the run's "
                        f"results ({e.strerror}); free some space or point `results:` elsewhere")
    return path


def _disk_full_error(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


class TroubleWatch:
    """Why to stop waiting for a guest command, polled while it runs: a hang or crash
    finding in the open console window, QEMU's death, or a silent console with no SSH
    reply. Returns "<verdict>: <why>" (see verdict.judge) or None."""

    def __init__(self, s: Session, guest: Guest):
        self.s, self.guest, self.last_ping = s, guest, time.monotonic()

    def __call__(self) -> str | None:
        for f in self.s.window_findings():
            if f.kind in ("hang", "crash"):
                return f"{f.kind}: {f.title}"
        # QEMU drops console output it cannot write: with the disk full, a hang report could vanish.
        if full := self.s.stream.error or results_disk_full(self.s.run_dir):
            return f"error: {full}"
        if self.s.vm and not self.s.vm.alive():
            return "crash: QEMU exited during the job (the guest panicked or was killed)"
        now = time.monotonic()
        if now - self.s.stream.last_activity > LIVENESS_PERIOD and now - self.last_ping > LIVENESS_PERIOD:
            self.last_ping = now
            if not self.guest.ping():
                # QEMU stops the guest when a write to its disks fails with ENOSPC: not the kernel's hang.
                if full := results_disk_full(self.s.run_dir):
                    return f"error: {full}"
                return f"hang: guest stopped answering (console silent and no ssh reply for {LIVENESS_PERIOD} s)"
        return None


# ---------------------------------------------------------------- one job

def execute(s: Session, job: Job, job_dir: Path) -> JobResult:
    job_dir.mkdir(parents=True, exist_ok=True)
    setup_log = s.run_dir / "setup.log"
    warn_fail = s.cfg.warn_is_failure
    try:
        guest = s.guest_ready()
        skip = s.prepare(guest, job.variant, setup_log)
        if skip:
            return JobResult(job, Verdict("skip", skip, job.test.expect), None, job_dir)
        remote = s.upload(guest, job.test, setup_log)
    except InfraError as e:
        return JobResult(job, judge(None, [], expect=job.test.expect, error=str(e)), None, job_dir)

    path_proof = PROOFS.get(job.variant.proof)
    proof_before = _read_proof(guest, path_proof) if path_proof else None
    start_line = s.open_window()
    argv = [remote, *job.args] if job.test.source else ["sh", remote, TEST_MNT, *job.args]
    workdir = f"{TEST_MNT}/{job.id}"
    cmd = shlex.join([f"{GUEST_DIR}/run-job", job.id, workdir, *argv])

    check_abort = TroubleWatch(s, guest)
    outcome = guest.run(cmd, timeout=job.timeout, stdout_path=job_dir / "stdout",
                        stderr_path=job_dir / "stderr", check_abort=check_abort)
    if outcome.lost and s.vm and s.vm.exited(grace=3):
        outcome.aborted = "crash: QEMU exited during the job (the guest panicked or was killed)"
    if not outcome.aborted and (full := s.stream.error or results_disk_full(s.run_dir)):
        outcome.aborted = f"error: {full}"      # filled up after the last poll: the window may be incomplete
    trouble = outcome.exit_status is None
    if trouble and s.vm and s.vm.exited(grace=0):
        s.vm.drain()    # a dead guest's last words (its panic) may still be on their way to console.log
    if trouble:
        _best_effort(_collect_evidence, s, guest, job_dir)
    else:
        # The end marker is written before the command returns; let the console catch up.
        s.stream.wait(lambda: f"end {job.id}" in s.stream.marks, 10)
    end_line = s.stream.marks.get(f"end {job.id}") if not trouble else None
    with s.stream.cond:       # a long run on one boot must not keep every job's marks
        s.stream.marks.pop(f"start {job.id}", None)
        s.stream.marks.pop(f"end {job.id}", None)
    s.close_window()
    findings = s.window_findings(end_line)
    _best_effort(_write_window, s, start_line, job_dir / "console.txt")
    if trouble:
        ui.info(f"{job.id}: {outcome.aborted or outcome.lost or 'timed out'}; restarting the guest")
        s.stop()
    unproven = None
    if path_proof and not trouble and outcome.exit_status != verdict_mod.SKIP_STATUS:
        proof_after = _read_proof(guest, path_proof)
        unproven = proof.unproven(path_proof, proof_before, proof_after)
        _best_effort(_write_proof, job_dir / "path-proof.txt", path_proof, proof_before, proof_after, unproven)
    verdict = judge(outcome, findings, expect=job.test.expect, warn_is_failure=warn_fail, timeout=job.timeout,
                    unproven=unproven)
    m = _TIME_LINE.search(outcome.stderr)
    guest_seconds = float(m.group(2)) - float(m.group(1)) if m else None
    return JobResult(job, verdict, outcome, job_dir, guest_seconds, (start_line + 1, end_line or s.stream.lines))


def _read_proof(guest: Guest, p: proof.Proof) -> str | None:
    out = guest.run(f"cat {shlex.quote(p.path)}", timeout=30, stdout_path=None, stderr_path=None)
    return out.stdout if out.exit_status == 0 else None


def _write_proof(dest: Path, p: proof.Proof, before: str | None, after: str | None, unproven: str | None) -> None:
    moved = proof.describe(proof.delta(before or "", after or "")) if before and after else "-"
    dest.write_text(f"proof: {p.name} ({p.what}), counters {p.path}\n"
                    f"verdict: {unproven or 'proven'}\nmoved during the job: {moved}\n"
                    f"--- before\n{before or '(unreadable)'}\n--- after\n{after or '(unreadable)'}\n")


def _best_effort(fn, *args) -> None:
    """Evidence files are worth less than the verdict: a full results disk must not lose the job."""
    try:
        fn(*args)
    except OSError as e:
        if not _disk_full_error(e):
            raise
        ui.warn(f"results disk full: {fn.__name__.strip('_').replace('_', ' ')} failed ({e.strerror}); "
                f"the job's evidence files are incomplete")


def _collect_evidence(s: Session, guest: Guest, job_dir: Path) -> None:
    """Dump every blocked task (sysrq-w): over a fresh SSH channel, else through QMP."""
    how = "none"
    if s.vm and s.vm.alive():
        before = s.stream.lines
        out = guest.run("echo w > /proc/sysrq-trigger", timeout=10) if guest.alive() else None
        if out and out.exit_status == 0:
            how = "ssh: echo w > /proc/sysrq-trigger"
        else:
            try:
                s.vm.sysrq("w")
                how = "qmp: send-key alt-sysrq-w"
            except Exception as e:  # the guest or QEMU may be too far gone; record, go on
                how = f"sysrq failed over ssh and qmp ({e})"
        # Wait for the dump to start, then for the console to go quiet.
        s.stream.wait(lambda: s.stream.lines > before, 5)
        deadline = time.monotonic() + EVIDENCE_MAX_WAIT
        while time.monotonic() < deadline and time.monotonic() - s.stream.last_activity < EVIDENCE_QUIET:
            time.sleep(0.2)
    (job_dir / "evidence.txt").write_text(f"blocked-task dump requested via {how}; see console.txt\n")


def _write_window(s: Session, start_line: int, dest: Path, max_bytes: int = 2 << 20) -> None:
    """Copy console.log lines after start_line into the job's directory (streamed, capped).

    Reads from the byte offset recorded when the window opened, so a job late in a long
    run on one boot costs its own window, not the whole log again."""
    with s.stream.cond:
        s.stream.out.flush()
    offset = s.window_offset if start_line == s.window_start else None
    written = 0
    with open(s.stream.path, "rb") as src, open(dest, "w") as out:
        first = 1
        if offset is not None:
            src.seek(offset)
            first = start_line + 1
        for i, raw in enumerate(src, first):
            if i <= start_line:
                continue
            line = raw.decode("utf-8", "replace")
            if written + len(line) > max_bytes:
                out.write(f"[... console window truncated at {max_bytes} bytes; see console.log]\n")
                break
            out.write(f"{i:7d}  {line}")
            written += len(line)


# ---------------------------------------------------------------- commands

def _prepare_artifacts(cfg: RunConfig, run_dir: Path):
    k = cfg.kernel
    ui.stage(f"kernel ({k.tarball or k.git or f'Debian {k.debian.suite} {k.debian.package}'})")
    k, hit = kernel.build_kernel(cfg.kernel, run_dir)
    ui.info(f"{'cache hit' if hit else 'built'}: {k.release} ({k.dir})")
    ui.stage("guest image")
    with ui.progress("root filesystem") as p:
        img, ihit = image.build_image(cfg.image, run_dir / "image-build.log", progress=p.update)
        p.update("cache hit" if ihit else "built")
    return k, img


def _start_session(cfg: RunConfig, run_dir: Path, kernel_art, image_art, jobs: list[Job], accel: str | None):
    fst = fstests.Suite.prepare(cfg, run_dir, jobs)      # the image with fstests built in, or why not
    return Session(cfg, run_dir, kernel_art, fst.image or image_art, accel), fst


def _execute_all(session: "Session", fst, jobs: list[Job], job_results: list[JobResult]) -> str | None:
    """Run the jobs; each result is appended and written as it finishes (kept on interrupt).
    Returns why the run must stop early (the results disk is full), else None."""
    run_dir = session.run_dir
    repro = (execute(session, j, run_dir / "jobs" / j.variant.name / j.name.replace("#", "."))
             for j in jobs if not fstests.is_fstests(j))
    for r in itertools.chain(repro, fst.run(session, jobs)):
        job_results.append(r)
        ui.info(results.one_line(r))
        results.write_job(r, run_dir)
        if disk_full := session.stream.error or results_disk_full(run_dir):
            return disk_full    # the remaining jobs could neither keep their evidence nor be judged
    return None


def _run_baseline(cfg: RunConfig, run_dir: Path, image_art, jobs: list[Job], skipped, accel: str | None) -> None:
    """The same jobs on the same base without the series (config `baseline:`), in run_dir/baseline."""
    base_dir = run_dir / "baseline"
    base_dir.mkdir()
    series = cfg.baseline.series
    ui.stage(f"baseline: the same {len(jobs)} job(s) on the base with series "
             f"{', '.join(series_mod.series_label(e) for e in series) or 'none'}")
    started = time.time()
    kernel_art, session, job_results, interrupted = None, None, [], False
    try:
        kernel_art, hit = kernel.build_kernel(cfg.kernel, base_dir, series_override=series)
        ui.info(f"{'cache hit' if hit else 'built'}: {kernel_art.release} ({kernel_art.dir})")
        session, fst = _start_session(cfg, base_dir, kernel_art, image_art, jobs, accel)
        _execute_all(session, fst, jobs, job_results)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if session:
            session.close()
        results.write_run(base_dir, cfg, kernel_art, session, jobs, job_results, skipped, started,
                          interrupted=interrupted, kind="baseline",
                          setup_error=None if kernel_art else "baseline kernel build did not finish")


def run_jobs(cfg: RunConfig, jobs: list[Job], skipped, accel: str | None, label: str, kind: str = "run",
             shard: tuple[int, int] | None = None, run_dir: Path | None = None) -> int:
    """Run jobs (this shard's, with --shard) and write the run directory; exit status as `run`."""
    _check_disk_room(cfg, results.results_root(cfg))
    kernel.preflight(cfg.kernel)                 # bad input: one line before anything is created
    if cfg.baseline:
        kernel.preflight(cfg.kernel, cfg.baseline.series)
    plan_ids = [j.id for j in jobs]
    if shard:
        from . import shard as sharding
        from .report.history import History
        with History(results.results_root(cfg)) as h:
            recorded = h.mean_durations(cfg.name)
        jobs, skipped = sharding.select(jobs, skipped, shard, recorded)
        label, kind = f"{label}-shard{shard[0]}of{shard[1]}", "shard"
    run_dir = run_dir or results.new_run_dir(cfg, label)
    reserve = _reserve(run_dir)
    ui.stage(f"run {run_dir}" + (f" (shard {shard[0]}/{shard[1]}: {len(jobs)} of {len(plan_ids)} jobs)" if shard else ""))
    started = time.time()
    session = None
    job_results: list[JobResult] = []
    kernel_art = None
    interrupted = False
    disk_full = None
    try:
        kernel_art, image_art = _prepare_artifacts(cfg, run_dir)
        ui.stage(f"{len(jobs)} job(s)")
        session, fst = _start_session(cfg, run_dir, kernel_art, image_art, jobs, accel)
        disk_full = _execute_all(session, fst, jobs, job_results)
        session.close()
        if cfg.baseline and jobs and not disk_full:
            _run_baseline(cfg, run_dir, image_art, jobs, skipped, accel)
    except KeyboardInterrupt:
        interrupted = True
    except OSError as e:
        if not _disk_full_error(e):
            raise
        disk_full = f"results disk full: {e.filename or run_dir}: {e.strerror}"
    finally:
        if session:
            session.close()
        reserve.unlink(missing_ok=True)
        setup_error = None
        if disk_full:
            ui.warn(f"{disk_full}; stopping the run")
            setup_error = f"not run: {disk_full}"
        elif kernel_art is None and not interrupted:
            setup_error = "kernel or image build did not finish"
        try:
            for r in job_results:       # a verdict.json that the full disk cut short
                if not _valid_json(r.dir / "verdict.json"):
                    results.write_job(r, run_dir)
            results.write_run(run_dir, cfg, kernel_art, session, jobs, job_results, skipped, started,
                              interrupted=interrupted, setup_error=setup_error, kind=kind,
                              shard=f"{shard[0]}/{shard[1]}" if shard else None, plan=plan_ids)
        except OSError as e:
            if not _disk_full_error(e):
                raise
            raise InfraError(f"results disk full: could not write the results in {run_dir} even after releasing "
                             f"the {RESERVE_BYTES >> 20} MiB reserve ({e.strerror})")
    if interrupted:
        raise KeyboardInterrupt
    if disk_full:
        return 2
    return results.exit_status(job_results, jobs)


def _valid_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


def cmd_run(cfg: RunConfig, only=None, accel=None, repeat=None, duration=None, shard=None, kind="run",
            run_dir: Path | None = None) -> int:
    only_repro, only_fst = fstests.split_only(only)      # generic/363, "fstests" -> fstests
    jobs, skipped = [], []
    if cfg.tests if only_repro is None else only_repro:
        jobs, skipped = plan(cfg, catalogue.load(), tests=only_repro, repeat=repeat, duration=duration)
    fjobs, fskipped = fstests.plan(cfg, only_fst, repeat=repeat)
    if not (jobs or fjobs or skipped or fskipped):
        raise UserError(f"{cfg.path}: tests: nothing to run (no tests, no fstests.tests, or --only matched none)")
    return run_jobs(cfg, jobs + fjobs, skipped + fskipped, accel, cfg.name, kind=kind, shard=shard, run_dir=run_dir)


def cmd_repro(cfg: RunConfig, name: str, fs=None, repeat=None, accel=None, duration=None) -> int:
    if fstests.is_selector(name):                          # an fstests test by name: generic/363
        jobs, skipped = fstests.plan(cfg, [name], variants=fs, repeat=repeat)
        if not jobs:
            raise UserError(f"{name} applies to none of the chosen variants: {'; '.join(r for _, _, r in skipped)}")
        return run_jobs(cfg, jobs, skipped, accel, f"{cfg.name}-{name.replace('/', '-')}", kind="repro")
    cat = catalogue.load()
    test = catalogue.lookup(cat, name)
    jobs, skipped = plan(cfg, cat, tests=[name], variants=fs, repeat=repeat, duration=duration)
    if not jobs:
        reasons = "; ".join(r for _, _, r in skipped)
        raise UserError(f"{name} applies to none of the chosen variants: {reasons}")
    return run_jobs(cfg, jobs, skipped, accel, f"{cfg.name}-{test.name}", kind="repro")


def cmd_list(cfg: RunConfig) -> int:
    cat = catalogue.load()
    jobs, skipped = plan(cfg, cat) if cfg.tests else ([], [])
    ui.out(f"{cfg.name}: {len(jobs)} job(s)")
    for j in jobs:
        ui.out(f"  {j.variant.name:12} {j.name:40} timeout {j.timeout}s expect {j.test.expect}")
    for v, t, why in skipped:
        ui.out(f"  {v.name:12} {t.name:40} not applicable: {why}")
    fjobs, fskipped = fstests.plan(cfg)
    if fjobs or fskipped:
        ui.out(f"fstests: {len(fjobs)} test run(s)")
        for j in fjobs:
            ui.out(f"  {j.variant.name:12} {j.name:40} watchdog {j.timeout}s without check.time history")
        for v, t, why in fskipped:
            ui.out(f"  {v.name:12} {t.name:40} not run: {why}")
    ui.out("")
    ui.out("reproducers (./harness.py repro NAME):")
    for t in cat.values():
        ui.out(f"  {t.name:40} [{', '.join(t.filesystems + t.needs)}] {t.description}")
    return 0


def cmd_shell(cfg: RunConfig, accel=None) -> int:
    _check_disk_room(cfg, results.results_root(cfg))
    run_dir = results.new_run_dir(cfg, f"{cfg.name}-shell")
    k, img = _prepare_artifacts(cfg, run_dir)
    session = Session(cfg, run_dir, k, img, accel)
    try:
        guest = session.guest_ready()
        ui.stage(f"shell in {k.release} (console: {run_dir / 'console.log'}; exit the shell to stop the VM)")
        from .interactive import shell
        shell(guest)
    finally:
        session.close()
    return 0

