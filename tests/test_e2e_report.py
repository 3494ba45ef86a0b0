"""End to end: shards merged equal an unsharded run; baseline labels from two real kernels;
a nightly run. Real kernels from the cache (the default 6.12 and the deliberately broken
selftest kernel), real TCG guests."""
import json
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from conftest import REPO, harness

pytestmark = pytest.mark.e2e
SCHEMA = xmlschema.XMLSchema(str(REPO / "tests" / "data" / "schema" / "junit-10.xsd"))
# Generous: a cold kernel build (~5 min, longer under load) + boots under TCG, x3.
DEADLINE = 3 * 60 * 10

KERNEL = """\
kernel:
  tarball: /usr/src/linux-source-6.12.tar.xz
  series: {series}
  fragments: [virtio-guest, hang-detect]
"""
DEFAULT_SERIES = "[kharness-id, zero-range-race-window]"
BROKEN_SERIES = ("[kharness-id, zero-range-race-window, selftest-iomap-zero-skip-dirty, "
                 "selftest-ext4-zero-range-no-partial, selftest-ext4-truncate-up-no-tail-zero]")


def config(tmp_path, name, body, series=DEFAULT_SERIES):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n" + KERNEL.format(series=series) +
                    f"vm: {{accel: tcg}}\nresults: {tmp_path / 'results'}\n" + body)
    return path


def summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def test_shards_merge_to_the_unsharded_result(tmp_path):
    cfg = config(tmp_path, "shards", """\
variants:
  - {name: ext4, fstype: ext4}
  - {name: xfs, fstype: xfs}
  - {name: xfs_reflink, fstype: xfs, mkfs: "-m reflink=1"}
tests: [zero-range-basic]
repeat: 2
""")
    whole = harness("run", "-c", str(cfg), timeout=DEADLINE)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    whole_dir = (tmp_path / "results" / "latest").resolve()
    shard_dirs = []
    for i in (1, 2):
        out = harness("run", "-c", str(cfg), "--shard", f"{i}/2", timeout=DEADLINE)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        shard_dirs.append((tmp_path / "results" / "latest").resolve())
    jobs = [{j["job"] for j in summary(d)["jobs"]} for d in shard_dirs]
    assert jobs[0] and jobs[1] and not jobs[0] & jobs[1]          # both shards did work, none twice
    assert all(summary(d)["kind"] == "shard" for d in shard_dirs)
    merged = tmp_path / "results" / "merged"
    out = harness("report", "--merge", *map(str, shard_dirs), "-o", str(merged))
    assert out.returncode == 0, out.stderr
    m, w = summary(merged), summary(whole_dir)
    assert sorted(j["job"] for j in m["jobs"]) == sorted(j["job"] for j in w["jobs"])
    assert len(m["jobs"]) == 6 and m["not_run"] == [] and m["kind"] == "merged"
    assert {j["job"]: j["status"] for j in m["jobs"]} == {j["job"]: j["status"] for j in w["jobs"]}
    assert list(SCHEMA.iter_errors(str(merged / "junit.xml"))) == []
    assert len(list(ET.parse(merged / "junit.xml").getroot().iter("testcase"))) == 6
    # Each job's console window still resolves in the merged directory.
    for j in m["jobs"]:
        assert (merged / j["dir"] / "console.txt").exists() and (merged / j["console_file"]).exists()


def test_baseline_labels_a_regression(tmp_path):
    """The broken selftest series against the plain base series: zero-range-basic fails on
    ext4 only with the series (regression) and passes on xfs with both (stable)."""
    cfg = config(tmp_path, "baseline", f"""\
variants:
  - {{name: ext4, fstype: ext4}}
  - {{name: xfs, fstype: xfs}}
tests: [zero-range-basic]
baseline: {{series: {DEFAULT_SERIES}}}
""", series=BROKEN_SERIES)
    out = harness("run", "-c", str(cfg), timeout=DEADLINE)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = (tmp_path / "results" / "latest").resolve()
    base = summary(run_dir / "baseline")
    assert {j["job"]: j["status"] for j in base["jobs"]} == {"ext4.zero-range-basic": "pass", "xfs.zero-range-basic": "pass"}
    assert base["properties"]["series"] == "kharness-id,zero-range-race-window"
    assert summary(run_dir)["properties"]["series"].endswith("selftest-ext4-truncate-up-no-tail-zero")
    text = (run_dir / "summary.txt").read_text()
    assert "Regressions against the baseline (fail only with the series): 1" in text
    assert "ext4.zero-range-basic" in text and "[regression]" in text
    props = {p.get("name"): p.get("value") for p in ET.parse(run_dir / "junit.xml").getroot().iter("property")}
    assert props["label.ext4.zero-range-basic"] == "regression"
    assert "label.xfs.zero-range-basic" not in props                  # stable: nothing to flag
    page = (run_dir / "report.html").read_text()
    assert "regression" in page and 'href="baseline/report.html"' in page
    assert (run_dir / "baseline" / "report.html").exists()


def test_nightly_run_writes_summary_and_history(tmp_path):
    cfg = config(tmp_path, "night", """\
variants: [{name: ext4, fstype: ext4}]
tests: [zero-range-basic]
nightly: {keep: 1}
""")
    manual = harness("run", "-c", str(cfg), timeout=DEADLINE)
    assert manual.returncode == 0, manual.stderr[-3000:]
    runs = []
    for _ in range(2):
        out = harness("nightly", "-c", str(cfg), timeout=DEADLINE)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "kharness nightly" in out.stdout and "Everything passed." in out.stdout
        runs.append((tmp_path / "results" / "latest").resolve())
    assert summary(runs[1])["kind"] == "nightly" and runs[1].name.endswith("-night-nightly")
    # keep: 1 pruned the first nightly; the run made by hand is never pruned.
    assert not runs[0].exists() and runs[1].exists()
    names = sorted(p.name for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink())
    assert len(names) == 2 and "retention: deleted 1 nightly run(s)" in out.stderr
    # History keeps all three runs, and the second nightly compared itself with the first.
    assert "New failures since " in (runs[1] / "summary.txt").read_text()
    index = (tmp_path / "results" / "index.html").read_text()
    assert index.count("(pruned)") == 1 and index.count('/report.html">') == 2
