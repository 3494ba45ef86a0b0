"""End to end: `harness.py bisect` finds the culprit of a three-patch series on a flaky rate.

configs/selftest-bisect.yaml: the default kernel's series (the good end, from `baseline:`), then
a harmless comment, the iomap zero range breakage (selftest-iomap-zero-skip-dirty), another
harmless comment. The job is eof-zeroing cut to 3 iterations (tests/data/bisect), which catches
that breakage in only part of its runs. Real builds (the candidates are incremental builds in
the 6.12 build tree the other e2e tests use; k = 0 is the default kernel), real boots."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import REPO, harness

pytestmark = pytest.mark.e2e
FLAKY = REPO / "tests" / "data" / "bisect"


@pytest.fixture(scope="module")
def bisection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bisect")
    data = yaml.safe_load((REPO / "configs/selftest-bisect.yaml").read_text())
    data.update(tests=["eof-zeroing-short"], results=str(tmp / "results"))
    cfg = tmp / "selftest-bisect.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    # Bound: up to 4 kernel builds (a cold 6.12 one of ~6-12 min, the rest incremental) and at most
    # 10 + 3 x 23 runs of about 10 s each under TCG, x3.
    proc = harness("bisect", "-c", str(cfg), "--job", "xfs.eof-zeroing-short",
                   env={"KHARNESS_REPRODUCERS": str(FLAKY)}, timeout=3 * (4 * 12 * 60 + 79 * 10))
    dirs = sorted((tmp / "results").glob("*-bisect"))
    return proc, dirs[-1] if dirs else None, cfg


def test_the_culprit_is_the_breakage(bisection):
    proc, d, _ = bisection
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    b = json.loads((d / "bisect.json").read_text())
    assert b["n"] == 3 and b["fixed_patches"] == 2
    assert b["culprit"]["k"] == 2
    assert b["culprit"]["subject"].startswith("SELFTEST BREAKAGE: iomap: zero range skips dirty folios")
    assert b["culprit"]["author"] and b["culprit"]["series"] == "selftest-iomap-zero-skip-dirty"
    assert b["signature"] == "exit status 1: MISMATCH"
    assert "culprit: patch 2 of 3" in proc.stdout


def test_the_decisions_follow_the_rule(bisection):
    _, d, _ = bisection
    b = json.loads((d / "bisect.json").read_text())
    need = b["runs_per_good_step"]
    by_k = {x["k"]: x for x in b["decisions"]}
    assert by_k[3]["decision"] == "bad" and by_k[2]["decision"] == "bad" and by_k[2]["hits"] >= 1
    for k in (0, 1):
        assert by_k[k]["decision"] == "good" and by_k[k]["hits"] == 0 and by_k[k]["clean"] >= need
    assert 0 < b["failure_rate"] <= 1 and b["confidence_reached"] >= 0.95 ** 2 - 1e-9
    runs = b["runs"]
    assert all(r["status"] in ("pass", "fail") for r in runs), runs
    assert all("MISMATCH" in r["message"] for r in runs if r["status"] == "fail")
    assert not any(r["status"] == "fail" for r in runs if r["k"] < 2)


def test_steps_are_incremental_builds_with_their_evidence(bisection):
    _, d, _ = bisection
    b = json.loads((d / "bisect.json").read_text())
    built = [v for v in b["visits"] if not v["cache_hit"]]
    for v in built[1:]:             # after the first build (cold on a fresh machine) the tree is reused
        assert v["objects_compiled"] < 200, v
    for v in b["visits"]:
        step = d / v["dir"]
        kernel = json.loads((step / "kernel.json").read_text())
        patches = [p["subject"] for s in kernel["series"] for p in s["patches"]]
        assert len(patches) == 2 + v["k"], patches
        assert (step / "console.log").stat().st_size > 0 and (step / "summary.json").is_file()
    for r in b["runs"]:
        assert (d / r["dir"] / "verdict.json").is_file()


def test_report_and_junit(bisection):
    _, d, _ = bisection
    html = (d / "report.html").read_text()
    assert "Culprit: patch 2 of 3" in html and "SELFTEST BREAKAGE" in html
    suite = ET.parse(d / "junit.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert sorted(c.get("name").split()[0] for c in cases) == ["k=0", "k=1", "k=2", "k=3"]
    failed = sorted(c.get("name").split()[0] for c in cases if c.find("failure") is not None)
    assert failed == ["k=2", "k=3"]


def test_resume_of_a_finished_bisection_runs_nothing_more(bisection):
    _, d, _ = bisection
    before = json.loads((d / "bisect.json").read_text())
    proc = harness("bisect", "--resume", str(d), env={"KHARNESS_REPRODUCERS": str(FLAKY)}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = json.loads((d / "bisect.json").read_text())
    assert after["runs"] == before["runs"] and after["culprit"] == before["culprit"]


def test_a_job_not_in_the_plan_is_refused_before_anything_exists(bisection, tmp_path):
    _, _, cfg = bisection
    results = yaml.safe_load(cfg.read_text())["results"]
    before = sorted(p.name for p in (REPO / "results").glob("*")) if (REPO / "results").exists() else []
    listed = sorted(p.name for p in Path(results).glob("*"))
    proc = harness("bisect", "-c", str(cfg), "--job", "ext4.eof-zeroing-short",
                   env={"KHARNESS_REPRODUCERS": str(FLAKY)}, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no variant 'ext4'" in proc.stderr
    assert sorted(p.name for p in Path(results).glob("*")) == listed
    assert (sorted(p.name for p in (REPO / "results").glob("*")) if (REPO / "results").exists() else []) == before
