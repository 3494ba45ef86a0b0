"""The bad-input catalogue: each case, run as a user would, gets exit status 2 and exactly
one line on stderr (what, where, how to fix), no traceback, and nothing is created: no run
directory, no history entry.

Cases tested elsewhere, with a real kernel tree or at the API level:
    a patch that does not apply, a fragment option that does not exist
        tests/test_e2e_build.py (real 6.12 tree; the cache repo is left clean)
    a series file naming a missing patch, an empty series      tests/test_kernel_unit.py
    YAML tags (!!python/...), unsafe names, unsplittable options   tests/test_security.py
"""
import pytest

from conftest import harness

from kharness.config import REPO

BASE = """\
name: bi
kernel:
  tarball: /usr/src/linux-source-6.12.tar.xz
  series: [kharness-id]
  fragments: [virtio-guest, hang-detect]
variants: [{name: ext4, fstype: ext4}]
tests: [zero-range-basic]
"""


SERIES = ", ".join(sorted(d.name for d in (REPO / "patches").iterdir() if d.is_dir()))
V2 = "20260203062523.3869120-1-yi.zhang@huawei.com"       # the cover letter of Zhang Yi's v2
V2_DIR = REPO.parent / "shared" / "series" / "ext4-buffered-iomap-v2"


def with_(old, new):
    assert old in BASE
    return BASE.replace(old, new)


CASES = [
    # (id, config text, extra argv, the whole stderr line after "harness.py: error: ")
    ("malformed-yaml", "name: bi\nkernel: [\n", [],
     "{cfg}:4: malformed YAML: expected ',' or ']', but got '<stream end>'"),
    ("unknown-key", with_("  series:", "  seris:"), [],
     "{cfg}:4: kernel.seris: unknown key (did you mean 'series'?)"),
    ("wrong-type", BASE + "repeat: many\n", [],
     "{cfg}:8: repeat: expected a whole number, got 'many'"),
    ("missing-tree", with_("  tarball: /usr/src/linux-source-6.12.tar.xz", "  git: /nonexistent/linux"), [],
     "kernel.git: /nonexistent/linux is not a git tree"),
    ("missing-tarball", with_("linux-source-6.12.tar.xz", "linux-source-9.99.tar.xz"), [],
     "kernel.tarball: /usr/src/linux-source-9.99.tar.xz does not exist (install it: apt-get install "
     "linux-source-6.12, or run `make setup`)"),
    ("missing-ref", with_("  tarball: /usr/src/linux-source-6.12.tar.xz", "  git: {tmp}/linux\n  ref: no-such-branch"), [],
     "kernel.ref: 'no-such-branch' is not a commit, branch or tag in {tmp}/linux"),
    ("unknown-series", with_("[kharness-id]", "[kharness-idd]"), [],
     "series 'kharness-idd': no directory patches/kharness-idd (available: " + SERIES + ")"),
    ("unknown-baseline-series", BASE + "baseline: {series: [nosuch]}\n", [],
     "series 'nosuch': no directory patches/nosuch (available: " + SERIES + ")"),
    ("unknown-fragment", with_("hang-detect]", "hang-detecc]"), [],
     "kconfig fragment 'hang-detecc': no configs/kconfig/hang-detecc.config (available: debug, hang-detect, virtio-guest)"),
    ("unknown-reproducer", BASE, ["--only", "zero-range-basik"],
     "unknown test 'zero-range-basik' (not in reproducers/manifest.yaml); did you mean zero-range-basic, "
     "zero-range-vs-writeback-storm, zero-range-vs-sync-range?"),
    ("unknown-fstests-test", BASE + "fstests: {{source: {tmp}/fstests, tests: [generic/9999]}}\n", [],
     "fstests.tests: generic/9999: no such test in {tmp}/fstests/tests"),
    ("repeat-zero", BASE, ["--repeat", "0"], None),
    ("repeat-negative", BASE, ["--repeat", "-2"], None),
    ("shard-out-of-range", BASE, ["--shard", "5/4"], None),
    ("results-not-writable", BASE.replace("results: {tmp}/results\n", "") + "results: /proc/kharness\n", [],
     "results: cannot write to /proc/kharness (No such file or directory); set `results:` in the config to a writable directory"),
    ("disk-too-big", BASE + "vm: {disk_size: 900000G}\n", [],
     "{cfg}: vm.disk_size: two disks of 900000G need 1800000 GiB but {tmp}/results has {free} GiB free; "
     "lower vm.disk_size or point `results:` elsewhere"),
    ("nightly-keep-zero", BASE + "nightly: {keep: 0}\n", [],
     "{cfg}: nightly.keep: must be at least 1, got 0"),
    # kernel.series entries taken from a thread (issue 13); {v2} is the real v2 thread's directory
    ("thread-not-found", with_("[kharness-id]", "[kharness-id, {{thread: nosuch@example.org, name: v2, source: {v2}}}]"),
     [], "series 'v2': thread <nosuch@example.org> not found in {v2}; check the cover letter's Message-ID"),
    ("thread-no-such-revision", with_("[kharness-id]", "[{{thread: " + V2 + ", name: v2, revision: 3, source: {v2}}}]"),
     [], "series 'v2': thread <" + V2 + "> has no revision 3 (b4: Unable to find revision 3)"),
    ("thread-missing-patch", with_("[kharness-id]", "[{{thread: " + V2 + ", name: v2, revision: 2, source: {tmp}/holey.mbx}}]"),
     [], "series 'v2': thread <" + V2 + "> v2 lacks patch 5/22; fetch the whole thread (b4 am, or a fuller mbox)"),
    ("thread-skip-past-the-end",
     with_("[kharness-id]", "[{{thread: " + V2 + ", name: v2, revision: 2, source: {v2}, skip: [{{patches: 1-23, reason: x}}]}}]"),
     [], "series 'v2': skip: '1-23': the thread has only 22 patches"),
    ("thread-bad-apply", with_("[kharness-id]", "[kharness-id,\n    {{thread: " + V2 + ", name: v2, apply: sloppy}}]"),
     [], "{cfg}:5: kernel.series[1].apply: must be one of fuzzy, strict"),
    ("thread-no-source", with_("[kharness-id]", "[{{thread: " + V2 + ", name: v2, source: {tmp}/nothing.mbx}}]"),
     [], "series 'v2': source: {tmp}/nothing.mbx does not exist (an mbox, a directory of mails, a public-inbox git, or b4)"),
]
ARGPARSE = {
    "repeat-zero": "harness.py run: error: argument --repeat: must be at least 1, got 0 (see harness.py run --help)",
    "repeat-negative": "harness.py run: error: argument --repeat: must be at least 1, got -2 (see harness.py run --help)",
    "shard-out-of-range": "harness.py run: error: argument --shard: '5/4': give I/N with 1 <= I <= N, e.g. --shard 2/4 "
                          "(see harness.py run --help)",
}


@pytest.mark.parametrize("case, text, argv, line", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_created(tmp_path, case, text, argv, line):
    import os
    import subprocess
    (tmp_path / "linux").mkdir()
    subprocess.run(["git", "init", "-q", str(tmp_path / "linux")], check=True)
    (tmp_path / "fstests" / "tests" / "generic").mkdir(parents=True)
    (tmp_path / "fstests" / "tests" / "generic" / "363").write_text("#! /bin/bash\n")
    (tmp_path / "fstests" / "common").mkdir()
    (tmp_path / "fstests" / "check").write_text("#! /bin/bash\n")
    if case.startswith("thread-"):
        if not V2_DIR.is_dir():
            pytest.skip("the v2 mails are in ../shared beside the checkout")
        # the real thread less patch 5: what a partial download looks like
        mails = (V2_DIR / "ext4-buffered-iomap-v2.mbx").read_text().split("\nFrom ")
        (tmp_path / "holey.mbx").write_text("\nFrom ".join(m for m in mails if " 05/22]" not in m))
    cfg = tmp_path / "c.yaml"
    body = text.replace("{tmp}", str(tmp_path)).replace("{v2}", str(V2_DIR)).replace("{{", "{").replace("}}", "}")
    if "results:" not in body:
        body += f"results: {tmp_path}/results\n"
    cfg.write_text(body)
    (tmp_path / "results").mkdir()
    out = harness("run", "-c", str(cfg), *argv, timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    if case in ARGPARSE:
        assert out.stderr.strip() == ARGPARSE[case]
    else:
        st = os.statvfs(tmp_path / "results")
        free = st.f_bavail * st.f_frsize >> 30
        want = line.format(cfg=cfg, tmp=tmp_path, free=free, v2=V2_DIR)
        assert out.stderr.strip() == f"harness.py: error: {want}"
    assert list((tmp_path / "results").iterdir()) == []           # no run directory, no history
