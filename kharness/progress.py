"""A job's progress heartbeat, read while it runs (pure).

The C reproducers print once a second on stderr (reproducers/common.h, heartbeat()):
    kharness-progress t=12.0 iterations=340 ops=21034 in_flight=0.4 op=zero_range(126767, 4096) on f2
`op` is the operation in flight the longest, over all of the job's threads. A kernel that
spins in one of them reports no hung task and no soft lockup (the task is running, and
cond_resched() keeps the watchdog fed), but its operation stays in flight: past the job's
bound, or with the lines stopped altogether, the job is a hang at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .model import Trouble

LINE = re.compile(r"^kharness-progress t=([\d.]+) iterations=(-?\d+) ops=(\d+) in_flight=([\d.]+) op=(.*)$", re.M)


@dataclass(frozen=True)
class Beat:
    t: float              # seconds since the program started (its own clock)
    iterations: int
    ops: int
    in_flight: float      # seconds the oldest operation in flight has been running
    op: str               # that operation, "-" when none


def parse(text: str) -> list[Beat]:
    return [Beat(float(m.group(1)), int(m.group(2)), int(m.group(3)), float(m.group(4)), m.group(5).strip())
            for m in LINE.finditer(text)]


class ProgressWatch:
    """Fed the job's stderr as it arrives (feed) and asked, with the host's clock, whether
    the job has stopped making progress (check). Silent until the first heartbeat: a job
    that prints none (a shell script) is never judged by this."""

    def __init__(self, bound: float):
        self.bound = bound
        self.last: Beat | None = None
        self.last_seen: float | None = None   # host time of the last heartbeat line
        self._partial = ""

    def feed(self, text: str, now: float) -> None:
        text = self._partial + text
        complete, _, self._partial = text.rpartition("\n")
        beats = parse(complete)
        if beats:
            self.last, self.last_seen = beats[-1], now

    def check(self, now: float) -> Trouble | None:
        if not self.last:
            return None
        if self.last.in_flight > self.bound:
            return Trouble("hang", f"no progress for {self.last.in_flight:.0f} s in {self.last.op}")
        silent = now - self.last_seen
        if silent > self.bound:
            doing = f"; last in flight: {self.last.op}" if self.last.op != "-" else ""
            return Trouble("hang", f"no progress heartbeat for {silent:.0f} s{doing}")
        return None
