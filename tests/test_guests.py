"""-j N: the job-to-guest split, the host's default, the slots' threads, and console findings
attributed to the guest (console file) and job they came from."""
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import REPO, harness
from kharness import catalogue, config, guests, results, shard, suites
from kharness.errors import InfraError
from kharness.model import Job, JobResult, Outcome, Variant, Verdict
from kharness.report import record
from kharness.session import Session

CONSOLE = Path(__file__).parent / "data" / "console"
DEFAULT = REPO / "configs" / "default.yaml"


def default_jobs(repeat=1):
    cfg = config.load(DEFAULT)
    from kharness import runner
    cfg.repeat = repeat
    jobs, _ = runner.plan(cfg)
    return cfg, jobs


def fstests_job(variant: Variant, name: str) -> Job:
    return Job("fstests", variant, SimpleNamespace(name=name, timeout=300, expect="pass"), 1, 1)


def test_split_covers_every_job_once_in_plan_order_and_balances():
    cfg, jobs = default_jobs()
    recorded = {f"{j.variant.name}.{j.test.name}": float(j.test.timeout) for j in jobs}
    for n in (1, 2, 3, 5):
        split = shard.by_guest(jobs, n, recorded, suites.guest_unit)
        assert len(split) == n
        flat = [j for share in split for j in share]
        assert sorted(j.id for j in flat) == sorted(j.id for j in jobs)    # each job exactly once
        for share in split:                                              # each guest: plan order
            assert [j.id for j in share] == [j.id for j in jobs if j in share]
        loads = [sum(recorded[f"{j.variant.name}.{j.test.name}"] for j in share) for share in split]
        assert max(loads) <= sum(loads) / n + max(recorded.values())     # LPT's bound
    # Deterministic: the same history gives the same split.
    assert shard.by_guest(jobs, 2, recorded, suites.guest_unit) == shard.by_guest(jobs, 2, recorded, suites.guest_unit)


def test_split_puts_the_longest_recorded_job_first_on_its_own_guest():
    cfg, jobs = default_jobs()
    recorded = {f"{j.variant.name}.{j.test.name}": 1.0 for j in jobs}
    recorded["xfs.zero-range-vs-writeback-storm"] = 1000.0    # history says this one is long
    a, b = shard.by_guest(jobs, 2, recorded, suites.guest_unit)
    long_share = a if any(j.id == "xfs.zero-range-vs-writeback-storm" for j in a) else b
    assert [j.id for j in long_share] == ["xfs.zero-range-vs-writeback-storm"]


def test_repeats_of_a_test_and_a_variants_fstests_stay_on_one_guest():
    cfg, jobs = default_jobs(repeat=3)
    ext4, xfs = cfg.variants[0], cfg.variants[1]
    jobs = jobs + [fstests_job(v, t) for v in (ext4, xfs) for t in ("generic/363", "generic/001", "generic/013")]
    for n in (2, 4, 7):
        split = shard.by_guest(jobs, n, {}, suites.guest_unit)
        where = {j.id: i for i, share in enumerate(split) for j in share}
        for j in jobs:
            same = [k for k in jobs if k.suite == j.suite and k.variant == j.variant and
                    (k.test.name == j.test.name or j.suite == "fstests")]
            assert {where[k.id] for k in same} == {where[j.id]}, j.id


def test_auto_count_follows_cores_and_memory():
    gib = 1 << 30
    assert guests.auto_count(2, 2 * gib, host_cores=2, host_available=23 * gib) == 1   # this machine
    assert guests.auto_count(1, 2 * gib, host_cores=2, host_available=23 * gib) == 2
    assert guests.auto_count(2, 2 * gib, host_cores=16, host_available=60 * gib) == 8
    assert guests.auto_count(2, 2 * gib, host_cores=64, host_available=12 * gib) == 4   # memory-bound
    assert guests.auto_count(4, 8 * gib, host_cores=2, host_available=1 * gib) == 1     # never 0


def test_count_is_capped_by_the_units_and_says_why(tmp_path):
    cfg = config.load(DEFAULT)
    assert guests.count(cfg, 4, units=3) == (3, "-j")
    cfg.vm.parallel = 2
    assert guests.count(cfg, None, units=10) == (2, "vm.parallel")
    cfg.vm.parallel = 0
    n, why = guests.count(cfg, None, units=10)
    assert n >= 1 and why.startswith("auto: ")


def test_bad_parallel_input_is_one_line_exit_2(tmp_path):
    out = harness("run", "-j", "0")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"harness.py run: error: argument -j/--jobs: give 1 to {config.MAX_GUESTS} guests, got 0 (see harness.py run --help)"]
    cfg = tmp_path / "c.yaml"
    text = DEFAULT.read_text().replace("  cpus: 2\n", "  cpus: 2\n  parallel: 300\n")
    cfg.write_text(text + f"results: {tmp_path / 'results'}\n")
    line = text.splitlines().index("  parallel: 300") + 1
    out = harness("run", "-c", str(cfg))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"harness.py: error: {cfg}:{line}: vm.parallel: must be at most {config.MAX_GUESTS}, got 300"]
    assert not (tmp_path / "results").exists()


# -- the slots' threads

class FakeSession:
    def __init__(self, n, run_dir):
        self.guest_no, self.console_file, self.run_dir = n, ("console.log" if n == 1 else f"console-{n}.log"), run_dir
        self.stream = SimpleNamespace(error=None)
        self.aborted = threading.Event()
        self.stopped = False

    def abort(self):
        self.aborted.set()

    def stop(self):
        self.stopped = True


class FakeSuite:
    """Yields a result per job after `delay` s; a job named 'boom' raises like a slot that cannot boot."""

    def __init__(self, delay=0.05):
        self.delay = delay

    def run(self, s, jobs):
        for j in jobs:
            if j.test.name == "boom":
                raise InfraError("not booting again after 2 failed boots in a row: boot failed")
            if s.aborted.wait(self.delay):
                pass          # cut short by a halt: still yields, as a killed QEMU's job does
            d = s.run_dir / "jobs" / j.variant.name / j.dir_name
            d.mkdir(parents=True, exist_ok=True)
            yield JobResult(j, Verdict("pass", ""), Outcome(0, self.delay), d, console_lines=(1, 2))


def fake_jobs(names):
    v = Variant("ext4", "ext4")
    return [Job("reproducers", v, SimpleNamespace(name=n, timeout=10, expect="pass"), 1, 1) for n in names]


def test_slots_run_at_once_and_each_result_names_its_guests_console(tmp_path):
    sessions = [FakeSession(i, tmp_path) for i in (1, 2)]
    jobs = fake_jobs(["a", "b", "c", "d"])
    suite = FakeSuite(delay=0.3)
    shares = [[(suite, jobs[:2])], [(suite, jobs[2:])]]
    job_results = []
    started = time.monotonic()
    guests.run_slots(sessions, shares, guests.Collector(tmp_path, job_results))
    took = time.monotonic() - started
    assert sorted(r.job.test.name for r in job_results) == ["a", "b", "c", "d"]
    assert {r.job.test.name: r.console_file for r in job_results} == {
        "a": "console.log", "b": "console.log", "c": "console-2.log", "d": "console-2.log"}
    assert all(s.stopped for s in sessions)
    assert took < 4 * 0.3          # not one after the other (that would be 1.2 s); generous for a loaded host
    for r in job_results:          # written as each finished, with its guest's console file
        assert json.loads((r.dir / "verdict.json").read_text())["console_file"] == r.console_file


def test_a_slot_that_fails_halts_the_others_and_its_error_is_raised(tmp_path):
    sessions = [FakeSession(i, tmp_path) for i in (1, 2)]
    jobs = fake_jobs(["a", "b", "c", "boom"])
    shares = [[(FakeSuite(delay=5), jobs[:3])], [(FakeSuite(), jobs[3:])]]
    job_results = []
    with pytest.raises(InfraError, match="not booting again"):
        guests.run_slots(sessions, shares, guests.Collector(tmp_path, job_results))
    assert sessions[0].aborted.is_set()     # its QEMU killed: it does not wait out its jobs
    assert job_results == []                # the job the halt cut short is not a result


def test_a_full_disk_lets_running_jobs_finish_and_starts_no_more(tmp_path):
    sessions = [FakeSession(i, tmp_path) for i in (1, 2)]
    sessions[1].stream.error = "results disk full: writing console-2.log failed (No space left on device)"
    jobs = fake_jobs(["a", "b", "c", "d", "e"])
    suite = FakeSuite(delay=0.2)
    sink = guests.Collector(tmp_path, [])
    guests.run_slots(sessions, [[(suite, jobs[:3])], [(suite, jobs[3:])]], sink)
    assert sink.stop_reason.startswith("results disk full")
    names = [r.job.test.name for r in sink.results]
    assert "d" in names and "e" not in names        # guest 2 stopped after the job that saw it
    assert "c" not in names                          # guest 1 started nothing after the stop


# -- attribution of console findings

def fed_session(tmp_path, n, log: str) -> Session:
    cfg = config.load(DEFAULT)
    s = Session(cfg, tmp_path, None, None, "tcg", guest=n)
    s.stream.write(log)
    return s


def test_console_findings_belong_to_the_guest_whose_console_printed_them(tmp_path):
    hang = (CONSOLE / "hung-task.log").read_text()
    clean = (CONSOLE / "clean-boot.log").read_text()
    quiet = fed_session(tmp_path, 1, clean)
    hung = fed_session(tmp_path, 2, clean)
    quiet.open_window(), hung.open_window()
    quiet.stream.write("[   30.101] kharness: job-start ext4.zero-range-basic\n[   31.202] EXT4-fs (vdb): mounted filesystem\n")
    hung.stream.write(hang)             # guest 2's job: a hung task
    assert quiet.window_findings() == []
    (f,) = [f for f in hung.window_findings() if f.kind == "hang"][:1]
    assert f.title.startswith("INFO: task hung in")
    assert (tmp_path / "console-2.log").read_text().count("blocked for more than") >= 1
    assert "blocked for more than" not in (tmp_path / "console.log").read_text()
    for s in (quiet, hung):
        s.close()


def test_findings_outside_jobs_name_the_guest_console_they_are_in(tmp_path):
    cfg = config.load(DEFAULT)
    cfg.path = DEFAULT
    cfg.results = str(tmp_path / "results")
    run_dir = results.new_run_dir(cfg, "attribution")
    clean = (CONSOLE / "clean-boot.log").read_text()
    one = fed_session(run_dir, 1, clean)
    two = fed_session(run_dir, 2, clean + (CONSOLE / "hung-task.log").read_text())   # between jobs, on guest 2
    cat = catalogue.load()
    job = Job("reproducers", cfg.variants[0], cat["zero-range-basic"], 1, 1)
    d = run_dir / "jobs" / "ext4" / "zero-range-basic"
    d.mkdir(parents=True)
    (d / "stdout").write_text("")
    (d / "stderr").write_text("")
    r = JobResult(job, Verdict("pass", ""), Outcome(0, 1.0), d, console_lines=(1, 3), console_file="console.log")
    results.write_job(r, run_dir)
    results.write_run(run_dir, cfg, None, [one, two], [job], [r], [], time.time(), quiet=True)
    rec = record.read_run(run_dir)
    hangs = [f for f in rec.findings_outside if f.kind == "hang"]
    assert hangs and all(f.console == "console-2.log" for f in hangs)
    assert "console-2.log line" in (run_dir / "summary.txt").read_text()
    page = (run_dir / "report.html").read_text()
    assert '<a href="console-2.log">guest 2\'s</a>' in page and "console-2.log line" in page
    assert rec.properties["guests"] == "2"
    for s in (one, two):
        s.close()
