"""The bisection's decision rule (kharness/bisect.py) on synthetic outcome sequences, and how a
series is cut to its first k patches (kharness/series.py first_patches)."""
from __future__ import annotations

import random

import pytest

from kharness import bisect
from kharness.bisect import Run, State

MISMATCH = "exit status 1: MISMATCH file=f0 offset={} len=917 expected=zero found=pollution(off=72800,gen=3)"
HANG = "INFO: task hung in jbd2_journal_commit_transaction"


def world(culprit: int, p: float, seed: int, unrelated: dict[int, float] | None = None, message=MISMATCH):
    """A job whose failure appears from patch `culprit` on, in a fraction p of runs; at the k in
    `unrelated`, an unrelated crash in that fraction of runs."""
    rng = random.Random(seed)

    def run(k: int) -> Run:
        if unrelated and k in unrelated and rng.random() < unrelated[k]:
            return Run(k, "crash", "BUG: unable to handle page fault in xfs_bmapi_read")
        if k >= culprit and rng.random() < p:
            return Run(k, "fail" if message == MISMATCH else "hang", message.format(rng.randrange(1 << 20)))
        return Run(k, "pass", "")
    return run


def bisect_with(n: int, run, confidence: float = 0.95, signature: str | None = None, limit: int = 2000):
    state = State(n, confidence, signature)
    for _ in range(limit):
        a = bisect.next_action(state)
        if a.kind != "run":
            return a, state
        assert 0 <= a.k <= n and a.runs >= 1
        state.runs.append(run(a.k))
    raise AssertionError("the bisection did not end")


def test_runs_needed_is_the_arithmetic_in_the_docstring():
    assert bisect.runs_needed(0.2, 0.95) == 14          # 0.8^14 = 0.044 <= 0.05 < 0.8^13 = 0.055
    assert bisect.runs_needed(0.75, 0.95) == 3
    assert bisect.runs_needed(0.5, 0.99) == 7
    assert bisect.runs_needed(1.0, 0.95) == 1
    for p in (0.05, 0.2, 0.5, 0.9):
        n = bisect.runs_needed(p, 0.95)
        assert (1 - p) ** n <= 0.05 < (1 - p) ** (n - 1)
    with pytest.raises(ValueError):
        bisect.runs_needed(0.0, 0.95)


def test_signature_keeps_a_mismatch_kind_and_a_report_title():
    assert bisect.signature_of("fail", MISMATCH.format(5)) == "exit status 1: MISMATCH"
    assert bisect.signature_of("hang", HANG) == HANG
    assert bisect.signature_of("fail", "exit status 3") == "exit status 3"


@pytest.mark.parametrize("n,culprit", [(1, 1), (3, 2), (3, 3), (22, 1), (22, 17), (30, 30)])
def test_deterministic_failure_finds_the_culprit(n, culprit):
    a, state = bisect_with(n, world(culprit, 1.0, seed=n * 100 + culprit))
    assert (a.kind, a.k) == ("done", culprit)
    assert state.signature == "exit status 1: MISMATCH"
    assert bisect.overall_confidence(state) >= 0.95 ** 5


def test_flaky_one_in_five_bisects_correctly_nearly_always():
    """A race that fails 1 run in 5: over 200 simulated bisections of a 22-patch series at
    confidence 0.95 per step, the culprit is right in at least 90% (each good step can be
    wrong with probability <= 5%), and every wrong answer is a later patch (a good step
    called good too early can only push the answer up, never below the culprit)."""
    right = 0
    for seed in range(200):
        culprit = 1 + seed % 22
        a, state = bisect_with(22, world(culprit, 0.2, seed))
        if a.kind == "refuse":          # the bad end showed it 0 times in 10 runs: 0.8^10 = 11%
            assert "did not show" in a.why
            continue
        assert a.kind == "done"
        right += a.k == culprit
        assert a.k >= culprit
    assert right >= 150


def test_flaky_rate_sets_the_runs_per_good_step():
    _, state = bisect_with(3, world(2, 0.5, seed=7))
    p = state.rate()
    need = bisect.runs_needed(p, 0.95)
    goods = [d for d in bisect.decisions(state) if d.decision == "good"]
    assert goods and all(d.clean >= need and d.hits == 0 for d in goods)
    assert all(d.confidence >= 0.95 for d in goods)


def test_unrelated_crash_at_a_good_step_is_not_counted_as_bad():
    """syzkaller's bisections went wrong when one unrelated crash marked a commit bad: here a
    crash at k=1 (before the culprit, in half the runs) is recorded but decides nothing."""
    crashed = done = 0
    for seed in range(20):
        a, state = bisect_with(3, world(2, 1.0, seed=seed, unrelated={1: 0.5}))
        d1 = next(d for d in bisect.decisions(state) if d.k == 1)
        assert d1.hits == 0 and d1.decision != "bad"
        if a.kind == "undecided":       # fewer than 3 passes in 9 runs: (1 + 9 + 36) / 512 = 9%
            assert a.k == 1 and d1.runs == 9
            continue
        assert (a.kind, a.k) == ("done", 2), seed
        done += 1
        if any(r.status == "crash" for r in state.at(1)):
            crashed += 1
            assert d1.decision == "good" and d1.runs > d1.clean
    assert done >= 15 and crashed >= 10


def test_a_step_with_only_other_failures_is_undecided():
    a, state = bisect_with(3, world(2, 1.0, seed=3, unrelated={1: 1.0}))
    assert a.kind == "undecided" and a.k == 1
    need = bisect.runs_needed(state.rate(), 0.95)
    assert len(state.at(1)) == 2 * need + 3


def test_given_signature_filters_another_failure_at_the_bad_end():
    """The bad end hangs in a deadlock (the signature) and sometimes shows a MISMATCH too:
    the MISMATCH is not the failure being bisected."""
    rng = random.Random(1)

    def run(k):
        if k >= 2 and rng.random() < 0.5:
            return Run(k, "hang", HANG)
        if rng.random() < 0.3:
            return Run(k, "fail", MISMATCH.format(1))
        return Run(k, "pass", "")
    a, state = bisect_with(4, run, signature="INFO: task hung in")
    assert (a.kind, a.k) == ("done", 2)
    assert all(r.status == "hang" for r in state.runs if bisect.matches(r, state.signature))


def test_bad_end_that_passes_is_refused():
    a, state = bisect_with(3, world(9, 1.0, seed=1))
    assert a.kind == "refuse" and "bad end" in a.why and "did not show any failure" in a.why
    assert len(state.at(3)) == bisect.BAD_END_RUNS and {r.k for r in state.runs} == {3}


def test_good_end_that_fails_is_refused():
    a, _ = bisect_with(3, world(0, 1.0, seed=1))
    assert a.kind == "refuse" and "good end" in a.why


def test_no_patch_is_refused():
    assert bisect.next_action(State(0, 0.95)).kind == "refuse"


def test_errors_and_skips_are_neither_hits_nor_clean_runs():
    state = State(2, 0.95, "MISMATCH", [Run(2, "fail", MISMATCH.format(1))] * 3)
    state.runs += [Run(0, "error", "guest did not boot"), Run(0, "skip", "not applicable")]
    assert state.hits(0) == 0 and state.clean(0) == 0
    assert bisect.decide(state, 0) == "pending"


def test_resume_is_the_same_decision_on_the_recorded_runs():
    run = world(2, 0.5, seed=11)
    state = State(3, 0.95)
    for _ in range(9):
        a = bisect.next_action(state)
        state.runs.append(run(a.k))
    replay = State(3, 0.95, None, list(state.runs))
    assert bisect.next_action(replay) == bisect.next_action(state)


def test_from_run_takes_the_runs_config_and_first_failure(tmp_path):
    """--from RUN on real recorded runs: the selftest-broken run's first failing job (repeats
    grouped as variant.test); a run where everything passed has nothing to bisect."""
    import shutil

    from conftest import REPO
    from kharness import bisect_run
    from kharness.errors import UserError
    runs = REPO / "tests" / "data" / "runs"
    broken = shutil.copytree(runs / "20261126T111800Z-selftest-broken", tmp_path / "20261126T111800Z-selftest-broken")
    assert bisect_run.job_from_run(broken) == ("configs/selftest-broken.yaml", "ext4.zero-range-basic")
    passed = shutil.copytree(runs / "20261126T121654Z-default", tmp_path / "20261126T121654Z-default")
    with pytest.raises(UserError, match=r"^--from .*: no job failed in that run; nothing to bisect$"):
        bisect_run.job_from_run(passed)


def test_report_of_a_real_bisection(tmp_path):
    """The selftest bisection's own bisect.json (captured from `./harness.py bisect -c
    configs/selftest-bisect.yaml --job xfs.eof-zeroing`): summary, junit.xml valid against the
    schema CI tools check, report.html naming the culprit and the runs either side of it."""
    import shutil
    import xml.etree.ElementTree as ET

    import xmlschema

    from conftest import REPO
    from kharness.report import bisect_report
    data_dir = REPO / "tests" / "data"
    shutil.copyfile(data_dir / "bisect" / "selftest-bisect.json", tmp_path / "bisect.json")
    bisect_report.render(tmp_path)
    summary = (tmp_path / "summary.txt").read_text()
    assert "culprit: patch 2 of 3: SELFTEST BREAKAGE: iomap: zero range skips dirty folios" in summary
    assert "failure rate at the bad end 0.75 -> 3 clean run(s) make a step good" in summary
    assert "confidence reached: 0.9690; 10 runs, 4 kernel(s) booted" in summary
    xmlschema.XMLSchema(str(data_dir / "schema" / "junit-10.xsd")).validate(str(tmp_path / "junit.xml"))
    cases = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite").findall("testcase")
    verdicts = {c.get("name").split()[0]: ("failure" if c.find("failure") is not None else "pass") for c in cases}
    assert verdicts == {"k=0": "pass", "k=1": "pass", "k=2": "failure", "k=3": "failure"}
    html = (tmp_path / "report.html").read_text()
    assert "Culprit: patch 2 of 3" in html and "kharness selftest &lt;kharness@localhost&gt;" in html
    assert 'href="steps/04-k02/jobs/xfs/eof-zeroing.1/"' in html       # the matching run at the culprit
    assert 'href="steps/03-k01/jobs/xfs/eof-zeroing.' in html          # a clean run just before it


def test_a_deadlock_matches_by_any_of_its_hung_task_titles():
    """The same deadlock, three runs, three different first titles (the ext4 iomap selftest's
    `repro zero-range-vs-writeback-storm --repeat 5`): each run still shows the signature."""
    sig = "INFO: task hung in jbd2_journal_commit_transaction"
    runs = [Run(2, "hang", sig, titles=(sig, "INFO: task hung in ext4_truncate")),
            Run(2, "hang", "INFO: task hung in writeback_iter",
                titles=("INFO: task hung in writeback_iter", sig)),
            Run(2, "hang", "INFO: task hung in add_transaction_credits",
                titles=("INFO: task hung in add_transaction_credits", sig))]
    assert all(bisect.matches(r, sig) for r in runs)
    assert not bisect.matches(Run(2, "hang", "INFO: task hung in writeback_iter",
                                  titles=("INFO: task hung in writeback_iter",)), sig)
    assert not bisect.matches(Run(2, "pass", "", titles=(sig,)), sig)     # a report in a passing job is not it


def test_the_report_finds_a_matching_run_by_any_title(tmp_path):
    """The report's "matching run" at a step uses the same rule as the decision: a run whose
    verdict names another hung task of the deadlock still shows the signature."""
    from kharness.report import bisect_report
    sig = "INFO: task hung in jbd2_journal_commit_transaction"
    data = {"signature": sig, "patches": [], "visits": [],
            "decisions": [{"k": 1, "decision": "bad", "runs": 1, "hits": 1, "clean": 0, "confidence": 1.0}],
            "runs": [{"k": 1, "status": "hang", "message": "INFO: task hung in writeback_iter", "dir": "steps/01-k01/x",
                      "titles": ["INFO: task hung in writeback_iter", sig]}]}
    (step,) = bisect_report.steps(data)
    assert step.matching and step.matching["dir"] == "steps/01-k01/x"
