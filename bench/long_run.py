#!/usr/bin/env python3
"""Long runs: does the harness process stay flat in memory and file descriptors?

    .venv/bin/python bench/long_run.py [--repeat 200] [--interval 2] [-c CONFIG] [--test zero-range-basic]
                                       [--fs ext4] [--results DIR]

Runs `./harness.py repro TEST --fs FS --repeat N -c CONFIG` as a subprocess and, every
--interval seconds, samples that process's VmRSS and VmHWM (/proc/PID/status), its open
file descriptors (/proc/PID/fd), its threads, and how many jobs have finished (the
verdict.json files in the run directory). Prints one row per sample, then first / last /
max figures and the growth per finished job between the first and the last quarter of
the run (after the first boot: the first samples include imports and the first upload).

Without -c it writes a small config (Debian's 6.12 with the default series, the kernel
configs/default.yaml builds, one ext4 variant) into the results directory, so a warm
cache boots in seconds and nothing is built. Prints numbers; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SMALL_CONFIG = """\
name: long-run
kernel:
  tarball: /usr/src/linux-source-6.12.tar.xz
  series: [kharness-id, zero-range-race-window]
  fragments: [virtio-guest, hang-detect]
variants:
  - {{name: ext4, fstype: ext4}}
tests: [zero-range-basic]
results: {results}
"""


def status_kb(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def jobs_done(results: Path) -> int:
    runs = [d for d in results.iterdir() if d.is_dir() and not d.is_symlink()] if results.is_dir() else []
    if not runs:
        return 0
    newest = max(runs, key=lambda d: d.stat().st_mtime)
    return sum(1 for _ in (newest / "jobs").glob("*/*/verdict.json"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--config", help="run config (default: a small generated one, see above)")
    ap.add_argument("--test", default="zero-range-basic")
    ap.add_argument("--fs", default="ext4")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--results", help="results directory (default: a fresh temporary one)")
    args = ap.parse_args()

    results = Path(args.results or tempfile.mkdtemp(prefix="kharness-long-run-")).resolve()
    results.mkdir(parents=True, exist_ok=True)
    cfg = args.config
    if not cfg:
        cfg = str(results / "long-run.yaml")
        Path(cfg).write_text(SMALL_CONFIG.format(results=results))
    argv = [sys.executable, str(REPO / "harness.py"), "repro", args.test, "--fs", args.fs,
            "--repeat", str(args.repeat), "-c", cfg]
    print("$ " + " ".join(argv), flush=True)
    log = results / "harness.out"
    t0 = time.monotonic()
    with open(log, "w") as out:
        p = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        samples: list[tuple[float, int, int, int, int, int]] = []   # t, jobs, rss, hwm, fds, threads
        print(f"{'t(s)':>7} {'jobs':>5} {'VmRSS(KiB)':>11} {'VmHWM(KiB)':>11} {'fds':>5} {'threads':>7}", flush=True)
        while p.poll() is None:
            try:
                st, fds = status_kb(p.pid), fd_count(p.pid)
            except (OSError, ValueError):
                break                          # exited between poll() and the read
            row = (time.monotonic() - t0, jobs_done(results), st.get("VmRSS", 0), st.get("VmHWM", 0), fds,
                   st.get("Threads", 0))
            samples.append(row)
            print(f"{row[0]:7.1f} {row[1]:5d} {row[2]:11d} {row[3]:11d} {row[4]:5d} {row[5]:7d}", flush=True)
            time.sleep(args.interval)
        rc = p.wait()
    wall = time.monotonic() - t0
    done = jobs_done(results)
    print(f"\nexit status {rc}; {done} job(s) finished in {wall:.0f} s; harness output: {log}")
    if not samples:
        print("no samples taken")
        return 1
    running = [s for s in samples if s[1] >= 1] or samples     # after the first job: imports, boot, upload done
    first, last = running[0], running[-1]
    print(f"{'':10} {'jobs':>5} {'VmRSS(KiB)':>11} {'fds':>5} {'threads':>7}")
    for label, s in (("first", first), ("last", last)):
        print(f"{label:10} {s[1]:5d} {s[2]:11d} {s[4]:5d} {s[5]:7d}")
    print(f"{'max':10} {'':5} {max(s[2] for s in running):11d} {max(s[4] for s in running):5d} "
          f"{max(s[5] for s in running):7d}")
    print(f"VmHWM at the end: {samples[-1][3]} KiB")
    q = max(1, len(running) // 4)
    early, late = running[:q], running[-q:]
    e_jobs, l_jobs = sum(s[1] for s in early) / q, sum(s[1] for s in late) / q
    e_rss, l_rss = sum(s[2] for s in early) / q, sum(s[2] for s in late) / q
    e_fd, l_fd = sum(s[4] for s in early) / q, sum(s[4] for s in late) / q
    if l_jobs > e_jobs:
        per = (l_rss - e_rss) / (l_jobs - e_jobs)
        print(f"first vs last quarter: jobs {e_jobs:.0f} -> {l_jobs:.0f}, VmRSS {e_rss:.0f} -> {l_rss:.0f} KiB "
              f"({per:+.1f} KiB per job), fds {e_fd:.1f} -> {l_fd:.1f}")
    return 0 if rc in (0, 1) else rc


if __name__ == "__main__":
    sys.exit(main())
