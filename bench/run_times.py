#!/usr/bin/env python3
"""Boot-to-ssh, per-job harness overhead, and whole `run` time with warm caches.

    .venv/bin/python bench/run_times.py [-c configs/default.yaml] [--accel tcg] [--only TEST ...]

Runs `./harness.py run` twice (the first warms the kernel/image caches), then reads
the second run's summary.json: boot_seconds (QEMU start to sshd answering), each
job's wall time minus the command's own time in the guest (overhead), and the run's
wall time against boot + jobs' own time. Prints numbers; asserts nothing.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kharness.report import record  # noqa: E402


def run(cfg: str, accel: str | None, only: list[str]) -> tuple[float, Path]:
    argv = [sys.executable, str(REPO / "harness.py"), "run", "-c", cfg] + (["--accel", accel] if accel else [])
    argv += [a for name in only for a in ("--only", name)]
    t = time.monotonic()
    subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t, (REPO / "results" / "latest").resolve()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--config", default="configs/default.yaml")
    ap.add_argument("--accel")
    ap.add_argument("--only", action="append", help="tests to run (default: zero-range-basic and hang-canary)")
    args = ap.parse_args()
    only = args.only or ["zero-range-basic", "hang-canary"]
    run(args.config, args.accel, only)                 # warm the caches
    wall, run_dir = run(args.config, args.accel, only)
    s = record.read_run(run_dir)
    print(f"run dir: {run_dir}  accel: {s.properties.get('accel')}")
    print("boot to ssh ready (s): " + ", ".join(f"{b:.2f}" for b in s.boot_seconds))
    own = 0.0
    for j in s.jobs:
        if j.duration is not None and j.guest_seconds is not None:
            over = j.duration - j.guest_seconds
            own += j.guest_seconds
            print(f"  {j.id:32} wall {j.duration:7.2f} s  in guest {j.guest_seconds:7.2f} s  overhead {over:5.2f} s")
        else:
            # A job stopped by the harness (the canary's expected hang): its wall time is its own
            # time, and includes the sysrq-w dump and the wait for a quiet console.
            own += j.duration or 0
            print(f"  {j.id:32} wall {j.duration or 0:7.2f} s  (stopped by the harness: {j.status}, "
                  f"{j.message[:50]})")
    boots = sum(s.boot_seconds)
    print(f"warm run: {wall:.1f} s wall; boots {boots:.1f} s + jobs {own:.1f} s "
          f"= {boots + own:.1f} s; harness rest {wall - boots - own:.1f} s")


if __name__ == "__main__":
    main()
