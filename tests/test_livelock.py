"""A job that spins instead of blocking: the progress heartbeat and the livelock evidence,
on output captured from a real run (tests/data/livelock/README.md)."""
from pathlib import Path

from kharness import livelock, progress

DATA = Path(__file__).resolve().parent / "data" / "livelock"


def console_text() -> str:
    """console.txt lines carry console.log's line number first: what nmi_stacks reads is the rest."""
    return (DATA / "fault-spin-console.txt").read_text()


def test_heartbeat_lines_parse():
    beats = progress.parse((DATA / "fault-spin-stderr.txt").read_text())
    assert beats and all(b.op == "read(/dev/zero, 67108864) for ever" for b in beats[-5:])
    assert beats[-1].ops == beats[-5].ops                    # nothing completed
    assert beats[-1].in_flight > beats[-5].in_flight          # the read stays in flight


def test_no_progress_is_a_hang_once_an_operation_outlasts_the_bound():
    text = (DATA / "fault-spin-stderr.txt").read_text()
    beats = progress.parse(text)
    w = progress.ProgressWatch(bound=beats[-1].in_flight - 1)
    w.feed(text[: len(text) // 2], now=100.0)                # a partial line waits for its end
    assert w.check(100.0) is None
    w.feed(text[len(text) // 2:], now=101.0)
    t = w.check(101.0)
    assert (t.kind, t.why) == ("hang", f"no progress for {beats[-1].in_flight:.0f} s in "
                                       "read(/dev/zero, 67108864) for ever")
    relaxed = progress.ProgressWatch(bound=beats[-1].in_flight + 5)
    relaxed.feed(text, now=101.0)
    assert relaxed.check(102.0) is None                       # within the bound, lines still coming
    t = relaxed.check(101.0 + beats[-1].in_flight + 6)        # then the lines stop altogether
    assert t.kind == "hang" and t.why.startswith("no progress heartbeat for ")


def test_a_job_without_heartbeat_is_never_judged_by_it():
    w = progress.ProgressWatch(bound=1)
    w.feed("sh: something on stderr\n", now=0.0)
    assert w.check(1000.0) is None


def test_cpu_backtraces_give_a_running_tasks_frames():
    stacks = livelock.nmi_stacks(console_text())
    dumps = (DATA / "fault-spin-tasks.txt").read_text().split("--- dump 2")
    spinner = next(t for t in livelock.parse_tasks(dumps[0]) if t.comm == "fault-spin" and t.state == "R")
    assert spinner.frames == []                                # on a CPU: no /proc stack
    assert stacks[spinner.tid][:3] == ["rep_stos_alternative", "read_zero", "vfs_read"]
    assert all(f != "default_idle" for frames in stacks.values() for f in frames)   # idle CPUs left out


def test_same_frames_twice_is_a_livelock_titled_from_the_stack():
    text = console_text()
    half = text.index("sysrq: Show backtrace of all active CPUs", text.index("sysrq: Show backtrace of all "
                                                                           "active CPUs") + 1)
    dumps = (DATA / "fault-spin-tasks.txt").read_text().split("--- dump 2")
    first = livelock.with_cpu_stacks(livelock.parse_tasks(dumps[0]), livelock.nmi_stacks(text[:half]))
    second = livelock.with_cpu_stacks(livelock.parse_tasks(dumps[1]), livelock.nmi_stacks(text[half:]))
    title, line = livelock.conclude(first, second)
    assert title == "INFO: task running in read_zero"
    assert line.startswith("livelock: fault-spin (tid ")
    # frames that changed between the dumps are slow progress, not a livelock
    moved = [livelock.Task(t.tid, t.pid, t.comm, t.state, t.wchan, t.frames[1:]) for t in second]
    title, line = livelock.conclude(first, moved)
    assert line.startswith("slow progress: fault-spin")
