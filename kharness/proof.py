"""Proof that a job's I/O took the code path its variant is about (issue 13).

Zhang Yi's ext4 buffered-iomap series falls back to buffer_head without a word for
every inode it does not support (ext4_should_use_buffered_iomap(): inline data,
verity, encryption, data=journal, non-extent files), so a mount with
`-o buffered_iomap` proves nothing by itself. A variant that names a proof here
has a set of kernel counters read before and after each job; a job during which
none of them moved did not run on that path, and its verdict is an `error` saying
so, never a `pass`.

Behaviour as data: one row per proof, the counters file and the series that adds it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Proof:
    name: str
    path: str           # a file in the guest of "<counter> <value>" lines
    what: str           # the path, in words, for messages
    series: str         # the series of ours that adds the counters


PROOFS = {p.name: p for p in (
    Proof("ext4-buffered-iomap", "/sys/kernel/debug/ext4_buffered_iomap_ops",
          "ext4's buffered iomap path", "ext4-iomap-proof"),
)}
_LINE = re.compile(r"^\s*(\w+)\s*[:=]?\s+(\d+)\s*$")


def parse(text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for ln in text.splitlines() if (m := _LINE.match(ln))}


def delta(before: str, after: str) -> dict[str, int]:
    b, a = parse(before), parse(after)
    return {k: a[k] - b.get(k, 0) for k in a}


def describe(moved: dict[str, int]) -> str:
    return ", ".join(f"{k} +{v}" for k, v in moved.items() if v) or "no counter moved"


def unproven(p: Proof, before: str | None, after: str | None) -> str | None:
    """None when the counters moved during the job; otherwise why the path is not proven."""
    if before is None or not parse(before):
        return (f"cannot prove the job used {p.what}: no counters in {p.path} "
                f"(the kernel needs the {p.series} series)")
    if after is None:
        return f"cannot prove the job used {p.what}: {p.path} could not be read after the job"
    moved = delta(before, after)
    if not any(v > 0 for v in moved.values()):
        counts = ", ".join(f"{k} {v}" for k, v in parse(after).items())
        return (f"the job's I/O did not go through {p.what}: no counter in {p.path} moved ({counts}); "
                "the series fell back to buffer_head for these inodes")
    return None
