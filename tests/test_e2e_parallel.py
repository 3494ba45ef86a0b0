"""-j N for real: the quick default subset on two guests at once gives what one guest gives
(verdicts, JUnit cases, history rows), one guest's hang (the canary) leaves the other running
jobs, and Ctrl-C during a parallel run leaves no QEMU behind.

Uses the real cache, as the other e2e tests do. On this project's 2-core TCG machine two
guests of 2 vCPUs each share two cores: this shows correctness and overhead, not a speed-up.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from conftest import REPO, as_foreground_job, harness
from test_e2e_faults import qemu_pids

pytestmark = pytest.mark.e2e

KERNEL = {"tarball": "/usr/src/linux-source-6.12.tar.xz", "series": ["kharness-id", "zero-range-race-window"],
          "fragments": ["virtio-guest", "hang-detect"]}
# The quick default subset (test_e2e_default's): the zero-range job and the hang canary, on ext4 and xfs.
TESTS = ["zero-range-basic", "hang-canary"]
VM = {"hung_task_timeout": 5, "disk_size": "1G"}
# Per run: a cold kernel build (~15 min on a loaded 2-core host) + boots and 4 jobs (~3 min), x3.
RUN_TIMEOUT = 3 * (15 + 3) * 60


def config(tmp: Path, name: str, tests=TESTS, vm=None) -> Path:
    data = {"name": "e2e-par", "kernel": KERNEL, "vm": {**VM, **(vm or {})},
            "variants": [{"name": "ext4", "fstype": "ext4"}, {"name": "xfs", "fstype": "xfs"}],
            "tests": list(tests), "results": str(tmp / name / "results")}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cases(run_dir: Path) -> dict:
    """(classname, name) -> (status, message) of every junit testcase, the kernel suite left out."""
    out = {}
    for c in ET.parse(run_dir / "junit.xml").getroot().iter("testcase"):
        if c.get("classname") == "kernel":
            continue
        bad = [ch for ch in c if ch.tag in ("failure", "error", "skipped")]
        out[(c.get("classname"), c.get("name"))] = (bad[0].tag, bad[0].get("message")) if bad else ("pass", None)
    return out


def history_rows(results: Path) -> list[tuple]:
    """Every per-iteration row of history.sqlite but its run name and duration."""
    db = sqlite3.connect(results / "history.sqlite")
    try:
        return db.execute("SELECT key, iteration, status, message FROM results ORDER BY key, iteration").fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("par")
    out = {}
    for name, j in (("serial", "1"), ("parallel", "2")):
        proc = harness("run", "-c", str(config(tmp, name)), "-j", j, timeout=RUN_TIMEOUT)
        out[name] = (proc, (tmp / name / "results" / "latest").resolve(), tmp / name / "results")
    return out


def test_two_guests_give_the_verdicts_cases_and_history_of_one(runs):
    for name, (proc, run_dir, _) in runs.items():
        assert proc.returncode == 0, f"{name}: " + proc.stderr[-4000:]
    assert "guest 1: 2 job(s)" in runs["parallel"][0].stderr and "guest 2: 2 job(s)" in runs["parallel"][0].stderr
    (_, serial, serial_results), (proc, parallel, parallel_results) = runs["serial"], runs["parallel"]
    assert "4 job(s) on 2 guests at once (-j)" in proc.stderr
    assert cases(parallel) == cases(serial)
    assert set(cases(serial)) == {(v, t) for v in ("ext4", "xfs") for t in TESTS}
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (serial, parallel))
    strip = lambda s: [(j["job"], j["status"], j["message"], [f["title"] for f in j["findings"]]) for j in s["jobs"]]
    assert strip(s2) == strip(s1)                       # same jobs, same order, same evidence titles
    assert s2["plan"] == s1["plan"] and s2["not_run"] == s1["not_run"] == []
    assert history_rows(parallel_results) == history_rows(serial_results)
    assert s2["properties"]["guests"] == "2" and "guests" not in s1["properties"]


def test_each_job_is_judged_from_its_own_guests_console(runs):
    _, run_dir, _ = runs["parallel"]
    s = json.loads((run_dir / "summary.json").read_text())
    files = {j["console_file"] for j in s["jobs"]}
    assert files == {"console.log", "console-2.log"}
    for j in s["jobs"]:
        console = (run_dir / j["console_file"]).read_text(errors="replace").splitlines()
        a, b = j["console_lines"]
        window = console[a - 1:b]
        assert any(f"kharness: job-start {j['job']}" in line for line in window), j["job"]
        for f in j["findings"]:            # the canary's hang report is in its own guest's window
            assert a <= f["line"] <= b and "blocked for more than" in console[f["line"] - 1] + console[f["line"]]


def job_spans(run_dir: Path, s: dict) -> dict:
    """job id -> (console file, host start, host end). The end is when its verdict.json was written
    (as the job was recorded); the start that minus the job's duration: for a hung job that is
    late by the evidence collection after the hang, so a window built from it is never too wide."""
    out = {}
    for j in s["jobs"]:
        end = (run_dir / j["dir"] / "verdict.json").stat().st_mtime
        out[j["job"]] = (j["console_file"], end - j["duration"], end)
    return out


def test_one_guest_hangs_while_the_other_runs_jobs(tmp_path):
    """ext4 only, the canary and zero-range-basic three times each: one guest gets the canary's
    unit, the other the basic one. Each canary hangs its guest, which is restarted for the next;
    the other guest's jobs run meanwhile on its one boot, and the run finishes. --duration makes
    each basic job run 15 s (the canary is a script and ignores it), so the basic guest is still
    busy when the first canary hangs: three 0.8 s jobs were all over before it started (CI)."""
    cfg = tmp_path / "hang.yaml"
    data = yaml.safe_load(config(tmp_path, "hang").read_text())
    data["variants"] = data["variants"][:1]
    data["tests"] = ["hang-canary", "zero-range-basic"]
    data["repeat"] = 3
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = harness("run", "-c", str(cfg), "-j", "2", "--duration", "15s", timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run_dir = (tmp_path / "hang" / "results" / "latest").resolve()
    s = json.loads((run_dir / "summary.json").read_text())
    assert [(j["job"], j["status"]) for j in s["jobs"]] == \
        [(f"ext4.hang-canary.{i}", "pass") for i in (1, 2, 3)] + [(f"ext4.zero-range-basic.{i}", "pass") for i in (1, 2, 3)]
    spans = job_spans(run_dir, s)
    canary_console = {spans[f"ext4.hang-canary.{i}"][0] for i in (1, 2, 3)}
    basic_console = {spans[f"ext4.zero-range-basic.{i}"][0] for i in (1, 2, 3)}
    assert len(canary_console) == len(basic_console) == 1 and canary_console != basic_console
    for j in s["jobs"]:
        if j["test"] == "hang-canary":     # each titled from its own guest's console
            assert j["message"].startswith("expected hang happened: INFO: task hung in")
    # The canary's guest came up once per canary; the other guest once in all. (Boots that came
    # up: on a fresh cache the first guest's KVM probe is one more boot, stalled, in its console.)
    boots = {c: sum(ln.strip() == "KHARNESS-READY" for ln in (run_dir / c).read_text(errors="replace").splitlines())
             for c in ("console.log", "console-2.log")}
    assert boots[canary_console.pop()] == 3 and boots[basic_console.pop()] == 1, boots
    # While the first canary's guest was hung, the other guest was running a job.
    _, hung_from, hung_to = spans["ext4.hang-canary.1"]
    basic = [spans[f"ext4.zero-range-basic.{i}"] for i in (1, 2, 3)]
    assert all(j["duration"] >= 15 for j in s["jobs"] if j["test"] == "zero-range-basic"), s["jobs"]
    assert any(start < hung_to and hung_from < end for _, start, end in basic), spans


def test_ctrl_c_during_a_parallel_run_leaves_no_qemu(tmp_path):
    cfg = config(tmp_path, "intr", tests=["zero-range-vs-sync-range"])
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = open(tmp_path / "harness.out", "w")
    h = subprocess.Popen([sys.executable, str(REPO / "harness.py"), "run", "-c", str(cfg), "-j", "2"], cwd=REPO,
                         env=env, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                         preexec_fn=as_foreground_job)
    results = tmp_path / "intr" / "results"
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        def both_running():
            runs = [d for d in results.glob("*-e2e-par*") if d.is_dir()]
            return runs and all((runs[0] / c).exists() and "kharness: job-start" in (runs[0] / c).read_text(errors="replace")
                                for c in ("console.log", "console-2.log"))
        while not both_running():
            assert h.poll() is None and time.monotonic() < deadline, (tmp_path / "harness.out").read_text()[-3000:]
            time.sleep(1)
        assert len(qemu_pids(str(results))) == 2
        os.killpg(os.getpgid(h.pid), signal.SIGINT)
        rc = h.wait(timeout=3 * 60)
    finally:
        if h.poll() is None:
            os.killpg(h.pid, signal.SIGKILL)
    text = (tmp_path / "harness.out").read_text()
    assert rc == 130, text[-3000:]
    assert "Traceback" not in text and "harness.py: interrupted" in text
    assert qemu_pids(str(results)) == []
    run = (results / "latest").resolve()
    s = json.loads((run / "summary.json").read_text())
    assert s["interrupted"] is True and s["jobs"] == []
    assert sorted(n["job"] for n in s["not_run"]) == ["ext4.zero-range-vs-sync-range", "xfs.zero-range-vs-sync-range"]
    assert s["not_run_reason"].startswith("run interrupted")
