"""QEMU: command line, accelerator choice, process lifetime, serial console capture, QMP.

One VM per boot. The serial console of each boot goes to its own fresh file
(a marker left in an old file must never be mistaken for this boot's); a tail
thread copies it into the run's console.log, where line numbers are stable
for the whole run, and feeds the console analyzer as text arrives.

No orphan QEMU: each QEMU gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the
harness even on kill -9, and every live VM is killed at interpreter exit.
"""
from __future__ import annotations

import atexit
import ctypes
import errno
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import cache, proc
from .errors import InfraError

READY_MARKER = "KHARNESS-READY"
SSHD_FAILED_MARKER = "KHARNESS-SSHD-FAILED"     # kvm/init: sshd did not come up
BANNER = re.compile(r"Linux version \d")
JOB_MARK = re.compile(r"kharness: job-(start|end) (\S+)")
PANIC_LINE = re.compile(r"Kernel panic - not syncing: .*")
_PR_SET_PDEATHSIG = 1
_live: set["Vm"] = set()


@dataclass(frozen=True)
class VmSpec:
    """Everything the QEMU command line is made of (pure data, unit-tested)."""
    kernel: Path
    rootfs: Path
    disks: tuple[Path, ...]          # test, scratch: /dev/vdb, /dev/vdc
    memory: str
    cpus: int
    accel: str                       # "kvm" | "tcg"
    cmdline: str
    ssh_port: int
    console: Path
    qmp: Path
    name: str = "kharness"
    tools: Path | None = None        # the run's tools disk (tools_disk.py), read-only: /dev/vdd


def kernel_cmdline(hung_task_timeout: int, extra: str = "") -> str:
    parts = ["console=ttyS0,115200", "root=/dev/vda", "rootfstype=ext4", "rw", "init=/sbin/kharness-init",
             "panic=-1", "printk.time=1", "net.ifnames=0",
             # The project's guest kernel has no ACPI (virtio-guest.config), so no HPET or ACPI PM
             # timer either, and with one socket per CPU (qemu_argv) the TSC sync check between
             # sockets fails under TCG: the clocksource would be jiffies. QEMU's TSCs are one
             # host clock. (A kernel with ACPI boots faster with vm.cmdline: acpi=noirq.)
             "tsc=reliable",
             f"sysctl.kernel.hung_task_timeout_secs={hung_task_timeout}",
             # Keep reporting a task that stays hung: the job window needs a fresh report.
             "sysctl.kernel.hung_task_warnings=-1"]
    return " ".join(parts + ([extra] if extra else []))


PVH_VMLINUX = "vmlinux"        # kernel.PVH_VMLINUX: published beside bzImage for CONFIG_PVH=y


def boot_kernel(kernel: Path) -> Path:
    """What QEMU's -kernel loads for an artifact's bzImage: the uncompressed vmlinux beside it
    when kernel.py published one (CONFIG_PVH=y: QEMU enters it at its PVH note, with no
    decompression and no real-mode setup, ~0.1-0.9 s less under TCG), else the bzImage."""
    pvh = kernel.with_name(PVH_VMLINUX)
    return pvh if kernel.name == "bzImage" and pvh.is_file() else kernel


def qemu_argv(spec: VmSpec) -> list[str]:
    argv = ["qemu-system-x86_64", "-name", f"{spec.name},debug-threads=on",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            # One socket per CPU: SeaBIOS's MP table lists one logical CPU per package, and a
            # kernel without ACPI finds its CPUs there (mptable_setup() in SeaBIOS).
            "-m", spec.memory, "-smp", f"{spec.cpus},sockets={spec.cpus}"]
    if spec.accel == "kvm":
        # This host's KVM needs arch-capabilities hidden (see docs/troubleshooting).
        argv += ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
    else:
        argv += ["-accel", "tcg,thread=multi", "-cpu", "max"]
    argv += ["-kernel", str(boot_kernel(spec.kernel)), "-append", spec.cmdline,
             # snapshot=on: writes go to a temporary overlay; the cached image never changes.
             "-drive", f"file={spec.rootfs},if=virtio,format=raw,snapshot=on,index=0"]
    for i, d in enumerate(spec.disks, start=1):
        argv += ["-drive", f"file={d},if=virtio,format=raw,cache=unsafe,index={i}"]
    if spec.tools:
        # readonly=on takes a shared lock: every guest of a -j N run attaches the same file.
        argv += ["-drive", f"file={spec.tools},if=virtio,format=raw,readonly=on,index={len(spec.disks) + 1}"]
    argv += ["-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22",
             "-device", "virtio-net-pci,netdev=net0",
             "-device", "virtio-rng-pci",
             "-chardev", f"file,id=con0,path={spec.console}", "-serial", "chardev:con0",
             "-qmp", f"unix:{spec.qmp},server=on,wait=off"]
    return argv


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (QEMU may still lose a race for it: see Vm.start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvm_usable() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def _probe_file() -> Path:
    return cache.cache_root() / "accel-probe.json"


def _host_identity() -> str:
    qemu = proc.capture(["qemu-system-x86_64", "--version"]).splitlines()[0]
    return f"{os.uname().release} {qemu}"


def remembered_kvm_failure() -> dict | None:
    """A previous auto probe on this host found KVM stalling; skip straight to TCG."""
    try:
        data = json.loads(_probe_file().read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("host") == _host_identity() and data.get("kvm") == "stalled" else None


def remember_kvm_failure(reason: str) -> None:
    tmp = _probe_file().with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": _host_identity(), "kvm": "stalled", "reason": reason,
                               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    os.replace(tmp, _probe_file())


class ConsoleStream:
    """The run's console.log, fed from each boot's console file by a tail thread.

    Tracks, per boot, the line numbers of the banner, the ready marker and job
    markers; keeps the last lines for error messages. Never holds the whole log.
    """

    def __init__(self, path: Path, on_text: Callable[[str], None]):
        self.path = path
        self.on_text = on_text
        self.out = open(path, "a", encoding="utf-8", errors="replace")
        self.lines = 0
        self.tail: deque[str] = deque(maxlen=40)
        self.marks: dict[str, int] = {}
        self.cond = threading.Condition()
        self._partial = ""
        self.last_activity = time.monotonic()
        self.error: str | None = None     # console.log could not be written (results disk full)

    def write(self, text: str) -> None:
        """Append text to console.log, update line count and marks, feed the analyzer."""
        with self.cond:
            if not self.error:
                try:
                    self.out.write(text)
                    self.out.flush()
                except OSError as e:
                    self._write_failed(e)
            data = self._partial + text
            *complete, self._partial = data.split("\n")
            for line in complete:
                self.lines += 1
                self.tail.append(line)
                if READY_MARKER in line:
                    self.marks["ready"] = self.lines
                elif SSHD_FAILED_MARKER in line:
                    self.marks["sshd-failed"] = self.lines
                elif BANNER.search(line):
                    self.marks.setdefault("banner", self.lines)
                elif m := JOB_MARK.search(line):
                    self.marks[f"{m.group(1)} {m.group(2)}"] = self.lines
            self.last_activity = time.monotonic()
            self.on_text(text)
            self.cond.notify_all()

    def _write_failed(self, e: OSError) -> None:
        """Stop writing console.log (keep counting lines and feeding the analyzer, so the
        running job is still judged) and say so once; the runner stops the run."""
        what = "results disk full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "cannot write the console log"
        self.error = f"{what}: writing {self.path} failed ({e.strerror}); console output after line {self.lines} is lost"
        from . import ui
        ui.warn(self.error)
        try:
            self.out.close()
        except OSError:
            pass
        self.out = open(os.devnull, "w")

    def next_line_offset(self) -> int | None:
        """Byte offset in console.log where line `self.lines + 1` starts (None once writing
        failed). Call with cond held. A job's window is copied from here, not from line 1."""
        if self.error:
            return None
        self.out.flush()
        return os.fstat(self.out.fileno()).st_size - len(self._partial.encode("utf-8", "replace"))

    def new_boot(self, header: str) -> None:
        with self.cond:
            if self._partial:
                self.write("\n")
            self.marks = {}
        self.write(f"==== kharness: {header} ====\n")

    def wait(self, pred: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
            return True

    def tail_text(self, n: int = 20) -> str:
        with self.cond:
            return "\n".join(list(self.tail)[-n:])

    def close(self) -> None:
        with self.cond:
            try:
                self.out.close()
            except OSError as e:     # the last flush: the disk filled up
                if not self.error:
                    self._write_failed(e)


class Vm:
    """One QEMU process. start() returns once QEMU runs; the caller waits for boot."""

    def __init__(self, spec: VmSpec, stream: ConsoleStream, stderr_log: Path):
        self.spec = spec
        self.stream = stream
        self.stderr_log = stderr_log
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._tail: threading.Thread | None = None

    def start(self) -> None:
        # Created here (QEMU appends), so QEMU's umask below does not apply: make it ours only.
        fd = os.open(self.spec.console, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
        argv = qemu_argv(self.spec)
        with open(self.stderr_log, "a") as err:
            err.write(f"$ {shlex.join(argv)}\n")
            err.flush()

            def child_setup():
                os.umask(0o077)     # QMP socket and console readable by us only
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         preexec_fn=child_setup)
        _live.add(self)
        self._tail = threading.Thread(target=self._follow, name="console-tail", daemon=True)
        self._tail.start()

    def _follow(self) -> None:
        with open(self.spec.console, "rb") as f:
            while True:
                data = f.read(1 << 16)
                if data:
                    self.stream.write(data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
                    continue
                if self._stop.is_set() or (self.proc and self.proc.poll() is not None):
                    rest = f.read()
                    if rest:
                        self.stream.write(rest.decode("utf-8", errors="replace").replace("\r\n", "\n"))
                    return
                time.sleep(0.01)    # the ready marker is seen within 10 ms (was 50: ~25 ms per boot)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exited(self, grace: float) -> bool:
        """Has QEMU exited, or does it within `grace` seconds? (A killed QEMU's sockets close
        before its process can be reaped: ssh sees the end first.)"""
        if self.proc is None:
            return True
        try:
            self.proc.wait(grace)
            return True
        except subprocess.TimeoutExpired:
            return False

    def drain(self, timeout: float = 5) -> None:
        """After QEMU exited: wait until the console tail has copied all it wrote."""
        if self._tail and not self.alive():
            self._tail.join(timeout)

    def qemu_error(self) -> str:
        """QEMU's own complaint (hostfwd port taken, bad option), from its stderr log."""
        try:
            lines = [ln for ln in self.stderr_log.read_text().splitlines() if not ln.startswith("$ ")]
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def qmp(self, command: str, **args):
        """Run one QMP command (qemu.qmp's synchronous client) and return its result."""
        from qemu.qmp.legacy import QEMUMonitorProtocol
        mon = QEMUMonitorProtocol(str(self.spec.qmp))
        try:
            mon.connect()
            return mon.cmd(command, **args)
        finally:
            mon.close()

    def sysrq(self, key: str) -> None:
        """Press SysRq-<key> on the guest's keyboard through QMP (works when SSH does not)."""
        self.qmp("send-key", keys=[{"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "sysrq"},
                                   {"type": "qcode", "data": key}])

    def kill(self) -> None:
        self._stop.set()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        if self._tail:
            self._tail.join(timeout=5)
        _live.discard(self)


def kill_all() -> None:
    for vm in list(_live):
        vm.kill()


atexit.register(kill_all)


def wait_boot(vm: Vm, banner_timeout: float, ready_timeout: float) -> str | None:
    """Wait for the banner then the ready marker; returns None when ready, else what went wrong."""
    s = vm.stream
    if not s.wait(lambda: "banner" in s.marks or "ready" in s.marks or not vm.alive(), banner_timeout):
        return f"no kernel banner on the console within {banner_timeout:.0f} s"
    if "banner" not in s.marks and "ready" in s.marks:
        # The guest is up, but the kernel's own messages (hangs, oopses) never reach the
        # console: judging jobs without them would pass every hang. (No "banner" in this
        # message: it is not a KVM stall, so no TCG fallback.)
        return (f"the guest printed {READY_MARKER} but the kernel's messages ('Linux version ...') never "
                f"reached the serial console: is vm.cmdline hiding them (loglevel=, quiet, console=)?")
    if "banner" not in s.marks:
        vm.drain()
        return f"QEMU exited before the kernel printed anything: {vm.qemu_error() or 'see qemu.log'}"
    if not s.wait(lambda: "ready" in s.marks or "sshd-failed" in s.marks or not vm.alive(), ready_timeout):
        return f"the guest did not reach {READY_MARKER} within {ready_timeout:.0f} s"
    if "sshd-failed" in s.marks:
        return "sshd failed to start in the guest (its log is on the console)"
    if "ready" not in s.marks:
        vm.drain()      # the panic message is the last thing QEMU wrote: read it all first
        panic = next((m.group(0).rstrip(". ") for ln in reversed(s.tail) if (m := PANIC_LINE.search(ln))), None)
        return f"QEMU exited during boot: {panic}" if panic else "QEMU exited during boot (kernel panic?)"
    return None


class BootCrash(InfraError):
    """The kernel started and the guest died before it was ready (a panic, an oops)."""


def raise_boot_error(what: str, vm: Vm) -> None:
    # The first line is the message (junit's message attribute, the table); the tail follows it.
    cls = BootCrash if what.startswith("QEMU exited during boot") else InfraError
    raise cls(f"boot failed: {what}\nconsole tail:\n{vm.stream.tail_text(15)}")
