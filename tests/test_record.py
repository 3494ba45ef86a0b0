"""The run record (kharness/report/record.py): what a run writes is what `report` re-renders.

Fixtures: the recorded default run (tests/data/runs, see test_report.py), handed to
results.write_job / write_run the way the runner hands over its job results, and a real
WARNING: tests/data/console/lkdtm-warn.log read by the console analyzer. It stands for a
warning outside any job: its line (257) lies in the default run's first boot, before the
first job window (258-259).
"""
import json
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import REPO, harness
from kharness import catalogue, config, results
from kharness.console import analyze
from kharness.errors import UserError
from kharness.model import Job, JobResult, Outcome, Verdict
from kharness.report import record

DATA = Path(__file__).parent / "data"
DEFAULT = "20261126T121654Z-default"
BROKEN = "20261126T111800Z-selftest-broken"


def real_warning():
    log = DATA / "console" / "lkdtm-warn.log"
    warn = analyze(log.read_bytes().decode("utf-8", "replace"))[0]
    assert (warn.kind, warn.title, warn.line) == ("warn", "WARNING in lkdtm_WARNING", 257)
    return warn


def write_recorded_run(tmp_path: Path, warn_is_failure: bool) -> Path:
    """The recorded default run written again through results.write_job/write_run, by a
    config that says warn_is_failure, with a WARNING seen outside any job."""
    cfg_file = tmp_path / "default.yaml"
    cfg_file.write_text((REPO / "configs" / "default.yaml").read_text() +
                        f"warn_is_failure: {str(warn_is_failure).lower()}\nresults: {tmp_path}/results\n")
    cfg = config.load(cfg_file)
    assert cfg.warn_is_failure is warn_is_failure
    src = DATA / "runs" / DEFAULT
    recorded = record.read_run(src)
    run_dir = results.new_run_dir(cfg, cfg.name)
    shutil.copy2(src / "console.log", run_dir / "console.log")
    variants = {v.name: v for v in cfg.variants}
    tests = catalogue.load()
    jobs, job_results = [], []
    for j in recorded.jobs:
        shutil.copytree(src / j.dir, run_dir / j.dir)
        job = Job(suite="reproducers", variant=variants[j.variant], test=tests[j.test],
                  iteration=j.iteration, repeat=j.repeat)
        jobs.append(job)
        job_results.append(JobResult(
            job=job, verdict=Verdict(j.status, j.message, j.expected, j.findings),
            outcome=Outcome(j.exit_status, j.duration, j.timed_out), dir=run_dir / j.dir,
            guest_seconds=j.guest_seconds, console_lines=tuple(j.console_lines), detail=j.detail))
    session = SimpleNamespace(analyzer=SimpleNamespace(findings=[real_warning()]), boots=recorded.boots,
                              boot_seconds=recorded.boot_seconds, accel_note=recorded.properties["accel"],
                              console_file="console.log")
    for r in job_results:
        results.write_job(r, run_dir)
    results.write_run(run_dir, cfg, None, [session], jobs, job_results, [], time.time() - recorded.seconds,
                      quiet=True)
    return run_dir


def outside_case(run_dir: Path) -> ET.Element:
    (case,) = [c for c in ET.parse(run_dir / "junit.xml").getroot().iter("testcase")
               if (c.get("classname"), c.get("name")) == ("kernel", "outside-jobs")]
    return case


@pytest.mark.parametrize("warn_is_failure", [False, True])
def test_report_rerenders_the_verdicts_the_run_wrote(tmp_path, warn_is_failure):
    run_dir = write_recorded_run(tmp_path, warn_is_failure)
    junit, summary = (run_dir / "junit.xml").read_text(), (run_dir / "summary.txt").read_text()
    case = outside_case(run_dir)
    if warn_is_failure:
        assert case.find("failure").get("message") == "WARNING in lkdtm_WARNING"
    else:       # recorded, not a failure: the run said so
        assert case.find("failure") is None and "WARNING in lkdtm_WARNING" in case.find("system-out").text
        assert "Outside any job: WARNING in lkdtm_WARNING (console.log line 257) (recorded only" in summary
    out = harness("report", str(run_dir))
    assert out.returncode == 0, out.stderr
    assert (run_dir / "junit.xml").read_text() == junit
    assert (run_dir / "summary.txt").read_text() == summary


def test_the_record_holds_what_the_run_judged(tmp_path):
    run_dir = write_recorded_run(tmp_path, warn_is_failure=False)
    rec = record.read_run(run_dir)
    assert rec.format == record.FORMAT and rec.warn_is_failure is False
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["format"] == record.FORMAT and data["warn_is_failure"] is False
    recorded = record.read_run(DATA / "runs" / DEFAULT)
    assert rec.jobs == recorded.jobs            # every field of every job, findings included
    assert [f.title for f in rec.findings_outside] == ["WARNING in lkdtm_WARNING"]
    assert rec.findings_outside[0].report == real_warning().report
    for j in rec.jobs:                          # each verdict.json holds the same job
        assert record.read_job(run_dir / j.dir) == j
        assert json.loads((run_dir / j.dir / "verdict.json").read_text())["format"] == record.FORMAT
    assert (rec.config, rec.config_file, rec.kind) == ("default", str(tmp_path / "default.yaml"), "run")
    assert data["counts"] == {"pass": 6} and data["repeats"] == {}


@pytest.mark.parametrize("name", [DEFAULT, BROKEN])
def test_a_record_written_again_loses_nothing(tmp_path, name):
    d = tmp_path / name
    shutil.copytree(DATA / "runs" / name, d)
    before = json.loads((d / "summary.json").read_text())
    rec = record.read_run(d)
    record.write_run_record(rec)
    after = json.loads((d / "summary.json").read_text())
    assert {k: after[k] for k in before if k != "jobs"} == {k: v for k, v in before.items() if k != "jobs"}
    assert len(after["jobs"]) == len(before["jobs"])
    for old, new in zip(before["jobs"], after["jobs"]):     # old records lack a few keys (repeat, dir)
        assert {k: new[k] for k in old} == old
    assert record.read_run(d) == replace(rec, format=record.FORMAT)


def test_a_record_from_before_the_format_field_reads_with_the_old_default():
    rec = record.read_run(DATA / "runs" / DEFAULT)
    assert "format" not in json.loads((DATA / "runs" / DEFAULT / "summary.json").read_text())
    assert rec.format == 0 and rec.warn_is_failure is True


def copy_with(tmp_path: Path, **changes) -> Path:
    d = tmp_path / DEFAULT
    shutil.copytree(DATA / "runs" / DEFAULT, d)
    s = json.loads((d / "summary.json").read_text())
    s.update(changes)
    (d / "summary.json").write_text(json.dumps(s))
    return d


def test_a_newer_record_is_one_line_exit_2(tmp_path):
    d = copy_with(tmp_path, format=record.FORMAT + 1)
    out = harness("report", str(d))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"harness.py: error: {d}/summary.json: run record format {record.FORMAT + 1} is newer than this "
        f"kharness reads (format {record.FORMAT}); update kharness to read it"]
    assert not (d / "junit.xml").exists()        # nothing rendered from a record it cannot read
    job = d / "jobs" / "ext4" / "zero-range-basic" / "verdict.json"
    job.write_text(json.dumps({**json.loads(job.read_text()), "format": record.FORMAT + 1}))
    with pytest.raises(UserError, match=f"job record format {record.FORMAT + 1} is newer"):
        record.read_job(job)


@pytest.mark.parametrize("changes, why", [
    ({"warn_is_failure": "no"}, "warn_is_failure is 'no', not true or false"),
    ({"jobs": [{"job": "ext4.zero-range-basic"}]}, "jobs[0].variant is missing"),
    ({"format": "1"}, "format '1' is not a record format number"),
])
def test_a_broken_record_is_one_line_exit_2(tmp_path, changes, why):
    d = copy_with(tmp_path, **changes)
    out = harness("report", str(d))
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"harness.py: error: {d}/summary.json: unreadable run record (") and why in line
