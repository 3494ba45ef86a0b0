"""--shard i/N: split a run's jobs over N machines (or N CI jobs), deterministically;
and `-j N`: the same split of one run's jobs over its N guests (by_guest).

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


def weights(jobs, recorded: dict[str, float], unit=None) -> dict[str, float]:
    """Seconds each variant.test is expected to take, over all its iterations.

    Recorded means where history has them; a job history has not seen yet gets the
    median of the known ones (or, with no history at all, its timeout: a consistent guess)."""
    unit = unit or _key
    known = [recorded[k] for k in {_key(j) for j in jobs} if k in recorded]
    fallback = statistics.median(known) if known else None
    out: dict[str, float] = {}
    for j in jobs:
        per_run = recorded.get(_key(j), fallback if fallback is not None else float(j.timeout))
        out[unit(j)] = out.get(unit(j), 0.0) + per_run
    return out


def _key(job) -> str:
    return f"{job.variant.name}.{job.test.name}"


def select(jobs, skipped, shard: tuple[int, int], recorded: dict[str, float]):
    """This shard's jobs (in run order) and not-applicable pairs (all on shard 1, listed once)."""
    i, n = shard
    where = assign(weights(jobs, recorded), n)
    mine = [j for j in jobs if where[_key(j)] == i]
    return mine, (skipped if i == 1 else [])


def by_guest(jobs, n: int, recorded: dict[str, float], unit) -> list[list]:
    """`-j N`: the jobs of each of n guests, in run order. unit(job) names what must share a
    guest (suites.guest_unit: a reproducer's variant.test with all its repeats; all of a
    variant's fstests, which share one ./check and its check.time). Units go longest first
    onto the least-loaded guest (assign); a guest then runs its jobs in plan order, which is
    grouped by variant, so each guest makes a variant's test filesystem once."""
    where = assign(weights(jobs, recorded, unit), n)
    return [[j for j in jobs if where[unit(j)] == i] for i in range(1, n + 1)]
