"""End to end on the second built-in kernel: Linux 7.2 from Debian sid (iomap folio
batch merged) with the project's 7.2 series; every reproducer on xfs, xfs reflink,
ext4, and ext4 -o buffered_iomap (which must skip: 7.2 lacks the ext4 series)."""
import json
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO, harness

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def folio_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("folio")
    cfg = tmp / "folio-batch.yaml"
    # The shipped config, with results in tmp.
    cfg.write_text((REPO / "configs/folio-batch.yaml").read_text() + f"results: {tmp / 'results'}\n")
    # Each reproducer runs 10 s per variant; the timeout covers a cold 7.2 build (~5-20 min) and 25 jobs, x3.
    proc = harness("run", "-c", str(cfg), "--duration", "10s", timeout=3 * 60 * 45)
    return proc, (tmp / "results" / "latest").resolve()


def test_folio_batch_kernel_runs_every_reproducer(folio_run):
    proc, run_dir = folio_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    kernel = json.loads((run_dir / "kernel.json").read_text())
    assert kernel["source"]["package"] == "linux-source-7.2"
    assert kernel["source"]["version"].startswith("7.2.")
    assert kernel["release"].startswith("7.2.") and kernel["release"].endswith("-kharness")
    assert [s["name"] for s in kernel["series"]] == ["kharness-id", "zero-range-race-window-7.2"]
    summary = json.loads((run_dir / "summary.json").read_text())
    by_status = {}
    for j in summary["jobs"]:
        by_status.setdefault(j["status"], []).append(j["job"])
    assert set(by_status) <= {"pass", "skip"}, by_status
    ran = {j["job"] for j in summary["jobs"] if j["status"] == "pass"}
    for v in ("xfs", "xfs_reflink", "ext4"):
        assert f"{v}.zero-range-basic" in ran and f"{v}.eof-zeroing" in ran
    assert "xfs_reflink.insert-range-cow-eof" in ran


def test_buffered_iomap_variant_skips_with_its_reason(folio_run):
    _, run_dir = folio_run
    root = ET.parse(run_dir / "junit.xml").getroot()
    (suite,) = [s for s in root.iter("testsuite") if s.get("name") == "ext4_iomap"]
    cases = list(suite.iter("testcase"))
    assert cases and all(c.find("skipped") is not None for c in cases)
    assert "buffered_iomap" in cases[0].find("skipped").get("message")
