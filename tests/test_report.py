"""Reports rendered from recorded run directories (tests/data/runs: captured from real runs).

    default           the 6.12 default kernel, zero-range-basic + hang canary on three variants
    selftest-broken   the deliberately broken kernel, seven reproducers x3 repeats (45 fail, 12 pass)
"""
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from kharness.report import record, render
from kharness.report.history import History
from kharness.report.labels import Tally, baseline_label, job_history

DATA = Path(__file__).parent / "data"
DEFAULT = "20261126T121654Z-default"
BROKEN = "20261126T111800Z-selftest-broken"
SCHEMA = xmlschema.XMLSchema(str(DATA / "schema" / "junit-10.xsd"))


def copy_run(root: Path, name: str, as_name: str | None = None, edit=None) -> Path:
    """A recorded run copied into a results root; `edit(summary)` may change its record."""
    d = root / (as_name or name)
    shutil.copytree(DATA / "runs" / name, d)
    if as_name or edit:
        s = json.loads((d / "summary.json").read_text())
        s["run"] = d.name
        if as_name:
            s["started"] = f"{as_name[:4]}-{as_name[4:6]}-{as_name[6:8]}T{as_name[9:11]}:{as_name[11:13]}:{as_name[13:15]}Z"
        if edit:
            edit(s)
        (d / "summary.json").write_text(json.dumps(s))
    return d


def cases(junit_path: Path) -> dict:
    root = ET.parse(junit_path).getroot()
    return {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}


@pytest.mark.parametrize("name", [DEFAULT, BROKEN])
def test_junit_is_valid_against_the_jenkins_schema(tmp_path, name):
    d = copy_run(tmp_path, name)
    render.render_run(d)
    errors = list(SCHEMA.iter_errors(str(d / "junit.xml")))
    assert errors == []


def test_schema_check_can_fail(tmp_path):
    """The schema rejects what junit-xml used to write (unrounded time, `disabled`)."""
    bad = tmp_path / "bad.xml"
    bad.write_text('<testsuites disabled="0" time="49.84093851199759"><testsuite name="x" tests="0" '
                   'failures="0" errors="0"/></testsuites>')
    assert len(list(SCHEMA.iter_errors(str(bad)))) == 2


def test_junit_maps_every_recorded_verdict(tmp_path):
    d = copy_run(tmp_path, BROKEN)
    render.render_run(d)
    summary = json.loads((d / "summary.json").read_text())
    c = cases(d / "junit.xml")
    assert len(c) == len(summary["jobs"]) + len(summary["not_applicable"]) == 59
    failures = [k for k, el in c.items() if el.find("failure") is not None]
    assert len(failures) == summary["counts"]["fail"] == 45
    f = c[("ext4", "zero-range-basic#1")].find("failure")
    assert f.get("type") == "fail" and "MISMATCH file=f0 offset=10426" in f.get("message")
    assert "MISMATCH" in c[("ext4", "zero-range-basic#1")].find("system-err").text
    assert c[("xfs", "zero-range-basic#2")].find("failure") is None
    assert "not applicable" in c[("ext4", "insert-range-cow-eof")].find("skipped").get("message")
    props = {p.get("name"): p.get("value") for p in ET.parse(d / "junit.xml").getroot().iter("property")}
    assert props["kernel_release"] == "6.12.117-kharness"
    assert props["series"].startswith("kharness-id,zero-range-race-window,selftest-")
    assert props["head_commit"] == "36f9bd811292ee90431d7ba1f468f60d4ff2c994"
    assert props["accel"].startswith("tcg")


def test_expected_hang_passes_with_its_evidence(tmp_path):
    d = copy_run(tmp_path, DEFAULT)
    render.render_run(d)
    canary = cases(d / "junit.xml")[("ext4", "hang-canary")]
    assert canary.find("failure") is None and canary.find("error") is None
    assert "INFO: task hung in mnt_want_write" in canary.find("system-out").text


def test_interrupted_run_lists_what_did_not_run(tmp_path):
    """The real record cut short: the last three jobs never ran, as after a Ctrl-C."""
    def cut(s):
        gone = s["jobs"][-3:]
        s["jobs"] = s["jobs"][:-3]
        s["not_run"] = [{"job": j["job"], "variant": j["variant"], "name": j["test"]} for j in gone]
        s["not_run_reason"] = "run interrupted before this job"
        s["interrupted"] = True
    d = copy_run(tmp_path, DEFAULT, edit=cut)
    v = render.render_run(d)
    c = cases(d / "junit.xml")
    assert c[("xfs_reflink", "hang-canary")].find("error").get("message") == "run interrupted before this job"
    assert len(c) == 6
    assert list(SCHEMA.iter_errors(str(d / "junit.xml"))) == []
    assert "INTERRUPTED" in (d / "summary.txt").read_text()
    assert v.rec.counts == {"pass": 3, "error": 3}


def test_html_report_matrix_evidence_and_links(tmp_path):
    d = copy_run(tmp_path, BROKEN)
    render.render_run(d)
    page = (d / "report.html").read_text()
    assert "SELFTEST BREAKAGE: iomap: zero range skips dirty folios over holes/unwritten" in page
    assert '<td class="fail"><a href="#ext4.zero-range-basic" title="ext4.zero-range-basic">fail 3/3' in page
    assert '<td class="pass"><a href="#xfs.zero-range-basic" title="xfs.zero-range-basic">pass &times;3' in page
    assert '<h3 id="xfs_reflink.insert-range-cow-eof">' in page
    assert 'href="jobs/ext4/zero-range-basic.1/stderr"' in page
    assert (d / "jobs/ext4/zero-range-basic.1/stderr").exists()


def test_html_console_excerpt_around_a_finding(tmp_path):
    def fail_canary(s):   # the canary's real hang report, shown as a failure of its job
        for j in s["jobs"]:
            if j["job"] == "ext4.hang-canary":
                j["status"], j["message"] = "hang", "INFO: task hung in mnt_want_write"
    d = copy_run(tmp_path, DEFAULT, as_name="20261126T130000Z-default", edit=fail_canary)
    render.render_run(d)
    page = (d / "report.html").read_text()
    assert '<span class="ln">    261</span>  <span class="hit">' in page
    assert "percpu_rwsem_wait" in page


def test_guest_text_is_escaped(tmp_path):
    """Output and messages come from the (broken, possibly hostile) guest: never markup."""
    planted = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'

    def plant(s):
        j = s["jobs"][0]
        j["status"], j["message"] = "fail", planted
    d = copy_run(tmp_path, DEFAULT, edit=plant)
    (d / "jobs/ext4/zero-range-basic/stderr").write_text(planted + "\n")
    render.render_run(d)
    page = (d / "report.html").read_text()
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in page
    assert "&lt;script&gt;" in (d / "junit.xml").read_text()        # XML-escaped text, not elements
    dom = chromium_dom(d / "report.html")
    assert "<title>kharness" in dom and "pwned</title>" not in dom
    assert "<script" not in dom and "&lt;script&gt;document.title" in dom


def chromium_dom(page: Path) -> str:
    """The DOM after a real browser (Debian's chromium, headless) loaded and ran the page."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: run `make setup` (scripts/setup.sh installs it)"
    out = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_report_renders_in_a_headless_browser(tmp_path):
    d = copy_run(tmp_path, BROKEN)
    render.render_run(d)
    dom = chromium_dom(d / "report.html")
    # The browser parsed the whole page: the matrix and the last evidence section are in its DOM.
    assert dom.count('<td class="fail">') == 15
    assert 'id="xfs_reflink.zero-range-vs-writeback-storm"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1400,2000", f"--screenshot={shot}", (d / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000


def test_history_new_failures_streaks_and_flake_rate(tmp_path):
    """Three nights of the default config: all pass; ext4 canary fails; it fails again
    and xfs zero-range-basic is flaky (1 of 3)."""
    def night2(s):
        s["jobs"][1]["status"], s["jobs"][1]["message"] = "fail", "expected hang, got pass"

    def night3(s):
        night2(s)
        base = s["jobs"][2]
        s["jobs"][2:3] = [dict(base, job=f"{base['job']}.{i}", iteration=i, repeat=3,
                               status="fail" if i == 2 else "pass", message="exit status 1: MISMATCH" if i == 2 else "")
                          for i in (1, 2, 3)]
    runs = [copy_run(tmp_path, DEFAULT, "20261101T000000Z-default"),
            copy_run(tmp_path, DEFAULT, "20261102T000000Z-default", night2),
            copy_run(tmp_path, DEFAULT, "20261103T000000Z-default", night3)]
    views = [render.render_run(d) for d in runs]
    assert views[0].previous_run is None and views[0].new_failures == []
    v2 = views[1]
    assert v2.previous_run == "20261101T000000Z-default"
    assert [g.key for g in v2.new_failures] == ["ext4.hang-canary"]
    v3 = views[2]
    canary = v3.cell("ext4", "hang-canary")
    assert canary.history.streak == 2 and canary.history.failing_since == "20261102T000000Z-default"
    assert canary.history.last_pass == "20261101T000000Z-default" and not canary.history.new_failure
    assert abs(canary.history.flake_rate - 2 / 3) < 1e-9
    flaky = v3.cell("xfs", "zero-range-basic")
    assert flaky.tally.label == "flaky 1/3" and flaky.labels == ["flaky 1/3", "new failure"]
    text = (runs[2] / "summary.txt").read_text()
    assert "New failures since 20261102T000000Z-default: 1" in text
    assert "xfs.zero-range-basic" in text and "failing since 20261102T000000Z-default, 2 run(s)" in text
    props = {p.get("name"): p.get("value") for p in ET.parse(runs[2] / "junit.xml").getroot().iter("property")}
    assert props["label.xfs.zero-range-basic"] == "flaky 1/3; new failure"
    index = (tmp_path / "index.html").read_text()
    assert index.count('href="2026110') == 3 and "<svg" in index
    # Re-rendering an older run sees only the runs before it.
    assert render.render_run(runs[1]).previous_run == "20261101T000000Z-default"
    with History(tmp_path) as h:
        assert [r.name for r in h.runs()][0] == "20261103T000000Z-default"
        assert set(h.mean_durations("default")) >= {"ext4.zero-range-basic", "xfs.hang-canary"}


def test_labels_pure():
    assert Tally("k", 0, 3).label == "pass" and Tally("k", 3, 3).label == "failing"
    assert Tally("k", 1, 3).label == "flaky 1/3"
    assert baseline_label(Tally("k", 1, 3), Tally("k", 0, 3)) == "regression"
    assert baseline_label(Tally("k", 0, 1), Tally("k", 1, 1)) == "fixed"
    assert baseline_label(Tally("k", 1, 1), Tally("k", 2, 2)) == "still failing"
    assert baseline_label(Tally("k", 0, 1), Tally("k", 0, 1)) == "stable"
    assert baseline_label(Tally("k", 0, 1), None) is None
    h = job_history([("a", False), ("b", True), ("c", True)], "d", True)
    assert (h.streak, h.failing_since, h.last_pass, h.new_failure) == (3, "b", "a", False)
    h = job_history([("a", True)], "b", False)
    assert (h.streak, h.last_pass, h.flake_rate) == (0, "b", 0.5)
    assert job_history([], "a", True).new_failure


def test_old_record_format_loads():
    rec = record.load(DATA / "runs" / BROKEN)
    assert len(rec.jobs) == 57 and rec.jobs[0].repeat > 1 and rec.jobs[0].name == "zero-range-basic#1"
    assert rec.jobs[0].dir == "jobs/ext4/zero-range-basic.1"


def test_history_starts_from_the_runs_already_there(tmp_path):
    """A results/ from before history existed: its runs become history on the first render."""
    old = copy_run(tmp_path, DEFAULT, "20261101T000000Z-default")
    new = copy_run(tmp_path, DEFAULT, "20261102T000000Z-default")
    assert not (tmp_path / "history.sqlite").exists()
    v = render.render_run(new)
    assert v.previous_run == old.name
    with History(tmp_path) as h:
        assert [r.name for r in h.runs()] == [new.name, old.name]
