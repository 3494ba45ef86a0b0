"""Evidence of a job that hangs without a hung-task report: where are its tasks? (pure)

A task spinning in the kernel is never "blocked", so sysrq-w shows nothing. Twice, a few
seconds apart, the guest prints every task of the job with its state, wchan and
/proc/<tid>/stack (TASKS_SCRIPT), and the kernel prints a backtrace of every CPU (sysrq-l,
read back from the console by nmi_stacks). A task on a CPU has no /proc stack (the ORC
unwinder does not walk a task running on another CPU), so its frames come from the CPU
backtrace. Tasks running (R) with the same kernel frames both times spin; frames that
changed mean slow progress. The title comes from the spinning task's
stack by the same frame-skipping rules as every other title: the stack is handed to the
console analyzer as a hung-task report and its "task hung in" becomes "task running in".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .console import analyze

# Run in the guest: every task (thread) of the job's session, whose id run-job wrote to $1
# (/proc/<pid>/stat after the comm: state ppid pgrp session ...).
TASKS_SCRIPT = r"""
sid=$(cat "$1" 2>/dev/null) || { echo "no job session file $1"; exit 0; }
for d in /proc/[0-9]*; do
    [ "$(sed 's/^.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f4)" = "$sid" ] && echo "${d#/proc/}"
done > /tmp/kharness-job-pids
for p in $(cat /tmp/kharness-job-pids); do
    for t in /proc/$p/task/[0-9]*; do
        [ -d "$t" ] || continue
        echo "=== task ${t##*/} pid $p comm $(cat "$t/comm" 2>/dev/null) state $(sed -n 's/^State:[[:space:]]*//p' "$t/status" 2>/dev/null | cut -c1) wchan $(cat "$t/wchan" 2>/dev/null)"
        cat "$t/stack" 2>/dev/null
    done
done
exit 0
"""
DUMP_GAP = 3.0           # seconds between the two dumps

_TASK_RE = re.compile(r"^=== task (\d+) pid (\d+) comm (.*?) state (\S*) wchan (\S*)\s*$")
_FRAME_RE = re.compile(r"^\[<[0-9a-f]+>\] ([\w.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+")


@dataclass
class Task:
    tid: int
    pid: int
    comm: str
    state: str                    # R, S, D, ... (first letter of /proc/<tid>/status State:)
    wchan: str
    frames: list[str] = field(default_factory=list)   # /proc/<tid>/stack, innermost first


def parse_tasks(text: str) -> list[Task]:
    tasks: list[Task] = []
    for line in text.splitlines():
        if m := _TASK_RE.match(line):
            tasks.append(Task(int(m.group(1)), int(m.group(2)), m.group(3), m.group(4), m.group(5)))
        elif tasks and (m := _FRAME_RE.match(line.strip())):
            tasks[-1].frames.append(m.group(1))
    return tasks


_PREFIX_RE = re.compile(r"^\s*(?:\d+\s\s)?(?:<\d+>)?(?:\[[^\]]*\])*\s?")
_NMI_RE = re.compile(r"NMI backtrace for cpu (\d+)(.*)$")
_CPU_RE = re.compile(r"CPU: \d+ (?:UID: \d+ )?PID: (\d+) Comm: (\S+)")
_KRIP_RE = re.compile(r"RIP: 0010:(?:\[<[0-9a-f]+>\] )?([\w.$]+)\+0x")
_STACK_FRAME_RE = re.compile(r"^\s*([\w.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+")


def nmi_stacks(console: str) -> dict[int, list[str]]:
    """tid -> kernel frames (faulting RIP first) of every task a sysrq-l CPU backtrace caught
    on a CPU; unreliable ("? f") frames and the idle CPUs left out."""
    out: dict[int, list[str]] = {}
    tid, frames, in_task = None, [], False
    for raw in console.splitlines():
        line = _PREFIX_RE.sub("", raw, count=1)
        if m := _NMI_RE.search(line):
            if tid is not None and frames:
                out[tid] = frames
            tid, frames, in_task = None, [], False
            if "skipped" in m.group(2):
                continue
        elif m := _CPU_RE.search(line):
            tid = int(m.group(1))
        elif tid is not None and (m := _KRIP_RE.search(line)) and not in_task:
            frames.append(m.group(1))
        elif "<TASK>" in line:
            in_task = True
        elif "</TASK>" in line:
            in_task = False
        elif tid is not None and in_task and (m := _STACK_FRAME_RE.match(line)):
            frames.append(m.group(1))
    if tid is not None and frames:
        out[tid] = frames
    return out


def with_cpu_stacks(tasks: list[Task], nmi: dict[int, list[str]]) -> list[Task]:
    """Tasks running on a CPU get the frames its backtrace showed (their /proc stack is empty)."""
    for t in tasks:
        if t.state == "R" and not t.frames and t.tid in nmi:
            t.frames = list(nmi[t.tid])
    return tasks


def spinning(first: list[Task], second: list[Task]) -> list[Task]:
    """Tasks running in the kernel with the same frames in both dumps (the second's)."""
    before = {t.tid: t for t in first}
    return [t for t in second if t.state == "R" and t.frames and t.tid in before
            and before[t.tid].state == "R" and before[t.tid].frames == t.frames]


def title(task: Task) -> str:
    """'INFO: task running in f' for a task's kernel stack, f chosen as for a hung task."""
    report = (f"INFO: task {task.comm}:{task.tid} blocked for more than 1 seconds.\n"
              f"task:{task.comm} state:R stack:0 pid:{task.tid}\nCall Trace:\n <TASK>\n"
              + "".join(f" {f}+0x0/0x1\n" for f in task.frames) + " </TASK>\n")
    found = analyze(report)
    if found and found[0].title.startswith("INFO: task hung in "):
        return "INFO: task running in " + found[0].title[len("INFO: task hung in "):]
    return f"INFO: task running in {task.frames[0]}" if task.frames else "INFO: task running"


def conclude(first: list[Task], second: list[Task]) -> tuple[str | None, str]:
    """(title or None, one line for evidence.txt) from the two dumps."""
    spin = spinning(first, second)
    if spin:
        t = spin[0]
        return title(t), (f"livelock: {t.comm} (tid {t.tid}) running in the kernel with the same frames in "
                          f"two dumps {DUMP_GAP:.0f} s apart: {' < '.join(t.frames[:6])}")
    running = [t for t in second if t.state == "R" and t.frames]
    if running:
        t = running[0]
        return title(t), (f"slow progress: {t.comm} (tid {t.tid}) running in the kernel, its frames changed "
                          f"between the dumps: {' < '.join(t.frames[:6])}")
    blocked = [t for t in second if t.state == "D"]
    if blocked:
        t = blocked[0]
        return None, f"blocked: {t.comm} (tid {t.tid}) in D state, wchan {t.wchan}: {' < '.join(t.frames[:6])}"
    return None, "no task of the job was running or blocked in the kernel in either dump"
