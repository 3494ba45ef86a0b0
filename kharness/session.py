"""One guest slot of a run: its guests one at a time: boot (KVM when it really works, else
TCG), the console stream and its analyzers, the open job window, and the variant's test
filesystem.

After a hang, a crash, a timeout or a lost connection the lifecycle stops the guest and
the next job gets a freshly booted one: one deadlock never poisons later jobs.

A run with `-j N` has N sessions (guest 1..N), each with its own console file, VM
directory, disks, ssh port and QMP socket; they share one Accel, so the KVM probe boots
once for the whole run. Guest 1's files keep the serial names (console.log, vm/).
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import tempfile
import threading
import time
from pathlib import Path

from . import config, tools_disk, ui, vm
from . import guest as guest_mod
from .config import RunConfig
from .console import ConsoleAnalyzer
from .errors import InfraError, UserError
from .guest import Guest
from .model import Finding, Variant

GUEST_DIR = "/opt/kharness"       # the tools disk (tools_disk.py), mounted read-only
TEST_MNT = "/mnt/test"
TEST_DEV, SCRATCH_DEV, TOOLS_DEV = "/dev/vdb", "/dev/vdc", "/dev/vdd"
TOOLS_MOUNT_FAILED = 78            # prepare's exit status when the tools disk would not mount
MAX_BOOT_FAILURES = 2         # in a row: then the run stops booting

JOB_SID = "/run/kharness-job.sid"   # the job's session id: which tasks are the job's (livelock evidence)

# Runs in the guest around every job: marks the job's window on the console
# (/dev/kmsg), runs the command in DIR (a fresh one; "-": where it is) with the
# progress heartbeat on (reproducers/common.h), and reports the command's own time
# (guest uptime, 10 ms steps) on the last stderr line. It records its session id: when
# the harness stops waiting and closes the channel, this shell goes and the job's tasks
# are orphaned to init, but they keep the session. SIGPIPE is ignored so that a job
# whose output channel is gone stays where it is (in the kernel) for the evidence.
# Shell builtins only, but for mkdir (and rm when DIR exists): under TCG every fork and
# exec costs tens of milliseconds, and this runs around every job.
RUN_JOB = r"""#!/bin/sh
id="$1"; dir="$2"; shift 2
read -r stat < /proc/$$/stat
sid() { echo "$4"; }        # the fields after "pid (comm) ": state ppid pgrp session
sid ${stat##*) } > """ + JOB_SID + r"""
trap '' PIPE
export KHARNESS_PROGRESS=1
echo "<5>kharness: job-start $id" > /dev/kmsg
if [ "$dir" != - ]; then
    if [ -e "$dir" ] || [ -L "$dir" ]; then rm -rf "$dir" || exit 2; fi
    mkdir -p "$dir" && cd "$dir" || exit 2
fi
read -r start _ < /proc/uptime
"$@"
rc=$?
read -r end _ < /proc/uptime
echo "<5>kharness: job-end $id rc=$rc" > /dev/kmsg
echo "kharness-time $start $end" >&2
exit $rc
"""


class Accel:
    """The run's accelerator, chosen once for all its guests: the first guest to boot under
    `auto` probes KVM (boots it, falls back to TCG on a stall) while the others wait."""

    def __init__(self, pref: str):
        self.pref = pref
        self.chosen: str | None = None
        self.note = ""
        self.lock = threading.Lock()


def console_name(guest: int) -> str:
    """Guest 1 writes console.log (as a serial run does), guest k console-k.log."""
    return "console.log" if guest == 1 else f"console-{guest}.log"


class Session:
    """Boots guests for one slot of a run, one at a time; knows which variant the test disk holds."""

    def __init__(self, cfg: RunConfig, run_dir: Path, kernel_art, image_art, accel: str | Accel | None,
                 guest: int = 1, tools: Path | None = None):
        self.cfg = cfg
        self.run_dir = run_dir
        self.kernel = kernel_art
        self.image = image_art
        self.guest_no = guest
        self.shared_accel = accel if isinstance(accel, Accel) else Accel(accel or cfg.vm.accel)
        self.aborted = False            # the run is being stopped (Ctrl-C, another guest's error): boot no more
        self.analyzer = ConsoleAnalyzer()          # the whole run: findings outside any job
        self.job_analyzer: ConsoleAnalyzer | None = None
        self.window_start = 0
        self.window_offset: int | None = None    # byte offset of the window's first line in console.log
        self.console_file = console_name(guest)
        self.stream = vm.ConsoleStream(run_dir / self.console_file, self._feed)
        self.vm: vm.Vm | None = None
        self.guest: Guest | None = None
        self.boots = 0
        self.boot_failures = 0
        self.last_boot_error: str | None = None
        self.boot_seconds: list[float] = []
        self.tools = tools              # the run's tools disk; None: run-job alone, made at the first boot
        self.tools_mounted = False      # this boot's /opt/kharness
        self.mounted: Variant | None = None
        self.cannot_mount: dict[str, str] = {}
        self.vm_dir = run_dir / ("vm" if guest == 1 else f"vm-{guest}")
        self.vm_dir.mkdir(mode=0o700, exist_ok=True)
        self.qemu_log = run_dir / ("qemu.log" if guest == 1 else f"qemu-{guest}.log")
        self.sock_dir: Path | None = None

    @property
    def accel(self) -> str | None:
        return self.shared_accel.chosen

    @property
    def accel_note(self) -> str:
        return self.shared_accel.note

    @property
    def accel_pref(self) -> str:
        return self.shared_accel.pref

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

    def open_window(self) -> tuple[int, int | None]:
        """Start a job's console window: a fresh analyzer, so a report that repeats an
        earlier job's title is still this job's finding. Returns the last line before it
        and the byte offset in console.log where the window's first line starts."""
        with self.stream.cond:
            self.job_analyzer = ConsoleAnalyzer()
            self.window_start = self.stream.lines
            self.window_offset = self.stream.next_line_offset()
            return self.window_start, self.window_offset

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
            if self.aborted:
                raise InfraError("the run is stopping: no more boots")
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
        acc = self.shared_accel
        if acc.chosen is None:
            with acc.lock:            # the other guests wait for the probe
                if acc.chosen is None:
                    chosen, note = self._choose_accel()
                    if chosen == "kvm":
                        guest = self._try_boot("kvm", banner_timeout=self.cfg.vm.kvm_banner_timeout,
                                               fallback_ok=self.accel_pref == "auto")
                        if guest:
                            acc.chosen, acc.note = chosen, note
                            return guest
                        chosen = "tcg"
                        reason = f"KVM: no kernel banner within {self.cfg.vm.kvm_banner_timeout} s"
                        note = f"tcg (fell back: {reason}; remembered in {vm._probe_file()})"
                        ui.warn(f"{reason}; falling back to TCG")
                        vm.remember_kvm_failure(reason)
                    acc.chosen, acc.note = chosen, note
        guest = self._try_boot(acc.chosen, banner_timeout=self.cfg.vm.boot_timeout, fallback_ok=False)
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
            if self.tools is None:
                self.tools = tools_disk.disk(RUN_JOB, {}, self.run_dir / "setup.log")
            if self.sock_dir is None:
                # A unix socket path must fit in 108 bytes, which a deep results/ can exceed:
                # QMP lives in a short private (0700) directory instead, removed at close().
                self.sock_dir = Path(tempfile.mkdtemp(prefix="kharness-"))
            spec = vm.VmSpec(kernel=self.kernel.bzimage, rootfs=self.image.path, disks=tuple(disks),
                             memory=self.cfg.vm.memory, cpus=self.cfg.vm.cpus, accel=accel,
                             cmdline=vm.kernel_cmdline(self.cfg.vm.hung_task_timeout, self.cfg.vm.cmdline),
                             ssh_port=vm.free_port(), console=self.vm_dir / f"boot-{n}.console",
                             qmp=self.sock_dir / "qmp.sock", tools=self.tools, name=f"kharness-{self.run_dir.name}" +
                             (f"-g{self.guest_no}" if self.guest_no > 1 else ""))
            self.stream.new_boot(f"boot {n} ({accel}, ssh port {spec.ssh_port})")
            machine = vm.Vm(spec, self.stream, self.qemu_log)
            start = time.monotonic()
            with ui.progress(f"booting {self.kernel.release} ({accel})") as p:
                p.update("starting QEMU")
                machine.start()
                self.vm = machine
                warm_up()
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
            self.tools_mounted = False
            return guest
        raise InfraError("could not find a free port for the guest's ssh forward")

    def stop(self) -> None:
        if self.guest:
            self.guest.close()
            self.guest = None
        if self.vm:
            self.vm.kill()
            self.vm = None
        self.mounted = None

    def abort(self) -> None:
        """From another thread (the run is stopping): kill this slot's QEMU so that a job
        waiting on it returns, and boot no more. The slot's own thread cleans up."""
        self.aborted = True
        machine = self.vm
        if machine:
            machine.kill()

    def close(self) -> None:
        self.stop()
        self.stream.close()
        for disk in self.vm_dir.glob("*.img"):    # scratch disks: fresh per boot, worthless after
            disk.unlink()
        if self.sock_dir:
            shutil.rmtree(self.sock_dir, ignore_errors=True)

    # -- per job set-up

    def prepare(self, guest: Guest, v: Variant, log: Path) -> str | None:
        """mkfs + mount the test disk for variant v (and, first thing after a boot, the tools
        disk at GUEST_DIR); returns a skip reason if the kernel cannot mount the variant."""
        if self.mounted == v:
            return None
        if v.name in self.cannot_mount:       # same kernel all run long: do not ask again
            return self.cannot_mount[v.name]
        mkfs, mount = test_fs_argv(v)
        tools = "" if self.tools_mounted else (
            f"{{ mount -t ext4 -o ro,X-mount.mkdir {TOOLS_DEV} {GUEST_DIR} || exit {TOOLS_MOUNT_FAILED}; }} && ")
        # mount(8) exits 32 when the kernel refused the mount (an option it lacks: skip, with the
        # kernel's word from dmesg); any other failure (1: bad usage) is an error, said by mount.
        # umount only when something is mounted there, mkdir only when it is missing: shell
        # builtins instead of a process each (tens of milliseconds apiece under TCG).
        cmd = (f"{tools}while read -r _ m _; do [ \"$m\" = {TEST_MNT} ] && {{ umount {TEST_MNT} 2>/dev/null; break; }}; "
               f"done < /proc/mounts; {shlex.join(mkfs)} && {{ [ -d {TEST_MNT} ] || mkdir -p {TEST_MNT}; }} && "
               f"{{ {shlex.join(mount)} || {{ rc=$?; [ $rc = 32 ] || exit $rc; dmesg | tail -n 1 >&2; exit 77; }}; }}")
        out = guest.run(cmd, timeout=300, stdout_path=None, stderr_path=None)
        with open(log, "a") as f:
            f.write(f"$ {cmd}\n{out.stdout}{out.stderr}[exit {out.exit_status}]\n")
        if out.exit_status == TOOLS_MOUNT_FAILED:
            raise InfraError(f"cannot mount the tools disk ({TOOLS_DEV}) at {GUEST_DIR} in the guest: "
                             f"{(out.stderr or out.lost or '').strip()[-300:]}")
        self.tools_mounted = True
        if out.exit_status == 77:
            why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "mount failed"
            self.cannot_mount[v.name] = (f"variant {v.name}: this kernel cannot mount {v.fstype} with "
                                         f"{v.mount or 'default options'!r}: {why}")
            return self.cannot_mount[v.name]
        if out.exit_status != 0:
            raise InfraError(f"setting up variant {v.name} failed: {(out.stderr or out.lost or '').strip()[-300:]}")
        self.mounted = v
        return None


def test_fs_argv(v: Variant) -> tuple[list[str], list[str]]:
    """The guest commands that make variant v's filesystem on the test disk and mount it."""
    mkfs = ["mkfs.xfs", "-f", "-q"] if v.fstype == "xfs" else ["mkfs.ext4", "-F", "-q"]
    return (mkfs + shlex.split(v.mkfs) + [TEST_DEV],
            ["mount", "-t", v.fstype] + shlex.split(v.mount) + [TEST_DEV, TEST_MNT])


def warm_up() -> None:
    """Once QEMU runs, the harness only waits for the guest: a background thread loads, once
    per process, what the run needs after the boot anyway (paramiko for ssh; the reports'
    modules and compiled templates and the terminal table for the end of the run), about
    0.3-0.6 s of imports here that would otherwise come after the boot and after the last job."""
    guest_mod.warm_up(also=_preload_reports)


def _preload_reports() -> None:
    from rich import table  # noqa: F401   results' terminal table
    from .report import html, render  # noqa: F401
    html.preload()


class _NullAnalyzer(ConsoleAnalyzer):
    def feed(self, text: str) -> list[Finding]:
        return []


def results_disk_full(where: Path) -> str | None:
    """'results disk full: ...' when the filesystem holding `where` has (almost) no room left."""
    try:
        st = os.statvfs(where)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < 1 << 20:
        return f"results disk full: {where} has less than 1 MiB free (the console log and VM disks live there)"
    return None
