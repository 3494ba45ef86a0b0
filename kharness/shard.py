"""--shard i/N: split a run's jobs over N machines (or N CI jobs), deterministically.

Jobs are split by variant.test (all repeats of a job stay together, so their
k-of-N tally stays in one shard), longest first onto the least-loaded shard
(LPT). The weights are the mean recorded duration of each job from history
(results/history.sqlite) when there is one, so shards take about equal time;
without history every shard computes the same split from the test timeouts.
Every shard computes the whole assignment itself, so shards agree as long as
they see the same history (or none): e.g. CI jobs starting from a clean checkout.
"""
from __future__ import annotations

import statistics

from .errors import UserError


MAX_SHARDS = 1000


def parse(text: str) -> tuple[int, int]:
    """"2/4" -> (2, 4); one clear line for anything else."""
    i, sep, n = text.partition("/")
    if not (sep and i.isdigit() and n.isdigit() and i.isascii() and n.isascii()) or not 1 <= int(i) <= int(n):
        raise UserError(f"--shard {text}: give I/N with 1 <= I <= N, e.g. --shard 2/4")
    if int(n) > MAX_SHARDS:
        raise UserError(f"--shard {text}: at most {MAX_SHARDS} shards, e.g. --shard 2/4")
    return int(i), int(n)


def assign(weights: dict[str, float], n: int) -> dict[str, int]:
    """key -> shard number (1..n): longest first onto the least-loaded shard, ties by name."""
    loads = [0.0] * n
    out: dict[str, int] = {}
    for key in sorted(weights, key=lambda k: (-weights[k], k)):
        s = min(range(n), key=lambda i: (loads[i], i))
        out[key] = s + 1
        loads[s] += weights[key]
    return out


def weights(jobs, recorded: dict[str, float]) -> dict[str, float]:
    """Seconds each variant.test is expected to take, over all its iterations.

    Recorded means where history has them; a job history has not seen yet gets the
    median of the known ones (or, with no history at all, its timeout: a consistent guess)."""
    known = [recorded[k] for k in {_key(j) for j in jobs} if k in recorded]
    fallback = statistics.median(known) if known else None
    out: dict[str, float] = {}
    for j in jobs:
        k = _key(j)
        per_run = recorded.get(k, fallback if fallback is not None else float(j.timeout))
        out[k] = out.get(k, 0.0) + per_run
    return out


def _key(job) -> str:
    return f"{job.variant.name}.{job.test.name}"


def select(jobs, skipped, shard: tuple[int, int], recorded: dict[str, float]):
    """This shard's jobs (in run order) and not-applicable pairs (all on shard 1, listed once)."""
    i, n = shard
    where = assign(weights(jobs, recorded), n)
    mine = [j for j in jobs if where[_key(j)] == i]
    return mine, (skipped if i == 1 else [])
