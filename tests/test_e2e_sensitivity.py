"""Proof of sensitivity: the reproducers catch real kernel bugs.

configs/selftest-broken.yaml builds Debian's 6.12 with the project's series plus three
deliberately broken patches (patches/selftest-*/; what each breaks, and the measurements,
in patches/selftest-README.md). On that kernel every data-checking reproducer of the
catalogue (all but the hang canary, which test_e2e_default proves) must fail on the
filesystems the bugs break, with a data-mismatch verdict that says where: status "fail",
exit status 1, message "exit status 1: MISMATCH file=F offset=O len=L expected=... found=...",
and the first MISMATCH line must carry the signature of a bug that can be caught there.
A second, small run adds the fourth breakage (XFS punch/zero range partial blocks) for
the two reproducers the others cannot reach on XFS. configs/selftest-clean.yaml is the
same kernel without the breakages, same variants, same reproducers: every job must pass
(or skip, with its reason).

Budget: the kernels differ in a few files under fs/, so after the first build each is an
incremental build (ccache). On the broken kernels only the (variant, reproducer) pairs that
must catch a bug run (one harness run per group of variants with the same list), bounded by
KHARNESS_SELFTEST_CATCH_DURATION (default 60s) but stopping at their first MISMATCH, within
a few seconds (measured worst case: iteration 51 of the writeback storm, 8.4 s). On the clean
kernel all 19 jobs run for KHARNESS_SELFTEST_DURATION (default 15s). Guest time: about
19 x 15 s plus 1-2 minutes of catches and five boots, some 6-7 minutes. Timeouts are not
asserted: each job gets the harness's own (the manifest's timeout + duration) and the
subprocess a bound derived from the same numbers.

Uses the real cache (~/.cache/kharness or $KHARNESS_CACHE), like the other e2e tests.
"""
import json
import os
import re

import pytest
import yaml

from conftest import REPO, harness

pytestmark = pytest.mark.e2e

DURATION = os.environ.get("KHARNESS_SELFTEST_DURATION", "15s")      # each job on the clean kernel
# A bound, not a cost: on the broken kernels every job run stops at its first MISMATCH.
CATCH_DURATION = os.environ.get("KHARNESS_SELFTEST_CATCH_DURATION", "60s")
BROKEN = REPO / "configs" / "selftest-broken.yaml"
CLEAN = REPO / "configs" / "selftest-clean.yaml"
MANIFEST = REPO / "reproducers" / "manifest.yaml"
NOT_DATA_CHECKERS = {"hang-canary"}     # proven by test_e2e_default (expect: hang)

IOMAP = "selftest-iomap-zero-skip-dirty"               # iomap_zero_iter() ignores range_dirty (XFS)
EXT4_ZERO = "selftest-ext4-zero-range-no-partial"      # ext4_zero_range() skips the partial edge blocks
EXT4_TRUNC = "selftest-ext4-truncate-up-no-tail-zero"  # ext4_setattr() truncate up: no EOF tail zeroing
XFS_PUNCH = "selftest-xfs-punch-no-partial"            # xfs_free_file_space() skips the partial end blocks

# What each bug leaves in a MISMATCH line: the EOF bugs expose the bytes written past EOF
# through mmap after the file grows again (the iomap one, when writeback gets to the
# unzeroed EOF block first, the block's old contents instead: seen once in 90 catches); the
# partial-block bugs leave the old data (stale or, after an insert range, misplaced) where a
# zero/punch range should be zero.
SIGNATURE = {
    IOMAP: r"found=(pollution|stale)\(.*after=.*pollute\(",
    EXT4_TRUNC: r"found=pollution\(.*after=.*pollute\(.*truncate\(",
    EXT4_ZERO: r"found=stale\(.*after=.*zero_range",
    XFS_PUNCH: r"found=(stale|misplaced)\(.*after=.*(zero_range|punch_hole)",
}

# On configs/selftest-broken.yaml: (variant, reproducer) -> the bugs that may be the first one
# caught there (the MISMATCH line must carry the signature of one of them).  Measured (5-6 runs
# per pair and bug, patches/selftest-README.md): each pair caught its bug in every run, within
# the first iterations (at most 51, 8.4 s, for the writeback storm); the pairs not listed
# (zero-range-basic and punch-hole on XFS) do not touch what these three bugs break, so they
# are not run on it.
CATCHES = {
    ("ext4", "zero-range-basic"): {EXT4_ZERO},
    ("ext4", "zero-range-vs-sync-range"): {EXT4_TRUNC, EXT4_ZERO},
    ("ext4", "punch-hole-dirty-folio-hole-unwritten"): {EXT4_TRUNC},
    ("ext4", "zero-range-clean-unwritten-dirty-neighbor"): {EXT4_TRUNC},
    ("ext4", "eof-zeroing"): {EXT4_TRUNC},
    ("ext4", "zero-range-vs-writeback-storm"): {EXT4_TRUNC, EXT4_ZERO},
    **{(v, t): {IOMAP} for v in ("xfs", "xfs_reflink")
       for t in ("zero-range-vs-sync-range", "zero-range-clean-unwritten-dirty-neighbor", "eof-zeroing",
                 "zero-range-vs-writeback-storm")},
    ("xfs_reflink", "insert-range-cow-eof"): {IOMAP},
}
# The fourth bug, added on top of the broken kernel's series in a second, small run: it is
# caught first by nearly every reproducer on XFS and would hide the iomap bug if it were in
# configs/selftest-broken.yaml.  Here it proves the two reproducers the iomap bug cannot reach.
PUNCH_CATCHES = {
    ("xfs", "zero-range-basic"): {XFS_PUNCH},
    ("xfs", "punch-hole-dirty-folio-hole-unwritten"): {XFS_PUNCH},
}
MISMATCH_WHERE = re.compile(r"MISMATCH file=\S+ offset=\d+ len=\d+ expected=\S+ found=\S+")


def _config_copy(src, tmp, filename, **override):
    """The repository's config with results redirected into the test's directory."""
    data = yaml.safe_load(src.read_text())
    data.update(override)
    data["results"] = str(tmp / "results")
    dst = tmp / filename
    dst.write_text(yaml.safe_dump(data, sort_keys=False))
    return dst, data


def _seconds(duration):
    m = re.fullmatch(r"(\d+)([smh]?)", duration)
    assert m, f"{duration!r} is not a duration like 15s or 2m"
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _budget(data, duration):
    """Seconds to allow one run: every job's own timeout (the manifest's timeout + duration,
    which is what the harness gives it), a boot per job (a fresh guest after trouble), and a
    cold kernel build."""
    manifest = {t["name"]: t for t in yaml.safe_load(MANIFEST.read_text())}
    boot = data.get("vm", {}).get("boot_timeout", 120)
    per_variant = sum(manifest[t]["timeout"] + _seconds(duration) + boot for t in data["tests"])
    return 30 * 60 + per_variant * len(data["variants"])


def _run(tmp_path_factory, label, src, duration, **override):
    """One `harness.py run` of a copy of `src`; returns {(variant, test): (verdict, job dir)}."""
    # A short directory name: the harness puts QEMU's QMP socket under the run directory,
    # and a unix socket path longer than 107 bytes makes QEMU refuse to start.
    tmp = tmp_path_factory.mktemp(label)
    cfg, data = _config_copy(src, tmp, f"{label}.yaml", **override)
    proc = harness("run", "-c", str(cfg), "--duration", duration, timeout=_budget(data, duration))
    run_dir = (tmp / "results" / "latest").resolve()
    assert (run_dir / "summary.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    jobs = {(j["variant"], j["test"]): (j, run_dir / "jobs" / j["variant"] / j["test"]) for j in summary["jobs"]}
    return proc, run_dir, jobs


def _pairs_run(tmp_path_factory, label, series, pairs):
    """Run exactly the (variant, test) pairs in `pairs` on the broken config's kernel with
    `series`: one run per group of variants that share a test list."""
    broken = yaml.safe_load(BROKEN.read_text())
    kernel = dict(broken["kernel"], series=series)
    groups = {}
    for v in broken["variants"]:
        tests = tuple(t for t in broken["tests"] if (v["name"], t) in pairs)
        if tests:
            groups.setdefault(tests, []).append(v)
    jobs, run_dirs = {}, []
    for i, (tests, variants) in enumerate(groups.items()):
        _, run_dir, got = _run(tmp_path_factory, f"{label}{i}", BROKEN, CATCH_DURATION, name=f"selftest-{label}",
                               kernel=kernel, variants=variants, tests=list(tests))
        jobs.update(got)
        run_dirs.append(run_dir)
    return run_dirs, jobs


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    series = yaml.safe_load(BROKEN.read_text())["kernel"]["series"]
    return _pairs_run(tmp_path_factory, "broken", series, CATCHES)


@pytest.fixture(scope="module")
def punch_run(tmp_path_factory):
    series = yaml.safe_load(BROKEN.read_text())["kernel"]["series"] + [XFS_PUNCH]
    return _pairs_run(tmp_path_factory, "punch", series, PUNCH_CATCHES)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    return _run(tmp_path_factory, "clean", CLEAN, DURATION)


def _first_mismatch(job_dir):
    err = job_dir / "stderr"
    lines = [ln for ln in err.read_text().splitlines() if ln.startswith("MISMATCH file=")] if err.exists() else []
    return lines


def _assert_caught(run, variant, test, bugs):
    _, jobs = run
    assert (variant, test) in jobs, f"{variant}.{test} did not run"
    job, job_dir = jobs[(variant, test)]
    names = " or ".join(sorted(bugs))
    assert job["status"] == "fail", f"{test} on {variant} did not catch {names}: {job['status']} {job['message']}"
    assert job["exit_status"] == 1, job          # 1: data mismatch (not a usage error, not an op error)
    assert MISMATCH_WHERE.search(job["message"]), job["message"]   # the verdict says where
    lines = _first_mismatch(job_dir)
    assert lines, (job_dir / "stderr").read_text()[-2000:]
    assert re.search(r" iteration=\d+ ", lines[0]), lines[0]
    assert any(re.search(SIGNATURE[b], lines[0]) for b in bugs), (
        f"{test} on {variant} failed, but its first MISMATCH is not what {names} leaves "
        f"({' | '.join(SIGNATURE[b] for b in sorted(bugs))}):\n" + "\n".join(lines[:8]))
    assert re.search(r"iterations=\d+ seconds=[\d.]+", (job_dir / "stdout").read_text())


def test_every_data_reproducer_has_a_proven_catch():
    """A reproducer added to the catalogue without a bug it is proven to catch is not done."""
    names = {t["name"] for t in yaml.safe_load(MANIFEST.read_text())} - NOT_DATA_CHECKERS
    assert names - {test for _, test in CATCHES} == set(), "no selftest breakage is proven to be caught by these"
    broken = yaml.safe_load(BROKEN.read_text())
    clean = yaml.safe_load(CLEAN.read_text())
    assert set(broken["tests"]) == set(clean["tests"]) == names
    assert broken["variants"] == clean["variants"]
    base = clean["kernel"]["series"]
    assert broken["kernel"]["series"][:len(base)] == base, "the broken kernel is the clean one plus breakages"
    extra = broken["kernel"]["series"][len(base):]
    assert set(extra) == set().union(*CATCHES.values()), "every breakage in the kernel is caught somewhere"
    assert all(s.startswith("selftest-") for s in extra) and not any(s.startswith("selftest-") for s in base)
    assert all((REPO / "patches" / s / "series").is_file() for s in extra + [XFS_PUNCH])


def test_broken_kernel_has_the_breakages(broken_run):
    run_dirs, _ = broken_run
    for run_dir in run_dirs:
        kernel = json.loads((run_dir / "kernel.json").read_text())
        selftest = [s for s in kernel["series"] if s["name"].startswith("selftest-")]
        assert {s["name"] for s in selftest} == set().union(*CATCHES.values())
        assert all(p["subject"].startswith("SELFTEST BREAKAGE:") for s in selftest for p in s["patches"])


@pytest.mark.parametrize("variant,test", sorted(CATCHES), ids=lambda x: x)
def test_broken_kernel_is_caught(broken_run, variant, test):
    _assert_caught(broken_run, variant, test, CATCHES[(variant, test)])


def test_every_breakage_is_identified(broken_run):
    """Each bug is named by at least one catch: its signature, on the filesystem it breaks."""
    _, jobs = broken_run
    seen = set()
    for pair, bugs in CATCHES.items():
        first = _first_mismatch(jobs[pair][1])[:1] if pair in jobs else []
        seen |= {b for b in bugs if first and re.search(SIGNATURE[b], first[0])}
    assert seen == set().union(*CATCHES.values())


@pytest.mark.parametrize("variant,test", sorted(PUNCH_CATCHES), ids=lambda x: x)
def test_xfs_partial_block_bug_is_caught(punch_run, variant, test):
    _assert_caught(punch_run, variant, test, PUNCH_CATCHES[(variant, test)])


def test_clean_kernel_passes(clean_run):
    proc, run_dir, jobs = clean_run
    kernel = json.loads((run_dir / "kernel.json").read_text())
    assert not any(s["name"].startswith("selftest-") for s in kernel["series"])
    missing = [f"{v}.{t}" for v, t in {**CATCHES, **PUNCH_CATCHES} if (v, t) not in jobs]
    assert missing == [], f"did not run on the clean kernel: {missing}"
    bad = {f"{v}.{t}": f"{j['status']}: {j['message']}" for (v, t), (j, _) in jobs.items()
           if j["status"] != "pass" and not (j["status"] == "skip" and j["message"])}
    assert bad == {}, bad
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
