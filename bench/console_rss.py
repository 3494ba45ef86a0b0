#!/usr/bin/env python3
"""Is a huge console log streamed? Peak RSS of `./harness.py console BIG.log`.

    .venv/bin/python bench/console_rss.py [--mb 320] [--fixture hung-task.log] [--keep]

Writes a log of --mb MiB made of a real captured console fixture (tests/data/console/)
repeated, runs `./harness.py console` on it as a child process and reads that child's
peak RSS (ru_maxrss from os.wait4, i.e. getrusage of that one child). As a yardstick it
also measures a child that reads the same file whole. Prints numbers; asserts nothing
(tests/test_long_runs.py asserts the bound).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "console"


def make_log(path: Path, mb: int, fixture: str = "hung-task.log") -> int:
    """path <- the fixture repeated until it holds at least mb MiB; returns its size in bytes."""
    block = (DATA / fixture).read_bytes()
    if not block.endswith(b"\n"):
        block += b"\n"
    reps = max(1, (8 << 20) // len(block))
    chunk = block * reps                    # ~8 MiB written at a time
    with open(path, "wb") as f:
        while f.tell() < mb << 20:
            f.write(chunk)
    return path.stat().st_size


# The child is started from a small fresh launcher, not from the caller: the kernel
# carries a process's pre-exec memory high-water mark across execve (exec_mmap():
# setmax_mm_hiwater_rss), so a child forked from a big process (pytest, late in a
# suite) would report the parent's RSS as its own peak.
_LAUNCHER = """
import json, os, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
out = p.stdout.read()
_, status, usage = os.wait4(p.pid, 0)
print(json.dumps([usage.ru_maxrss, os.waitstatus_to_exitcode(status), time.monotonic() - t0,
                  out.decode(errors="replace")]))
"""


def peak_rss_kib(argv: list[str]) -> tuple[int, int, float, str]:
    """(peak RSS KiB, exit status, seconds, stdout) of one child process."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], cwd=REPO, capture_output=True,
                         text=True, check=True)
    rss, rc, secs, text = json.loads(out.stdout)
    return rss, rc, secs, text


def measure(log: Path) -> dict:
    console = peak_rss_kib([sys.executable, str(REPO / "harness.py"), "console", str(log)])
    baseline = peak_rss_kib([sys.executable, str(REPO / "harness.py"), "console", str(DATA / "hung-task.log")])
    whole = peak_rss_kib([sys.executable, "-c", f"open({str(log)!r}, 'rb').read()"])
    return {"size": log.stat().st_size, "console": console, "baseline": baseline, "whole": whole}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=320)
    ap.add_argument("--fixture", default="hung-task.log")
    ap.add_argument("--keep", action="store_true", help="keep the generated log")
    args = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="kharness-console-rss-"))
    log = d / "big-console.log"
    size = make_log(log, args.mb, args.fixture)
    try:
        m = measure(log)
    finally:
        if not args.keep:
            log.unlink()
            d.rmdir()
    rss, rc, secs, out = m["console"]
    print(f"log: {size / (1 << 20):.0f} MiB ({args.fixture} x {size // (DATA / args.fixture).stat().st_size})")
    print(f"harness.py console BIG   : peak RSS {rss / 1024:7.1f} MiB, exit {rc}, {secs:.1f} s, "
          f"{len(out.splitlines())} finding line(s)")
    print(f"harness.py console small : peak RSS {m['baseline'][0] / 1024:7.1f} MiB (the {args.fixture} fixture alone)")
    print(f"python read() whole file : peak RSS {m['whole'][0] / 1024:7.1f} MiB (yardstick: not streamed)")
    print(f"first finding lines: {out.splitlines()[:2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
