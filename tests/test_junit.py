"""junit.xml structure: suites per variant, verdict -> element mapping, properties."""
import xml.etree.ElementTree as ET

from kharness.catalogue import Reproducer
from kharness.config import Variant
from kharness.console import Finding
from kharness.guest import Outcome
from kharness.report import junit
from kharness.runner import Job, JobResult
from kharness.verdict import Verdict

EXT4, XFS = Variant("ext4", "ext4"), Variant("xfs", "xfs")
ZR = Reproducer("zero-range-basic", "d", source="zero-range-basic.c")
CANARY = Reproducer("hang-canary", "d", script="hang-canary.sh", expect="hang")
HANG = Finding(kind="hang", type="HANG", title="INFO: task hung in ext4_writepages", line=120, report="INFO: task ...")


def result(tmp_path, variant, test, verdict, outcome=Outcome(0, 1.5)):
    d = tmp_path / variant.name / test.name
    d.mkdir(parents=True)
    (d / "stdout").write_text("iterations=5 seconds=1\n")
    (d / "stderr").write_text("")
    return JobResult(Job(variant, test, 1, 1), verdict, outcome, d)


def test_structure_and_mapping(tmp_path):
    rs = [
        result(tmp_path, EXT4, ZR, Verdict("pass", "")),
        result(tmp_path, EXT4, CANARY, Verdict("hang", "INFO: task hung in ext4_writepages", findings=[HANG])),
        result(tmp_path, XFS, ZR, Verdict("fail", "exit status 1: MISMATCH file=f0 offset=4096")),
        result(tmp_path, XFS, CANARY, Verdict("error", "boot failed: no kernel banner"), None),
    ]
    skipped = [(Variant("ext4_iomap", "ext4", mount="-o buffered_iomap"), ZR, "cannot mount")]
    props = {"kernel_release": "6.12.117-kharness", "accel": "tcg", "series": "kharness-id"}
    out = tmp_path / "junit.xml"
    junit.write(out, props, rs, [Job(XFS, Reproducer("later", "d", source="x.c"), 1, 1)], "run interrupted",
                skipped, [], True)
    root = ET.parse(out).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"ext4", "xfs", "ext4_iomap"}
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert cases[("ext4", "zero-range-basic")].find("failure") is None
    f = cases[("ext4", "hang-canary")].find("failure")
    assert f.get("type") == "hang" and f.get("message") == "INFO: task hung in ext4_writepages"
    assert "console.log line 120" in f.text
    assert cases[("xfs", "zero-range-basic")].find("failure").get("type") == "fail"
    assert cases[("xfs", "hang-canary")].find("error").get("message") == "boot failed: no kernel banner"
    assert cases[("xfs", "later")].find("error").get("message") == "run interrupted"
    assert "cannot mount" in cases[("ext4_iomap", "zero-range-basic")].find("skipped").get("message")
    for s in suites.values():
        assert {p.get("name"): p.get("value") for p in s.iter("property")} == props
    assert suites["xfs"].get("failures") == "1" and suites["xfs"].get("errors") == "2"


def test_findings_outside_jobs_are_not_lost(tmp_path):
    out = tmp_path / "junit.xml"
    boot_warn = Finding(kind="warn", type="WARNING", title="WARNING in acpi_init", line=3, report="WARNING: ...")
    junit.write(out, {}, [], [], "", [], [boot_warn], True)
    (case,) = ET.parse(out).getroot().iter("testcase")
    assert (case.get("classname"), case.get("name")) == ("kernel", "outside-jobs")
    assert case.find("failure").get("message") == "WARNING in acpi_init"
    junit.write(out, {}, [], [], "", [], [boot_warn], False)
    (case,) = ET.parse(out).getroot().iter("testcase")
    assert case.find("failure") is None and "WARNING in acpi_init" in case.find("system-out").text


def test_repeats_are_tallied_as_k_of_n(tmp_path):
    from kharness import results
    rs = []
    for i, status in enumerate(["pass", "fail", "pass"], 1):
        d = tmp_path / f"zr{i}"
        d.mkdir()
        rs.append(JobResult(Job(EXT4, ZR, i, 3), Verdict(status, ""), Outcome(0, 1.0), d))
    for i in (1, 2):
        d = tmp_path / f"c{i}"
        d.mkdir()
        rs.append(JobResult(Job(XFS, ZR, i, 2), Verdict("hang", "INFO: task hung in x"), Outcome(None, 1.0), d))
    assert results.repeat_tallies(rs) == {
        "ext4.zero-range-basic": {"failed": 1, "runs": 3, "label": "flaky 1/3"},
        "xfs.zero-range-basic": {"failed": 2, "runs": 2, "label": "failing"},
    }
    assert results.repeat_tallies(rs[:1] + [JobResult(Job(EXT4, ZR, 1, 1), Verdict("pass", ""), None, tmp_path)]) == {
        "ext4.zero-range-basic": {"failed": 0, "runs": 1, "label": "pass"}}
