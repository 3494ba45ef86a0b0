"""End to end, for real: Debian's 6.12 built with our series, the image, a TCG/KVM boot,
the zero-range job on ext4 and xfs, and the hang canary detected on the console.

Uses the real cache (~/.cache/kharness or $KHARNESS_CACHE) so the kernel and image
are built once for all e2e tests and for `make run`.
"""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import harness

pytestmark = pytest.mark.e2e

CONFIG = """\
name: e2e
kernel:
  tarball: /usr/src/linux-source-6.12.tar.xz
  series: [kharness-id, zero-range-race-window]
  fragments: [virtio-guest, hang-detect]
vm: {{hung_task_timeout: 5}}
variants:
  - {{name: ext4, fstype: ext4}}
  - {{name: xfs, fstype: xfs}}
tests: [zero-range-basic, hang-canary]
results: {results}
"""


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    cfg = tmp / "e2e.yaml"
    cfg.write_text(CONFIG.format(results=tmp / "results"))
    # Generous: a cold kernel build (~5 min) + debootstrap (~1 min) + 3 boots under TCG, x3.
    proc = harness("run", "-c", str(cfg), timeout=3 * 60 * 10)
    run_dir = (tmp / "results" / "latest").resolve()
    return proc, run_dir


def test_run_passes_and_writes_junit(default_run):
    proc, run_dir = default_run
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    root = ET.parse(run_dir / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    # A boot that crashed and was booted once more (README: "booting once more"; about one TCG boot
    # in 50) stays on record as a finding outside any job: the junit suite "kernel". Anything else
    # outside the jobs is a real problem of this run.
    outside = json.loads((run_dir / "summary.json").read_text())["findings_outside_jobs"]
    failed_boots = _boots_that_never_got_ready(run_dir / "console.log")
    for f in outside:
        assert any(a <= f["line"] <= b for a, b in failed_boots), \
            f"outside any job and any failed boot: {f['title']} (console.log line {f['line']})"
    assert set(suites) == {"ext4", "xfs"} | ({"kernel"} if outside else set())
    if outside:
        assert [c.get("name") for c in suites.pop("kernel").iter("testcase")] == ["outside-jobs"]
    for name, suite in suites.items():
        cases = {c.get("name"): c for c in suite.iter("testcase")}
        assert set(cases) == {"zero-range-basic", "hang-canary"}
        for c in cases.values():
            assert c.get("classname") == name
            assert list(c) == [] or all(child.tag in ("system-out", "system-err") for child in c), ET.tostring(c)
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["kernel_release"].endswith("-kharness")          # the series is in the kernel
        assert props["series"] == "kharness-id,zero-range-race-window"
        assert props["accel"].split()[0] in ("kvm", "tcg")
        assert len(props["head_commit"]) == 40
    # vm.cpus: 2 must mean two CPUs in the guest (races need them; without ACPI the guest finds them
    # in the MP table only because QEMU gives it one socket per CPU).
    assert "smp: Brought up 1 node, 2 CPUs" in (run_dir / "console.log").read_text()
    # The default kernel has a PVH entry point (virtio-guest.config): QEMU loads its vmlinux.
    kernel_args = [ln.split(" -kernel ", 1)[1].split()[0] for ln in (run_dir / "qemu.log").read_text().splitlines()
                   if ln.startswith("$ qemu-system-x86_64 ")]
    assert kernel_args and all(a.endswith("/vmlinux") for a in kernel_args), kernel_args


def _boots_that_never_got_ready(console: Path) -> list[tuple[int, int]]:
    """console.log line ranges of the boots whose guest never printed the ready marker."""
    from kharness.vm import READY_MARKER
    bounds, ready = [], set()
    lines = console.read_text(errors="replace").splitlines()
    for no, line in enumerate(lines, 1):
        if line.startswith("==== kharness: boot "):
            bounds.append(no)
        elif READY_MARKER in line and bounds:
            ready.add(bounds[-1])
    ends = bounds[1:] + [len(lines) + 1]
    return [(a, b - 1) for a, b in zip(bounds, ends) if a not in ready]


def test_zero_range_job_ran_in_the_guest(default_run):
    _, run_dir = default_run
    for fs in ("ext4", "xfs"):
        v = json.loads((run_dir / "jobs" / fs / "zero-range-basic" / "verdict.json").read_text())
        assert v["status"] == "pass" and v["exit_status"] == 0
        assert v["guest_seconds"] is not None and v["guest_seconds"] > 0
        assert "iterations=" in (run_dir / "jobs" / fs / "zero-range-basic" / "stdout").read_text()


def test_hang_canary_detected_evidenced_and_recovered(default_run):
    _, run_dir = default_run
    summary = json.loads((run_dir / "summary.json").read_text())
    jobs = {j["job"]: j for j in summary["jobs"]}
    canary = jobs["ext4.hang-canary"]
    assert canary["status"] == "pass" and canary["expected"] == "hang"
    assert canary["message"].startswith("expected hang happened: INFO: task hung in")
    hangs = [f for f in canary["findings"] if f["type"] == "HANG"]
    assert hangs and hangs[0]["kind"] == "hang"
    window = (run_dir / "jobs" / "ext4" / "hang-canary" / "console.txt").read_text()
    assert "blocked for more than" in window
    assert "Show Blocked State" in window          # the sysrq-w dump is in the job's evidence
    # The guest was rebooted after the hang and the next job (xfs) passed on the fresh boot.
    assert summary["boots"] >= 2
    assert jobs["xfs.zero-range-basic"]["status"] == "pass"
    kernel = json.loads((run_dir / "kernel.json").read_text())
    assert kernel["series"][0]["patches"][0]["subject"].startswith("kharness: mark kernels")
