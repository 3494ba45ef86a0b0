"""Which patch broke it: the bisection's decisions, as a pure function of what was observed.

Candidates are "base + the first k patches" of the config's series, k = 0..N, across every
series in order (kharness/bisect_run.py builds and runs them). Nothing here builds or boots:
`next_action(state)` looks at the runs recorded so far and says which k to run next and how
many times, or that the bisection is over. Resuming an interrupted bisection is therefore
just calling it again on the runs bisect.json kept.

The arithmetic (README, "Bisecting a series"):
  * The bad end (k = N) runs until it has shown the failure HITS_WANTED times or ran
    BAD_END_RUNS times. The failure rate used is hits / (runs + 1): a shrunk estimate, so
    that three failing runs out of three do not claim the failure is certain.
  * A run "shows the failure" when its verdict matches the signature: by default the title
    of the first failure at the bad end (a kernel report's syzbot-style title, or for a
    failing exit status its kind, e.g. "exit status 1: MISMATCH"). Any other failure, an
    error or a skip is recorded and shown, but is neither evidence for nor against.
  * A step is bad at its first matching run: the failure is there. It is good after n
    clean runs, where n is the smallest number with (1 - p)^n <= 1 - confidence: the
    chance that a present failure stayed hidden for n runs is at most 1 - confidence.
    At p = 0.2 and confidence 0.95 that is n = 14; at p = 0.75, n = 3.
  * A step that gets neither within 2n + 3 runs (unrelated failures, errors) is undecided,
    and the bisection stops there, saying so.
The bisection's overall confidence is the product of its good steps' confidences (a bad
step is certain: the failure was seen).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

HITS_WANTED = 3
BAD_END_RUNS = 10
MIN_RUNS = 1
NOT_EVIDENCE = ("error", "skip")


@dataclass(frozen=True)
class Run:
    """One job run at one candidate."""
    k: int
    status: str             # the verdict
    message: str            # the verdict's one line (its title)
    dir: str = ""           # the job's directory, relative to the bisection's directory
    seconds: float = 0.0
    titles: tuple[str, ...] = ()    # every kernel report's title in the job's window

    def to_json(self) -> dict:
        return {"k": self.k, "status": self.status, "message": self.message, "dir": self.dir,
                "seconds": self.seconds, "titles": list(self.titles)}


def signature_of(status: str, message: str) -> str:
    """What identifies a failure across runs: a kernel report's title is stable; a failing exit
    status keeps only its kind (MISMATCH lines carry offsets that differ from run to run)."""
    if status == "fail" and message.startswith("exit status "):
        head, _, detail = message.partition(": ")
        return f"{head}: {detail.split()[0]}" if detail.split() else head
    return message


def matches(run: Run, signature: str) -> bool:
    """The run shows the failure being bisected: the signature (a plain substring) is in its
    verdict's message or in any kernel report's title in its window. One deadlock reports
    several hung tasks, and which one comes first varies from run to run (the ext4 iomap
    selftest gave jbd2_journal_commit_transaction, writeback_iter and add_transaction_credits
    first in three runs, each with the others after it)."""
    if run.status in ("pass",) + NOT_EVIDENCE:
        return False
    return signature in run.message or any(signature in t for t in run.titles)


def is_clean(run: Run) -> bool:
    """The run is evidence that the failure is absent: it ran and passed. A different failure
    is not (it may have stopped the job before the race could happen)."""
    return run.status == "pass"


def runs_needed(p: float, confidence: float) -> int:
    """The smallest n with (1 - p)^n <= 1 - confidence."""
    if p >= 1.0:
        return MIN_RUNS
    if p <= 0.0:
        raise ValueError("a failure rate of 0 can never be ruled out")
    return max(MIN_RUNS, math.ceil(math.log(1.0 - confidence) / math.log(1.0 - p) - 1e-9))


def step_confidence(p: float, clean: int) -> float:
    """How sure n clean runs make us that the failure is absent: 1 - (1 - p)^n."""
    return 1.0 - (1.0 - p) ** clean


@dataclass
class State:
    n: int                          # patches in the series: candidates k = 0..n
    confidence: float
    signature: str | None = None    # None until the bad end's first failure names it
    runs: list[Run] = field(default_factory=list)

    def at(self, k: int) -> list[Run]:
        return [r for r in self.runs if r.k == k]

    def hits(self, k: int) -> int:
        return sum(1 for r in self.at(k) if self.signature and matches(r, self.signature))

    def clean(self, k: int) -> int:
        return sum(1 for r in self.at(k) if self.signature and is_clean(r))

    def rate(self) -> float:
        """The failure rate measured at the bad end: hits / (runs + 1)."""
        runs = [r for r in self.at(self.n) if r.status not in NOT_EVIDENCE]
        return self.hits(self.n) / (len(runs) + 1)


@dataclass(frozen=True)
class Action:
    """What to do next. kind: run (k; `runs`: how many more it may take, the runner asks again
    after each), done (culprit k), refuse (why: one line), undecided (k, why)."""
    kind: str
    k: int | None = None
    runs: int = 0
    why: str = ""


@dataclass(frozen=True)
class Decision:
    k: int
    decision: str       # bad | good | undecided | pending | not reproduced (the bad end)
    runs: int
    hits: int
    clean: int
    confidence: float   # of this decision: 1.0 for bad, 1 - (1-p)^clean for good


def decide(state: State, k: int) -> str:
    """bad | good | undecided | pending (needs more runs) for candidate k (not the bad end)."""
    if state.hits(k):
        return "bad"
    need = runs_needed(state.rate(), state.confidence)
    if state.clean(k) >= need:
        return "good"
    if len(state.at(k)) >= 2 * need + 3:
        return "undecided"
    return "pending"


def bad_end(state: State) -> str:
    """bad | refuse | pending for k = n."""
    runs = state.at(state.n)
    if state.hits(state.n) >= HITS_WANTED or (len(runs) >= BAD_END_RUNS and state.hits(state.n)):
        return "bad"
    if len(runs) >= BAD_END_RUNS:
        return "refuse"
    return "pending"


def first_signature(runs: list[Run]) -> str | None:
    """The signature the bad end gives: its first failure that is not an error or a skip."""
    for r in runs:
        if r.status not in ("pass",) + NOT_EVIDENCE:
            return signature_of(r.status, r.message)
    return None


def next_action(state: State) -> Action:
    n = state.n
    if n < 1:
        return Action("refuse", why="the series has fewer than two candidates (no patch to bisect)")
    if state.signature is None:
        state.signature = first_signature(state.at(n))
    verdict = bad_end(state)
    if verdict == "pending":
        return Action("run", n, BAD_END_RUNS - len(state.at(n)))
    if verdict == "refuse":
        seen = sorted({f"{r.status}: {r.message}" if r.message else r.status for r in state.at(n)})
        what = f"the failure {state.signature!r}" if state.signature else "any failure"
        return Action("refuse", n, why=f"the bad end (all {n} patches) did not show {what} in "
                                       f"{len(state.at(n))} runs (saw: {'; '.join(seen)[:300]})")
    lo, hi = 0, n
    good_end = decide(state, 0)
    if good_end == "bad":
        return Action("refuse", 0, why=f"the good end (none of the {n} patches) shows {state.signature!r} too: "
                                       "the failure is not from this series")
    if good_end in ("pending", "undecided"):
        return _more_or_undecided(state, 0, good_end)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        d = decide(state, mid)
        if d == "bad":
            hi = mid
        elif d == "good":
            lo = mid
        else:
            return _more_or_undecided(state, mid, d)
    return Action("done", hi)


def _more_or_undecided(state: State, k: int, d: str) -> Action:
    need = runs_needed(state.rate(), state.confidence)
    if d == "undecided":
        return Action("undecided", k, why=f"k={k}: {len(state.at(k))} runs without {need} clean ones or the "
                                          f"failure (other failures or errors: see the step's runs)")
    return Action("run", k, max(need - state.clean(k), 1))


def decisions(state: State) -> list[Decision]:
    """Every candidate that ran, in k order, with its decision so far."""
    p = state.rate() if state.signature else 0.0
    out = []
    for k in sorted({r.k for r in state.runs}):
        if k == state.n:
            d = bad_end(state)
            d = {"refuse": "not reproduced"}.get(d, d)
        else:
            d = decide(state, k) if state.signature and p > 0 else "pending"
        conf = 1.0 if d == "bad" else step_confidence(p, state.clean(k)) if p > 0 else 0.0
        out.append(Decision(k, d, len(state.at(k)), state.hits(k), state.clean(k), round(conf, 4)))
    return out


def overall_confidence(state: State) -> float:
    """Product of the good steps' confidences: how sure the culprit is the first bad patch."""
    c = 1.0
    for d in decisions(state):
        if d.decision == "good":
            c *= d.confidence
    return round(c, 4)
