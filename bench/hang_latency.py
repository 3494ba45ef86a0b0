#!/usr/bin/env python3
"""Hang-detection latency, from a run that includes the hang canary.

    .venv/bin/python bench/hang_latency.py [results/<run>]     (default results/latest)

For each canary job: guest-clock seconds from the job's start marker to the first
hung-task report (bounded below by kernel.hung_task_timeout_secs), and the job's
wall time in the harness, which adds the sysrq-w dump and the wait for the console
to go quiet. Prints numbers; asserts nothing.
"""
import json
import re
import sys
from pathlib import Path

STAMP = re.compile(r"^\s*\d+\s+\[\s*(\d+\.\d+)\]")


def first(lines, needle):
    for ln in lines:
        if needle in ln and (m := STAMP.match(ln)):
            return float(m.group(1))
    return None


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "results/latest").resolve()
    summary = json.loads((run / "summary.json").read_text())
    for j in summary["jobs"]:
        if j["test"] != "hang-canary":
            continue
        window = (run / "jobs" / j["variant"] / "hang-canary" / "console.txt").read_text().splitlines()
        start, report = first(window, "kharness: job-start"), first(window, "blocked for more than")
        dump = first(window, "Show Blocked State")
        if start is None or report is None:
            print(f"{j['job']}: no hung-task report in the window ({j['status']})")
            continue
        print(f"{j['job']}: job start -> hung-task report {report - start:5.1f} s (guest clock); "
              f"report -> sysrq-w dump {((dump or report) - report):4.1f} s; "
              f"job wall time {j['duration']:5.1f} s; verdict {j['status']}")


if __name__ == "__main__":
    main()
