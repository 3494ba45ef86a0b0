"""Planning jobs, and the CLI's answers to bad names and numbers (no boot)."""
import pytest

from conftest import harness
from kharness import catalogue, config
from kharness.model import Variant
from kharness.errors import UserError
from kharness.reproducers import ReproducerSuite

CAT = catalogue.load()
REPRO = ReproducerSuite(CAT)


def cfg(**kw):
    c = config.load(config.REPO / "configs/default.yaml")
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def test_manifest_entries_have_their_files():
    assert "zero-range-basic" in CAT and "hang-canary" in CAT
    for r in CAT.values():
        assert (catalogue.REPRO_DIR / (r.source or r.script)).is_file(), r.name
        assert r.expect in ("pass", "hang") and r.timeout > 0


def test_plan_is_variant_major_with_repeats():
    jobs, skipped = REPRO.plan(cfg(), ["zero-range-basic", "hang-canary"], repeat=2)
    assert [j.id for j in jobs] == [
        "ext4.zero-range-basic.1", "ext4.zero-range-basic.2", "ext4.hang-canary.1", "ext4.hang-canary.2",
        "xfs.zero-range-basic.1", "xfs.zero-range-basic.2", "xfs.hang-canary.1", "xfs.hang-canary.2",
        "xfs_reflink.zero-range-basic.1", "xfs_reflink.zero-range-basic.2",
        "xfs_reflink.hang-canary.1", "xfs_reflink.hang-canary.2"]
    assert jobs[1].name == "zero-range-basic#2" and skipped == []


def test_default_suite_runs_every_reproducer():
    jobs, skipped = REPRO.plan(cfg())
    assert {j.test.name for j in jobs} == set(CAT)
    assert [(v.name, t.name) for v, t, _ in skipped] == [("ext4", "insert-range-cow-eof"), ("xfs", "insert-range-cow-eof")]


def test_reflink_only_reproducer_is_not_applicable_to_plain_xfs():
    c = cfg(variants=[Variant("xfs", "xfs"), Variant("xfs_reflink", "xfs", mkfs="-m reflink=1")])
    jobs, skipped = REPRO.plan(c, ["insert-range-cow-eof"])
    assert [j.id for j in jobs] == ["xfs_reflink.insert-range-cow-eof"]
    assert skipped[0][0].name == "xfs" and "needs reflink" in skipped[0][2]


def test_unknown_test_suggests_close_names():
    with pytest.raises(UserError, match=r"unknown test 'zero-range-basc'.*did you mean zero-range-basic"):
        REPRO.plan(cfg(), ["zero-range-basc"])


def test_unknown_variant():
    with pytest.raises(UserError, match=r"--fs btrfs: no such variant .* \(variants: ext4, xfs, xfs_reflink\)"):
        REPRO.plan(cfg(), variants=["btrfs"])


@pytest.mark.parametrize("args, message", [
    (["repro", "nosuch"], "unknown test 'nosuch'"),
    (["repro", "zero-range-basic", "--repeat", "0"], "argument --repeat: must be at least 1, got 0"),
    (["repro", "zero-range-basic", "--repeat", "-3"], "argument --repeat: must be at least 1, got -3"),
    (["repro", "insert-range-cow-eof", "--fs", "xfs"], "insert-range-cow-eof applies to none of the chosen variants"),
    (["repro", "zero-range-basic", "--fs", "ext4-iomap"], "--fs ext4-iomap: no such variant"),
    (["run", "-c", "configs/nosuch.yaml"], "config file not found"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    p = harness(*args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_list_shows_jobs_and_catalogue():
    p = harness("list")
    assert p.returncode == 0, p.stderr
    assert "ext4         zero-range-basic" in p.stdout
    assert "insert-range-cow-eof" in p.stdout


def _config_with(tmp_path, extra: str):
    text = (config.REPO / "configs/default.yaml").read_text() + extra
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("extra, message", [
    ("results: /proc/kharness-results\n", "results: cannot write to /proc/kharness-results"),
    ("vm: {disk_size: 1G}\n", "vm: given twice; keep one"),
])
def test_run_refuses_bad_results_dir_and_duplicate_keys(tmp_path, extra, message):
    p = harness("run", "-c", _config_with(tmp_path, extra))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], p.stderr


def test_disk_size_the_host_cannot_hold(tmp_path):
    text = (config.REPO / "configs/default.yaml").read_text().replace("  memory: 2G", "  memory: 2G\n  disk_size: 900000G")
    p = tmp_path / "c.yaml"
    p.write_text(text)
    r = harness("run", "-c", str(p))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "vm.disk_size: two disks of 900000G need 1800000 GiB" in r.stderr


def test_prepare_builds_each_test_once_and_a_broken_one_errors_its_jobs_without_a_guest(tmp_path, tmp_cache):
    (tmp_path / "broken.c").write_text("int main(void) { return undeclared; }\n")
    broken = catalogue.Reproducer("broken", "does not compile", source="broken.c", dir=tmp_path)
    suite = ReproducerSuite({**CAT, "broken": broken})
    jobs, _ = suite.plan(cfg(), ["zero-range-basic", "hang-canary", "broken"], repeat=2)
    built = suite.prepare(cfg(), tmp_path, jobs)
    assert built.image is None and set(built.tools) == {"zero-range-basic", "hang-canary"}
    assert built.tools["hang-canary"] == CAT["hang-canary"].dir / CAT["hang-canary"].script    # a script as is
    assert built.tools["zero-range-basic"].read_bytes()[:4] == b"\x7fELF"
    assert "broken" in built.errors and "setup.log" in built.errors["broken"]
    assert "undeclared" in (tmp_path / "setup.log").read_text()

    class NoGuest:
        run_dir = tmp_path

        def guest_ready(self):
            pytest.fail("a test that did not build boots no guest")
    results = list(built.run(NoGuest(), [j for j in jobs if j.test.name == "broken"]))
    assert [r.verdict.status for r in results] == ["error"] * 6
    assert all(r.verdict.message.startswith(built.errors["broken"].splitlines()[0][:40]) for r in results)
