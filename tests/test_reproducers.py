"""The reproducer catalogue: manifest, sources, build, and real runs on real ext4/xfs.

Fast checks (manifest and sources agree, every C file opens with a block comment, the
shared code comes from common.h, everything builds with the Makefile's
flags) and real runs on this host: each reproducer runs briefly on a loop-mounted ext4
and a loop-mounted xfs (reflink) filesystem and must pass (or skip where the fs lacks
the operation); with -X (a deliberate corruption) each must fail with a MISMATCH line
naming the corrupted offset.  Loop mounts need root: without it those tests skip.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RDIR = REPO / "reproducers"
MANIFEST = RDIR / "manifest.yaml"
FIELDS = {"name", "source", "script", "description", "filesystems", "needs", "args", "timeout", "expect"}
C_SOURCES = sorted(p.name for p in RDIR.glob("*.c"))

# brief host runs: small counts, and -D so the host's global caches are left alone
QUICK = {
    "zero-range-basic": ["-n", "1"],
    "zero-range-vs-sync-range": ["-n", "20"],
    "punch-hole-dirty-folio-hole-unwritten": ["-n", "8"],
    "zero-range-clean-unwritten-dirty-neighbor": ["-n", "4"],
    "eof-zeroing": ["-n", "30"],
    "insert-range-cow-eof": ["-n", "4"],
    "zero-range-vs-writeback-storm": ["-n", "8"],
}
# what a run must end with on each fs: 0, or 77 where the fs lacks the operation
EXPECTED_STATUS = {("insert-range-cow-eof", "ext4"): 77}


def manifest() -> list[dict]:
    return yaml.safe_load(MANIFEST.read_text())


def c_entries() -> list[dict]:
    return [e for e in manifest() if e.get("source")]


# ------------------------------------------------------------------ manifest and sources

def test_manifest_fields_and_files():
    names = set()
    for e in manifest():
        assert set(e) <= FIELDS, f"{e.get('name')}: unknown fields {set(e) - FIELDS}"
        assert e["name"] not in names, f"duplicate name {e['name']}"
        names.add(e["name"])
        assert bool(e.get("source")) != bool(e.get("script")), f"{e['name']}: exactly one of source/script"
        f = RDIR / (e.get("source") or e.get("script"))
        assert f.is_file(), f"{e['name']}: {f} missing"
        assert e["description"] and "\n" not in e["description"]
        assert set(e["filesystems"]) <= {"ext4", "xfs"}
        assert set(e.get("needs", [])) <= {"reflink", "buffered_iomap"}
        assert all(isinstance(a, str) for a in e.get("args", []))
        assert isinstance(e["timeout"], int) and e["timeout"] > 0
        assert e["expect"] in ("pass", "hang")
        if e.get("source"):
            assert Path(e["source"]).stem == e["name"], "a C reproducer's binary is named after its source"


def test_every_c_file_is_in_the_manifest():
    assert sorted(e["source"] for e in c_entries()) == C_SOURCES
    assert set(QUICK) == {e["name"] for e in c_entries()}


def test_manifest_loads_in_the_harness():
    from kharness import catalogue
    cat = catalogue.load(MANIFEST)
    assert set(cat) == {e["name"] for e in manifest()}
    assert cat["hang-canary"].expect == "hang"
    assert cat["insert-range-cow-eof"].needs == ("reflink",)


def test_makefile_flags_match_the_harness():
    from kharness import catalogue
    m = re.search(r"^CFLAGS\s*:?=\s*(.+)$", (RDIR / "Makefile").read_text(), re.M)
    assert m and m.group(1).split() == catalogue.CFLAGS


@pytest.mark.parametrize("src", C_SOURCES)
def test_c_file_opens_with_a_block_comment(src):
    text = (RDIR / src).read_text()
    assert text.startswith("/*"), f"{src} must open with a block comment"
    comment = text[:text.index("*/")]
    assert Path(src).stem in comment, "the comment names the reproducer"
    assert len(comment.splitlines()) >= 10, "the comment explains the race and how it is hit"


def test_every_reproducer_uses_the_shared_header():
    for src in C_SOURCES:
        assert '#include "common.h"' in (RDIR / src).read_text(), src


def test_canary_script_parses():
    subprocess.run(["sh", "-n", str(RDIR / "hang-canary.sh")], check=True)


# ------------------------------------------------------------------ build

@pytest.fixture(scope="session")
def bins(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("repro-bin")
    res = subprocess.run(["make", "-C", str(RDIR), f"O={out}"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


@pytest.mark.parametrize("src", C_SOURCES)
def test_builds_warning_free(bins, src):
    assert (bins / Path(src).stem).is_file()


@pytest.mark.parametrize("name", sorted(QUICK))
def test_usage_errors(bins, name, tmp_path):
    exe = str(bins / name)
    h = subprocess.run([exe, "-h"], capture_output=True, text=True)
    assert h.returncode == 0 and "-X" in h.stdout and "-n N" in h.stdout
    for bad in (["-n", "0"], ["-t", "x"], ["-Q"], ["extra"], ["-d", str(tmp_path / "nope")]):
        r = subprocess.run([exe, *bad], capture_output=True, text=True)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert r.stderr.strip(), "a usage error says what is wrong"


# ------------------------------------------------------------------ real filesystems

def _mount(tmp: Path, fstype: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip("loop-mounting a test filesystem needs root")
    mkfs = {"ext4": ["mkfs.ext4", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f", "-m", "reflink=1"]}[fstype]
    if not shutil.which(mkfs[0]):
        pytest.skip(f"{mkfs[0]} not installed")
    img, mnt = tmp / f"{fstype}.img", tmp / f"mnt-{fstype}"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(512 << 20)
    subprocess.run([*mkfs, str(img)], check=True, capture_output=True)
    r = subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mount -o loop {fstype} failed: {r.stderr.strip()}")
    return mnt


def _umount(mnt: Path):
    if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture(scope="session", params=["ext4", "xfs"])
def fs(request, tmp_path_factory):
    mnt = _mount(tmp_path_factory.mktemp(f"fs-{request.param}"), request.param)
    try:
        yield request.param, mnt
    finally:
        _umount(mnt)


@pytest.fixture(scope="session")
def xfs(tmp_path_factory):
    mnt = _mount(tmp_path_factory.mktemp("fs-xfs-neg"), "xfs")
    try:
        yield mnt
    finally:
        _umount(mnt)


def _run(bins: Path, name: str, mnt: Path, *args: str, timeout=120):
    return subprocess.run([str(bins / name), "-d", str(mnt), "-D", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("name", sorted(QUICK))
def test_runs_clean_on_a_real_fs(bins, fs, name):
    fstype, mnt = fs
    r = _run(bins, name, mnt, *QUICK[name])
    want = EXPECTED_STATUS.get((name, fstype), 0)
    assert r.returncode == want, f"{name} on {fstype}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    last = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"iterations=\d+ seconds=\d+\.\d+", last), last
    assert "MISMATCH" not in r.stderr
    if want == 77:
        assert "SKIP: " in r.stdout
    else:
        n = int(QUICK[name][1])
        assert last.startswith(f"iterations={n} ")
    assert not list(mnt.glob(f"{name}.*")), "a passing run leaves no files behind"


@pytest.mark.parametrize("name", sorted(QUICK))
def test_injected_corruption_is_reported(bins, xfs, name):
    """-X writes a stale cell where the checker expects zeros: the run must fail and say where."""
    r = _run(bins, name, xfs, "-X", "-s", "1", *QUICK[name])
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    inj = re.search(r"^INJECT file=(\S+) offset=(\d+) len=(\d+)", r.stderr, re.M)
    assert inj, r.stderr
    mm = re.search(r"^MISMATCH file=(\S+) offset=(\d+) len=(\d+) expected=(\S+) found=(\S+) check=\S+ "
                   r"iteration=\d+ after=\S+$", r.stderr, re.M)
    assert mm, r.stderr
    assert mm.group(1, 2) == inj.group(1, 2), (inj.group(0), mm.group(0))
    assert mm.group(5).startswith("stale("), mm.group(0)
    assert "files kept in" in r.stderr
    for d in xfs.glob(f"{name}.*"):
        shutil.rmtree(d)


def test_time_limit_bounds_the_run(bins, xfs):
    t0 = time.monotonic()
    r = _run(bins, "eof-zeroing", xfs, "-t", "1")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 10
    n = int(re.search(r"iterations=(\d+)", r.stdout.splitlines()[-1]).group(1))
    assert n > 1, "with -t alone the iteration count is unbounded"


def test_race_window_knob_is_set_and_restored(bins, xfs, tmp_path):
    knob = tmp_path / "zero_range_delay_ms"
    knob.write_text("0\n")
    r = _run(bins, "zero-range-vs-sync-range", xfs, "-n", "10", "-k", str(knob))
    assert r.returncode == 0, r.stderr
    assert f"knob {knob} set to" in r.stdout
    assert knob.read_text() == "0\n", "the knob's old value is restored at exit"
    r = _run(bins, "zero-range-vs-sync-range", xfs, "-n", "1", "-k", str(tmp_path / "missing"))
    assert r.returncode == 2 and "missing" in r.stderr


def test_stopped_by_signal_reports_and_cleans_up(bins, xfs):
    p = subprocess.Popen([str(bins / "zero-range-vs-writeback-storm"), "-d", str(xfs), "-D", "-t", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert re.fullmatch(r"iterations=\d+ seconds=\d+\.\d+", out.strip().splitlines()[-1])
    assert not list(xfs.glob("zero-range-vs-writeback-storm.*"))


# ------------------------------------------------------------------ the hang canary

def _writable(mnt: Path) -> bool:
    r = subprocess.run(["sh", "-c", f"echo y > {mnt}/probe && rm {mnt}/probe"], timeout=10,
                       capture_output=True)
    return r.returncode == 0


def test_canary_freezes_blocks_a_writer_and_thaws(xfs):
    r = subprocess.run(["sh", str(RDIR / "hang-canary.sh"), str(xfs)], capture_output=True, text=True,
                       env={**os.environ, "CANARY_WAIT": "3"}, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "state D" in r.stdout, r.stdout     # the writer is blocked uninterruptibly
    assert "thawed" in r.stdout
    assert _writable(xfs)
    assert not (xfs / "canary").exists()


def test_canary_thaws_when_killed(xfs):
    p = subprocess.Popen(["sh", str(RDIR / "hang-canary.sh"), str(xfs)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "CANARY_WAIT": "60"})
    try:
        time.sleep(3)
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            subprocess.run(["fsfreeze", "-u", str(xfs)], capture_output=True)
            p.kill()
    assert p.returncode == 143
    assert "thawed" in out
    assert _writable(xfs)


def test_canary_refuses_a_non_mountpoint(tmp_path):
    r = subprocess.run(["sh", str(RDIR / "hang-canary.sh"), str(tmp_path)], capture_output=True, text=True,
                       env={**os.environ, "CANARY_WAIT": "3"}, timeout=30)
    assert r.returncode == 2 and "not a mountpoint" in r.stderr
