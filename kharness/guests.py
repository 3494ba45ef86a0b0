"""`-j N` (vm.parallel): a run's jobs on N guests at once, one thread per guest slot.

    count       how many guests: -j, else vm.parallel, else what the host allows (auto)
    Collector   the results as the slots finish them: written at once, in one place, under a lock
    run_slots   a thread per slot (Session), each running its share (shard.by_guest) through the
                suites exactly as a serial run does; Ctrl-C, SIGTERM or one slot's error stops
                every slot: each QEMU is killed and the jobs cut short are not recorded (as in a
                serial run, they are "not run")

A slot's hang or crash restarts only that slot's guest (lifecycle.watched, as ever); its
findings come from its own console file, so they belong to the guest and job they came
from. A QEMU gets PR_SET_PDEATHSIG from the thread that started it (vm.py): each slot boots
and stops its own guests in its own thread.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from . import config, results, ui
from .config import RunConfig
from .errors import UserError
from .model import JobResult
from .session import Session, results_disk_full

HOST_RESERVE = 1 << 30        # auto: memory the host keeps beyond the guests' (page cache, the harness, QEMU itself)
QEMU_OVERHEAD = 256 << 20     # auto: per guest, beyond its RAM


def auto_count(cpus_per_guest: int, guest_memory: int, host_cores: int, host_available: int) -> int:
    """Guests the host can run at once (pure): every vCPU gets a core of its own (TCG and KVM
    both keep a busy vCPU on a host thread), and every guest's RAM fits in what the host has
    available. At least 1. On this project's 2-core machine with 2 vCPUs a guest: 1."""
    by_cores = host_cores // max(cpus_per_guest, 1)
    by_memory = max(host_available - HOST_RESERVE, 0) // (guest_memory + QEMU_OVERHEAD)
    return max(1, min(by_cores, by_memory))


def host_facts() -> tuple[int, int]:
    """(cores this process may use, MemAvailable in bytes)."""
    cores = len(os.sched_getaffinity(0))
    available = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return cores, available


def count(cfg: RunConfig, jobs_flag: int | None, units: int) -> tuple[int, str]:
    """How many guests this run boots, and why (for the run's stage line): -j, else vm.parallel,
    else auto; never more than there are units of work to spread."""
    if jobs_flag is not None:
        n, why = jobs_flag, "-j"
    elif cfg.vm.parallel:
        n, why = cfg.vm.parallel, "vm.parallel"
    else:
        cores, available = host_facts()
        n = auto_count(cfg.vm.cpus, config.size_bytes(cfg.vm.memory), cores, available)
        why = f"auto: {cores} cores, {available >> 30} GiB available, {cfg.vm.cpus} vCPUs and {cfg.vm.memory} a guest"
    return max(1, min(n, units)), why


def check_room(cfg: RunConfig, n: int, where: Path) -> None:
    """Each guest has its own test and scratch disks: the host must be able to hold all of them."""
    need = 2 * n * config.size_bytes(cfg.vm.disk_size)
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if need > free:
        raise UserError(f"{cfg.path}: vm.disk_size: {n} guest(s) with two disks of {cfg.vm.disk_size} each need "
                        f"{need >> 30} GiB but {where} has {free >> 30} GiB free; lower -j / vm.parallel or "
                        f"vm.disk_size, or point `results:` elsewhere")


class Collector:
    """The results of every slot, as they finish: appended, printed and written (verdict.json)
    under one lock. After stop() no new job starts; after halt() results still arriving are
    the jobs the halt cut short, and are dropped."""

    def __init__(self, run_dir: Path, job_results: list[JobResult]):
        self.run_dir = run_dir
        self.results = job_results
        self.lock = threading.Lock()
        self.stop_reason: str | None = None     # the results disk is full: the run must end
        self.halted = False
        self.error: BaseException | None = None  # a slot's unexpected exception, raised by run_slots

    def take(self, r: JobResult, s: Session) -> bool:
        """Record one finished job; False when its slot must start no other job."""
        with self.lock:
            if self.halted:
                return False
            r.console_file = s.console_file        # its console window is in its own guest's console file
            self.results.append(r)
            ui.info(results.one_line(r))
            results.write_job(r, self.run_dir)
            if full := s.stream.error or results_disk_full(self.run_dir):
                self.stop_reason = self.stop_reason or full   # the rest could neither keep evidence nor be judged
            return self.stop_reason is None


def run_slot(s: Session, share: list, sink: Collector) -> None:
    """One slot's share, suite by suite: share is [(prepared suite, its jobs on this slot)]."""
    try:
        for p, jobs in share:
            if not jobs:
                continue
            for r in p.run(s, jobs):
                if not sink.take(r, s):
                    return
    finally:
        s.stop()


def run_slots(sessions: list[Session], shares: list[list], sink: Collector) -> None:
    """Every slot at once, a thread each (one slot: this thread, as a serial run always was).
    Returns when all are done; Ctrl-C/SIGTERM (KeyboardInterrupt here) halts every slot and
    is raised again once their threads have ended; a slot's exception halts the others and is
    raised here."""
    if len(sessions) == 1:
        run_slot(sessions[0], shares[0], sink)
        return

    def slot(i: int) -> None:
        ui.set_guest(f"guest {i + 1}")
        try:
            run_slot(sessions[i], shares[i], sink)
        except BaseException as e:     # raised again in the main thread, after the others stopped
            with sink.lock:
                sink.error = sink.error or e
            halt(sessions, sink)

    threads = [threading.Thread(target=slot, args=(i,), name=f"guest-{i + 1}", daemon=True)
               for i in range(len(sessions))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        halt(sessions, sink)
        for t in threads:
            t.join(60)          # a slot notices its dead QEMU within seconds (lifecycle's settle)
        raise
    if sink.error:
        raise sink.error


def halt(sessions: list[Session], sink: Collector) -> None:
    """Stop every slot now: no more results recorded, no more boots, every QEMU killed."""
    with sink.lock:
        sink.halted = True
    for s in sessions:
        s.abort()
