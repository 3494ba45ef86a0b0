"""End to end, for real: fstests built into the guest image, generic/363 on ext4 and xfs under
the default 6.12 kernel, fstests' own selftests for pass / fail / notrun / crash / watchdog, and a
test that freezes the test fs and writes to it, so the hung-task detector fires mid-test: the
harness must call that test a hang, boot a fresh guest and go on with the next test.

fstests is not packaged in Debian, so this runs only when $KHARNESS_FSTESTS_SRC names an fstests
checkout (e.g. a clone of the btrfs/fstests mirror); it is copied to a temporary directory and
one extra selftest is added to the copy (the user's tree is never modified).
"""
from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import REPO, harness

pytestmark = pytest.mark.e2e

SRC = os.environ.get("KHARNESS_FSTESTS_SRC", "")
if not SRC:
    pytest.skip("KHARNESS_FSTESTS_SRC is not set: no fstests source to build (fstests is not packaged "
                "in Debian; point it at a checkout, e.g. a clone of btrfs/fstests)", allow_module_level=True)

FREEZE_TEST = """\
#! /bin/bash
# kharness e2e: freeze the test fs and write to it; the writer blocks in D state and the
# hung-task detector reports it. fstests itself cannot see this; the harness must.
. ./common/preamble
_begin_fstest dangerous_selftest
_require_test
echo "freezing $TEST_DIR" >> $seqres.full
$XFS_IO_PROG -x -c freeze $TEST_DIR
echo data > $TEST_DIR/kharness-frozen-write
echo "I should have hung"
status=0
exit
"""

SELFTESTS = ["selftest/001", "selftest/002", "selftest/004", "selftest/900", "selftest/003", "selftest/006",
             "selftest/005", "selftest/007"]


def config_text(tree: Path, results: Path) -> str:
    """The default config's kernel (so the cached kernel is shared with `make run`), three variants,
    generic/363 everywhere and the selftests on ext4_4k only."""
    kernel = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())["kernel"]
    return yaml.safe_dump({
        "name": "e2e-fstests",
        "kernel": kernel,
        "vm": {"hung_task_timeout": 5},
        "variants": [{"name": "ext4_4k", "fstype": "ext4", "mkfs": "-b 4096"},
                     {"name": "ext4_iomap", "fstype": "ext4", "mount": "-o buffered_iomap"},
                     {"name": "xfs_4k", "fstype": "xfs"}],
        "tests": [],
        "fstests": {
            "source": str(tree),
            "tests": ["generic/363", *SELFTESTS],
            "expunge": [{"tests": SELFTESTS, "variants": ["xfs_4k", "ext4_iomap"],
                         "reason": "selftests run on ext4_4k only"}],
            "test_timeout": 1800,
            "timeouts": [{"tests": ["selftest/006"], "seconds": 60}],   # sleeps forever: the watchdog's case
        },
        "results": str(results),
    }, sort_keys=False)


@pytest.fixture(scope="module")
def fstests_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-fstests")
    tree = tmp / "fstests"
    shutil.copytree(Path(SRC).expanduser(), tree, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", "results", "local.config"))
    (tree / "tests" / "selftest" / "900").write_text(FREEZE_TEST)
    (tree / "tests" / "selftest" / "900").chmod(0o755)
    (tree / "tests" / "selftest" / "900.out").write_text("QA output created by 900\nI should have hung\n")
    cfg = tmp / "e2e-fstests.yaml"
    cfg.write_text(config_text(tree, tmp / "results"))
    env = {"KHARNESS_FSTESTS_SRC": str(tree)}      # the copy (it would override the config's source)
    # Generous: image build (~6 min), generic/363 twice (2-5 min each under TCG), 4 boots.
    proc = harness("run", "-c", str(cfg), timeout=90 * 60, env=env)
    run_dir = (tmp / "results" / "latest").resolve()
    return proc, run_dir


def cases(run_dir: Path) -> dict[tuple[str, str], ET.Element]:
    root = ET.parse(run_dir / "junit.xml").getroot()
    return {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}


def status(c: ET.Element) -> str:
    for child in c:
        if child.tag == "failure":
            return child.get("type")
        if child.tag in ("error", "skipped"):
            return child.tag
    return "pass"


def test_generic_363_passes_on_ext4_and_xfs(fstests_run):
    proc, run_dir = fstests_run
    cs = cases(run_dir)
    for variant in ("ext4_4k", "xfs_4k"):
        c = cs[(variant, "generic/363")]
        assert status(c) == "pass", ET.tostring(c, encoding="unicode")[:3000]
        assert float(c.get("time")) > 5
        job = run_dir / "jobs" / variant / "generic" / "363"
        assert "run fstests generic/363 at" in (job / "console.txt").read_text()
        assert "generic/363" in (job / "stdout").read_text()
    for sec in ("ext4_4k", "xfs_4k"):
        assert 'name="generic/363"' in (run_dir / "fstests" / sec / "result.xml").read_text()
    meta = json.loads((run_dir / "fstests" / "fstests.json").read_text())
    assert meta["commit"] and meta["image_key"]


def test_ext4_iomap_skips_with_the_mount_error(fstests_run):
    _, run_dir = fstests_run
    c = cases(run_dir)[("ext4_iomap", "generic/363")]
    assert status(c) == "skipped"
    assert "buffered_iomap" in c.find("skipped").get("message")


def test_selftests_map_to_verdicts(fstests_run):
    _, run_dir = fstests_run
    cs = cases(run_dir)
    assert status(cs[("ext4_4k", "selftest/001")]) == "pass"
    f = cs[("ext4_4k", "selftest/002")].find("failure")
    assert f.get("type") == "fail" and "output mismatch" in f.get("message")
    assert "I am intentionally broken" in f.text              # the .out.bad diff head in the failure text
    assert (run_dir / "jobs" / "ext4_4k" / "selftest" / "002" / "002.out.bad").exists()
    assert status(cs[("ext4_4k", "selftest/003")]) == "fail"
    assert "Always skip me" in cs[("ext4_4k", "selftest/004")].find("skipped").get("message")
    assert status(cs[("ext4_4k", "selftest/007")]) in ("pass", "fail")   # flaky on purpose; must have run


def test_hung_task_in_a_test_is_a_hang_and_the_run_resumes(fstests_run):
    proc, run_dir = fstests_run
    cs = cases(run_dir)
    c = cs[("ext4_4k", "selftest/900")]
    f = c.find("failure")
    assert f is not None and f.get("type") == "hang", ET.tostring(c, encoding="unicode")
    assert f.get("message").startswith("INFO: task hung in")
    job = run_dir / "jobs" / "ext4_4k" / "selftest" / "900"
    assert (job / "evidence.txt").exists()
    assert "run fstests selftest/900 at" in (job / "console.txt").read_text()
    assert "blocked for more than" in (job / "console.txt").read_text()
    # ./check runs tests in sorted order: 001-004, 005 crashes the guest, 006 is stopped by the watchdog,
    # 007 and 900 run in a third guest, and xfs_4k in a fourth: each trouble costs one test only.
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["boots"] >= 4
    assert status(cs[("xfs_4k", "generic/363")]) == "pass"


def test_watchdog_and_crash(fstests_run):
    _, run_dir = fstests_run
    cs = cases(run_dir)
    f = cs[("ext4_4k", "selftest/006")].find("failure")      # sleeps forever: only the watchdog sees it
    assert f.get("type") == "hang" and "watchdog" in f.get("message")
    f = cs[("ext4_4k", "selftest/005")].find("failure")      # echo c > /proc/sysrq-trigger
    assert f.get("type") == "crash"
    # the results of the tests before the crash were pulled while the guest was still alive
    assert (run_dir / "jobs" / "ext4_4k" / "selftest" / "002" / "002.out.bad").exists()


def test_exit_status_says_failures(fstests_run):
    proc, _ = fstests_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
