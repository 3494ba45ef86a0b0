#!/usr/bin/env python3
"""Hang-detection latency, from a run that includes the hang canary.

    .venv/bin/python bench/hang_latency.py [results/<run>...] [--test NAME]   (default results/latest, hang-canary)

For each job of that test (the canary, or a reproducer run on a deadlocking selftest kernel): guest-clock seconds from the job's start marker to the first
hung-task report (bounded below by kernel.hung_task_timeout_secs), and the job's
wall time in the harness, which adds the sysrq-w dump and the wait for the console
to go quiet. Prints numbers; asserts nothing.
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kharness.report import record  # noqa: E402

STAMP = re.compile(r"^\s*\d+\s+\[\s*(\d+\.\d+)\]")
# kernel/hung_task.c: "blocked for more than N seconds", 7.1+ also "blocked in I/O wait for more than"
HUNG = re.compile(r"INFO: task \S+ blocked (?:in I/O wait )?for more than")


def first(lines, needle):
    for ln in lines:
        hit = needle.search(ln) if isinstance(needle, re.Pattern) else needle in ln
        if hit and (m := STAMP.match(ln)):
            return float(m.group(1))
    return None


def main() -> None:
    args = sys.argv[1:]
    test = "hang-canary"
    if "--test" in args:
        i = args.index("--test")
        test = args[i + 1]
        del args[i:i + 2]
    for run in [Path(a).resolve() for a in (args or ["results/latest"])]:
        report_run(run, test)


def report_run(run: Path, test: str) -> None:
    for j in record.read_run(run).jobs:
        if j.test != test:
            continue
        window = (run / j.dir / "console.txt").read_text().splitlines()
        start, report = first(window, "kharness: job-start"), first(window, HUNG)
        dump = first(window, "Show Blocked State")
        if start is None or report is None:
            print(f"{j.id}: no hung-task report in the window ({j.status})")
            continue
        print(f"{j.id}: job start -> hung-task report {report - start:5.1f} s (guest clock); "
              f"report -> sysrq-w dump {((dump or report) - report):4.1f} s; "
              f"job wall time {j.duration or 0:5.1f} s; verdict {j.status}")


if __name__ == "__main__":
    main()
