"""fstests support, fast: local.config rendering, selectors and groups, the xunit/check output
parsers and the verdict combination, on output captured from real runs (tests/data/fstests/)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from kharness import fstests
from kharness.fstests import expunges
from kharness.console import analyze
from kharness.model import Finding, Trouble, Variant
from kharness.errors import UserError

DATA = Path(__file__).resolve().parent / "data" / "fstests"
REPO_ROOT = Path(__file__).resolve().parent.parent
PLAN = importlib.import_module("kharness.fstests.plan")      # the package's `plan` is the function

EXT4_4K = Variant("ext4_4k", "ext4", mkfs="-b 4096")
EXT4_IOMAP = Variant("ext4_iomap", "ext4", mount="-o buffered_iomap")
XFS_4K = Variant("xfs_4k", "xfs")
XFS_REFLINK = Variant("xfs-reflink", "xfs", mkfs="-m reflink=1")

HANG = Finding(kind="hang", type="HANG", title="INFO: task hung in ext4_writepages", line=120, report="INFO: task ...")
WARN = Finding(kind="warn", type="WARNING", title="WARNING in iomap_zero_iter", line=130, report="WARNING: ...")
CRASH = Finding(kind="crash", type="BUG", title="kernel BUG in xfs_bmapi_write", line=140, report="kernel BUG at ...")


def sections(text: str) -> dict[str, dict[str, str]]:
    """Parse local.config the way fstests' parse_config_section reads it: [name] then KEY=value."""
    out: dict[str, dict[str, str]] = {}
    cur = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            cur = out.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert cur is not None, f"option outside a section: {line}"
        assert " " not in key
        if value[:1] in "\"'":
            assert value[-1] == value[0], line
            value = value[1:-1]
        assert '"' not in value and "'" not in value, line
        cur[key] = value
    return out


# ---------------------------------------------------------------- local.config

def test_local_config_one_section_per_variant():
    text = fstests.render_local_config([EXT4_4K, EXT4_IOMAP, XFS_4K, XFS_REFLINK], origin="source: /src/fstests")
    s = sections(text)
    assert list(s) == ["ext4_4k", "ext4_iomap", "xfs_4k", "xfs_reflink"]    # '-' is not allowed in a section name
    for sec in s.values():
        assert sec["TEST_DEV"] == "/dev/vdb" and sec["TEST_DIR"] == "/mnt/test"
        assert sec["SCRATCH_DEV"] == "/dev/vdc" and sec["SCRATCH_MNT"] == "/mnt/scratch"
        assert sec["KEEP_DMESG"] == "yes"
    assert s["ext4_4k"]["FSTYP"] == "ext4" and s["ext4_4k"]["MKFS_OPTIONS"] == "-b 4096"
    assert "MOUNT_OPTIONS" not in s["ext4_4k"]          # unset: fstests' own defaults (acl,user_xattr)
    assert s["ext4_iomap"]["MOUNT_OPTIONS"] == "-o buffered_iomap"
    assert s["ext4_iomap"]["TEST_FS_MOUNT_OPTS"] == "-o buffered_iomap"   # generic/363 only uses TEST_DEV
    assert "MKFS_OPTIONS" not in s["xfs_4k"]
    assert s["xfs_reflink"] == {**s["xfs_reflink"], "FSTYP": "xfs", "MKFS_OPTIONS": "-m reflink=1"}
    assert "source: /src/fstests" in text.splitlines()[0]


def test_local_config_single_section_for_a_run():
    s = sections(fstests.render_local_config([XFS_4K]))
    assert list(s) == ["xfs_4k"]


def test_section_names():
    assert fstests.section_name("xfs-reflink.v2") == "xfs_reflink_v2"
    assert fstests.section_name("ext4_4k") == "ext4_4k"


# ---------------------------------------------------------------- selectors, groups, plan

def test_selectors():
    assert fstests.parse_selector("generic/363") == ("test", "generic/363")
    assert fstests.parse_selector("-g zero") == ("group", "zero")
    assert fstests.parse_selector("zero") == ("group", "zero")
    assert fstests.parse_selector("-g xfs/quick") == ("group", "xfs/quick")
    with pytest.raises(UserError, match="neither a test"):
        fstests.parse_selector("generic 363")
    assert fstests.is_selector("generic/363") and fstests.is_selector("fstests") and fstests.is_selector("-g zero")
    assert not fstests.is_selector("zero-range-basic")
    from kharness import suites
    assert suites.split_only(None) == {"fstests": None, "reproducers": None}
    assert suites.split_only(["zero-range-basic", "generic/363"]) == {"fstests": ["generic/363"],
                                                                      "reproducers": ["zero-range-basic"]}
    assert suites.split_only(["fstests"]) == {"fstests": ["fstests"], "reproducers": []}


@pytest.fixture
def tree(tmp_path):
    """A miniature fstests tree: new-style _begin_fstest headers, one old-style group file."""
    t = tmp_path / "fstests"
    for d in ("common", "tests/generic", "tests/xfs", "tests/ext4", "tests/btrfs"):
        (t / d).mkdir(parents=True)
    (t / "check").write_text("#!/bin/bash\n")
    heads = {"generic/008": "rw auto quick prealloc zero", "generic/363": "rw auto",
             "generic/255": "auto quick prealloc punch", "xfs/131": "auto quick clone zero",
             "ext4/001": "auto prealloc quick zero", "btrfs/001": "auto quick zero"}
    for name, groups in heads.items():
        (t / "tests" / f"{name}").write_text(f"#! /bin/bash\n. ./common/preamble\n_begin_fstest {groups}\n")
        (t / "tests" / f"{name}.out").write_text(f"QA output created by {name.split('/')[1]}\n")
    return t


def test_expand_groups_per_fstype(tree):
    # ./check's order: its list sorted by path, whatever the order of the selectors
    tests, na = fstests.expand(tree, ["generic/363", "-g zero"], "xfs")
    assert tests == ["generic/008", "generic/363", "xfs/131"]
    assert na == []
    tests, na = fstests.expand(tree, ["generic/363", "zero", "xfs/131"], "ext4")
    assert tests == ["ext4/001", "generic/008", "generic/363"]
    assert na and na[0][0] == "xfs/131" and "this variant is ext4" in na[0][1]
    assert fstests.expand(tree, ["-g xfs/zero"], "ext4")[0] == ["xfs/131"]


def test_expand_old_style_group_file(tree):
    (tree / "tests" / "generic" / "group").write_text("# comment\n008 rw auto zero\n363 rw auto\n")
    assert fstests.expand(tree, ["-g zero"], "ext4")[0] == ["ext4/001", "generic/008"]


def test_expand_errors(tree):
    with pytest.raises(UserError, match="no such test"):
        fstests.expand(tree, ["generic/999"], "xfs")
    with pytest.raises(UserError, match="empty or not defined"):
        fstests.expand(tree, ["-g nosuchgroup"], "xfs")


CHECK_N = DATA / "check-n"
# tests/data/fstests/check-n/SECTION/NAME.stdout: what `./check -n -s SECTION ...` printed in the guest
CHECK_N_SELECTORS = {"zero": ["-g zero"], "quick": ["-g quick"], "auto": ["-g auto"], "all": ["-g all"],
                     "xfs-zero": ["-g xfs/zero"], "mixed": ["-g zero", "generic/363", "xfs/131"],
                     "prealloc-zero": ["-g prealloc", "-g zero"]}


def check_n_listed(text: str) -> list[str]:
    """The tests ./check -n lists: one a line after its configuration header, in its order."""
    head, _, body = text.partition("\n\n")
    assert head.startswith("SECTION       -- ")
    return [ln.split()[0] for ln in body.splitlines() if ln.strip() and " - " not in ln]


@pytest.fixture(scope="module")
def built_tree(tmp_path_factory):
    """The test directories of the image's built fstests tree as ./check sees them: the captured
    group.list files (fstests' own, written by its make) and an empty file per test they name.
    Shared by the tests of this module: read only."""
    t = tmp_path_factory.mktemp("built")
    for gl in sorted((CHECK_N / "group.list").iterdir()):
        d = t / "tests" / gl.name
        d.mkdir(parents=True)
        (d / "group.list").write_text(gl.read_text())
        for name in PLAN.parse_group_list(gl.read_text()):
            (d / name).touch()
    return t


@pytest.mark.parametrize("section,fstype", [("ext4_4k", "ext4"), ("xfs_4k", "xfs")])
@pytest.mark.parametrize("name", sorted(CHECK_N_SELECTORS))
def test_expand_agrees_with_real_check_n(built_tree, section, fstype, name):
    want = check_n_listed((CHECK_N / section / f"{name}.stdout").read_text())
    assert want, name
    tests, na = fstests.expand(built_tree, CHECK_N_SELECTORS[name], fstype)
    if name == "mixed" and fstype == "ext4":
        # ./check would run xfs/131 on ext4 when it is named; the harness calls it not applicable
        assert na == [("xfs/131", "xfs/131 is a xfs test; this variant is ext4")]
        want.remove("xfs/131")
    else:
        assert na == []
    assert tests == want            # the same tests, in the order ./check runs them


def test_expand_errors_where_check_n_stops_or_ignores(built_tree, tree):
    for section, fstype in (("ext4_4k", "ext4"), ("xfs_4k", "xfs")):
        said = (CHECK_N / section / "nosuchgroup.stdout").read_text()
        assert 'Group "nosuchgroup" is empty or not defined?' in said
        with pytest.raises(UserError, match="group 'nosuchgroup' is empty or not defined"):
            fstests.expand(built_tree, ["-g nosuchgroup"], fstype)
        said = (CHECK_N / section / "unknown-test.stdout").read_text()
        assert said.startswith("generic/999 - unknown test, ignored\n")
        assert check_n_listed(said.split("\n", 1)[1]) == ["generic/363"]
        with pytest.raises(UserError, match="generic/999: no such test"):
            fstests.expand(built_tree, ["generic/999", "generic/363"], fstype)
        assert fstests.expand(built_tree, ["generic/363"], fstype) == (["generic/363"], [])
    # a group that only another filesystem has: nothing for this one, no error
    assert fstests.expand(built_tree, ["-g zero", "-g raid"], "xfs")[0] == fstests.expand(built_tree, ["-g zero"], "xfs")[0]
    with pytest.raises(UserError, match="group 'nosuch' is empty or not defined in .*tests/xfs"):
        fstests.expand(built_tree, ["-g xfs/nosuch"], "ext4")
    # a test file that group.list does not name (no _begin_fstest line): ./check ignores it
    (tree / "tests" / "generic" / "group.list").write_text("008 rw auto quick prealloc zero\n")
    with pytest.raises(UserError, match="generic/363 is not in tests/generic's group list"):
        fstests.expand(tree, ["generic/363"], "xfs")


MKGROUPFILE_STUB = """#!/bin/bash
# stands in for fstests' tools/mkgroupfile: prints a group list, says where it ran
echo "$PWD $*" >> {log}
case "$PWD" in
*/generic) printf '# QA groups control file, automatically generated.\\n\\n008 rw zero\\n255 punch\\n' ;;
*) echo 'group "bogus" not mentioned in documentation.' >&2; exit 1 ;;
esac
"""


def test_expand_runs_fstests_mkgroupfile_in_a_checkout_without_group_list(tree, tmp_path, monkeypatch):
    """A git checkout has no group.list until make: the planner runs fstests' own tools/mkgroupfile
    (what make runs) and falls back to the _begin_fstest lines, saying why, only when it fails."""
    from kharness import ui
    warned: list[str] = []
    monkeypatch.setattr(ui, "warn", warned.append)
    log = tmp_path / "mkgroupfile.log"
    (tree / "tools").mkdir()
    (tree / "tools" / "mkgroupfile").write_text(MKGROUPFILE_STUB.format(log=log))
    before = sorted(p.relative_to(tree) for p in tree.rglob("*"))
    # generic: mkgroupfile's list wins over the headers (363's `rw auto` is not in it: not in any group)
    assert fstests.expand(tree, ["-g zero", "-g punch"], "xfs")[0] == ["generic/008", "generic/255", "xfs/131"]
    assert log.read_text().splitlines() == [f"{tree}/tests/generic -", f"{tree}/tests/xfs -"]
    assert [w for w in warned if "tests/generic" in w] == []
    assert len(warned) == 1 and "tests/xfs: groups read from the tests' _begin_fstest lines" in warned[0]
    assert 'mkgroupfile failed' in warned[0] and 'not mentioned in documentation' in warned[0]
    assert sorted(p.relative_to(tree) for p in tree.rglob("*")) == before      # nothing written into the tree


def test_expand_reads_src_groups_from_check(tree):
    assert fstests.test_dirs(tree, "xfs") == ["generic", "xfs"]
    assert fstests.test_dirs(tree, "ext3") == ["generic", "ext4"]          # check: ext2/ext3 use ext4's groups
    (tree / "tests" / "shared").mkdir()
    (tree / "tests" / "shared" / "298").write_text("#! /bin/bash\n_begin_fstest auto zero\n")
    assert fstests.test_dirs(tree, "xfs") == ["generic", "xfs"]            # today's check: SRC_GROUPS="generic"
    (tree / "check").write_text('#!/bin/bash\nSRC_GROUPS="generic shared"\nexport SRC_DIR="tests"\n')
    assert fstests.test_dirs(tree, "xfs") == ["generic", "shared", "xfs"]  # a tree from before shared/ went
    assert "shared/298" in fstests.expand(tree, ["-g zero"], "xfs")[0]


class Cfg:
    def __init__(self, fst, variants, repeat=1, kernel=None):
        self.suites, self.variants, self.repeat, self.path = {"fstests": fst}, variants, repeat, Path("x.yaml")
        self.warn_is_failure = True
        self.kernel = kernel


def test_plan_jobs_expunge_and_order(tree, monkeypatch):
    monkeypatch.delenv(fstests.ENV_SOURCE, raising=False)
    fstests._resolved.clear()
    fst = fstests.FstestsConfig(source=str(tree), tests=["generic/363", "-g zero"],
                                expunge=[fstests.FstestsExpunge(tests=["generic/008"], variants=["xfs_4k"],
                                                                reason="slow")])
    jobs, skipped = fstests.plan(Cfg(fst, [EXT4_4K, XFS_4K]), repeat=2)
    by = [(j.variant.name, j.iteration, j.test.name) for j in jobs]
    assert by[:3] == [("ext4_4k", 1, "ext4/001"), ("ext4_4k", 1, "generic/008"), ("ext4_4k", 1, "generic/363")]
    assert ("xfs_4k", 2, "xfs/131") in by and ("xfs_4k", 1, "generic/008") not in by
    assert [(v.name, t.name, why) for v, t, why in skipped] == [("xfs_4k", "generic/008", "expunged in the config: slow")]
    assert all(j.suite == "fstests" for j in jobs)
    assert jobs[2].id == "ext4_4k.generic/363.1" and jobs[2].name == "generic/363#1"
    # --only / repro: a test by name, on the chosen variants
    jobs, _ = fstests.plan(Cfg(fst, [EXT4_4K, XFS_4K]), only=["generic/255"], variants=["xfs_4k"])
    assert [(j.variant.name, j.test.name) for j in jobs] == [("xfs_4k", "generic/255")]
    assert fstests.plan(Cfg(fst, [EXT4_4K]), only=[]) == ([], [])


# ---------------------------------------------------------------- expunge files

def kernel_cfg(**kw):
    from kharness.config import DebianPackage, KernelConfig
    if "debian" in kw:
        kw["debian"] = DebianPackage(kw["debian"])
    return KernelConfig(**kw)


def test_expunge_file_format(tmp_path):
    f = tmp_path / "ext4_4k.txt"
    es = expunges.parse("# a comment\n\n"
                        "generic/475   # reason: hangs in jbd2; writeback stuck ; bug: https://example.org/b/1\n"
                        "  generic/363 #reason:slow under TCG\n"
                        "btrfs/001-with-name # reason: x;\n", f)
    assert [(e.test, e.reason, e.bug, e.line) for e in es] == [
        ("generic/475", "hangs in jbd2; writeback stuck", "https://example.org/b/1", 3),
        ("generic/363", "slow under TCG", None, 4), ("btrfs/001-with-name", "x", None, 5)]
    assert es[0].why() == f"expunged in {f}:3: hangs in jbd2; writeback stuck (bug: https://example.org/b/1)"
    assert es[1].why() == f"expunged in {f}:4: slow under TCG"


@pytest.mark.parametrize("line,says", [
    ("generic/475", "generic/475: no reason; write `generic/475 # reason: WHY`"),
    ("generic/475 # slow", "expected `reason: WHY` and optionally `; bug: URL` after the '#', got 'slow'"),
    ("generic/475 # reason:", "generic/475: no reason"),
    ("generic/475 # reason: slow; bug: lore 1234", "bug: 'lore 1234' is not a link"),
    ("generic/475 # reason: slow; bug: https://a/1; bug: https://a/2", "got 'bug: https://a/2'"),
    ("generic/47 # reason: slow", "'generic/47' is not a test name like generic/475"),
    ("generic/475 generic/476 # reason: slow", "'generic/475 generic/476' is not a test name"),
    ("generic/008 # reason: dup", "generic/008 is already expunged at line 1"),
])
def test_expunge_file_errors_name_file_and_line(tmp_path, line, says):
    f = tmp_path / "6.12" / "ext4" / "ext4_4k.txt"
    with pytest.raises(UserError) as e:
        expunges.parse("generic/008 # reason: slow\n# comment\n" + line + "\n", f)
    msg = str(e.value)
    assert msg.startswith(f"{f}:3: ") and says in msg and "\n" not in msg


def test_expunge_files_layout(tmp_path):
    root = tmp_path / "expunges"
    (root / "6.12" / "ext4").mkdir(parents=True)
    (root / "all" / "all").mkdir(parents=True)
    (root / "6.12" / "ext4" / "ext4_4k.txt").write_text("generic/475 # reason: a\n")
    (root / "all" / "all" / "all.txt").write_text("generic/475 # reason: b\ngeneric/476 # reason: c\n")
    (root / "README.md").write_text("not an expunge file\n")
    table = expunges.load(root)
    assert sorted(table) == [("6.12", "ext4", "ext4_4k"), ("all", "all", "all")]
    assert expunges.kernel_dirs(table) == ["6.12"]
    mine = expunges.for_variant(table, "6.12", "ext4", "ext4_4k")
    assert {t: e.reason for t, e in mine.items()} == {"generic/475": "a", "generic/476": "c"}   # most specific wins
    assert {t: e.reason for t, e in expunges.for_variant(table, "7.2", "ext4", "ext4_4k").items()} == \
        {"generic/475": "b", "generic/476": "c"}
    assert {t: e.reason for t, e in expunges.for_variant(table, None, "xfs", "xfs_4k").items()} == \
        {"generic/475": "b", "generic/476": "c"}
    for bad in ("6.12/ext4.txt", "6.12.3/ext4/ext4_4k.txt", "6.12/ext4/ext4-4k.txt", "v6.12/all/all.txt"):
        p = root / bad
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
        with pytest.raises(UserError, match=r"expunge files go at .*/<kernel>/<fs>/<section>\.txt"):
            expunges.load(root)
        p.unlink()
    assert expunges.load(tmp_path / "none") == {}


def test_expunge_kernel_key_is_known_before_the_build(tmp_path):
    assert expunges.kernel_key(kernel_cfg(tarball="/usr/src/linux-source-6.12.tar.xz")) == "6.12"
    assert expunges.kernel_key(kernel_cfg(tarball="/tmp/linux-6.12.3.tar.xz")) == "6.12"
    assert expunges.kernel_key(kernel_cfg(tarball="linux-7.2-rc3.tar.gz")) == "7.2"
    assert expunges.kernel_key(kernel_cfg(tarball="/tmp/kernel.tar.xz")) is None
    assert expunges.kernel_key(kernel_cfg(debian="linux-source-7.2")) == "7.2"
    assert expunges.kernel_key(None) is None
    import subprocess
    g = tmp_path / "linux"
    g.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PATH": "/usr/bin:/bin"}
    (g / "Makefile").write_text("# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 13\nSUBLEVEL = 0\n")
    for argv in (["init", "-q"], ["add", "Makefile"], ["commit", "-q", "-m", "a"], ["tag", "v6.13"]):
        subprocess.run(["git", "-C", str(g), *argv], check=True, env=env)
    (g / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 0\n")
    subprocess.run(["git", "-C", str(g), "commit", "-q", "-am", "b"], check=True, env=env)
    assert expunges.kernel_key(kernel_cfg(git=str(g))) == "7.0"
    assert expunges.kernel_key(kernel_cfg(git=str(g), ref="v6.13")) == "6.13"     # at the ref, not the work tree
    assert expunges.kernel_key(kernel_cfg(git=str(tmp_path / "nope"))) is None


def test_plan_skips_tests_of_expunge_files_with_file_line_and_reason(tree, tmp_path, monkeypatch):
    monkeypatch.delenv(fstests.ENV_SOURCE, raising=False)
    fstests._resolved.clear()
    root = tmp_path / "expunges"
    monkeypatch.setattr(expunges, "ROOT", root)
    for rel, text in {"6.12/ext4/ext4_4k.txt": "# 6.12, ext4 4k\ngeneric/008 # reason: hangs; bug: https://example.org/1\n",
                      "6.12/all/all.txt": "generic/363 # reason: slow on 6.12\n",
                      "7.2/ext4/ext4_4k.txt": "ext4/001 # reason: 7.2 only\n",
                      "all/xfs/all.txt": "xfs/131 # reason: every xfs section\ngeneric/363 # reason: xfs everywhere\n"
                      }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    fst = fstests.FstestsConfig(source=str(tree), tests=["generic/363", "-g zero"],
                                expunge=[fstests.FstestsExpunge(tests=["generic/363"], variants=["xfs_4k"],
                                                                reason="config says")])
    k612 = kernel_cfg(tarball="/usr/src/linux-source-6.12.tar.xz")
    jobs, skipped = fstests.plan(Cfg(fst, [EXT4_4K, XFS_4K], kernel=k612), repeat=2)
    assert [(v.name, t.name, why) for v, t, why in skipped] == [
        ("ext4_4k", "generic/008", f"expunged in {root}/6.12/ext4/ext4_4k.txt:2: hangs (bug: https://example.org/1)"),
        ("ext4_4k", "generic/363", f"expunged in {root}/6.12/all/all.txt:1: slow on 6.12"),
        ("xfs_4k", "generic/363", "expunged in the config: config says"),        # the config wins
        ("xfs_4k", "xfs/131", f"expunged in {root}/all/xfs/all.txt:1: every xfs section")]
    assert [(j.variant.name, j.iteration, j.test.name) for j in jobs] == [
        ("ext4_4k", 1, "ext4/001"), ("ext4_4k", 2, "ext4/001"), ("xfs_4k", 1, "generic/008"), ("xfs_4k", 2, "generic/008")]
    # another kernel: its own directory and all/
    jobs, skipped = fstests.plan(Cfg(fst, [EXT4_4K], kernel=kernel_cfg(debian="linux-source-7.2")))
    assert [(t.name, why.split(":")[0]) for _, t, why in skipped] == [("ext4/001", f"expunged in {root}/7.2/ext4/ext4_4k.txt")]
    # a kernel whose version cannot be told: all/ only, and a warning saying so
    from kharness import ui
    warned: list[str] = []
    monkeypatch.setattr(ui, "warn", warned.append)
    _, skipped = fstests.plan(Cfg(fst, [XFS_4K], kernel=kernel_cfg(tarball="/tmp/mykernel.tar.xz")))
    assert [t.name for _, t, _ in skipped] == ["generic/363", "xfs/131"]
    assert [w for w in warned if "major.minor" in w] == [
        "fstests: cannot tell the kernel's major.minor from kernel.tarball: /tmp/mykernel.tar.xz; only "
        "expunges/all/ applies (not expunges/6.12/, expunges/7.2/)"]


def test_plan_malformed_expunge_file_is_one_line_and_exit_2(tree, tmp_path, monkeypatch, capsys):
    from kharness import cli
    monkeypatch.delenv(fstests.ENV_SOURCE, raising=False)
    fstests._resolved.clear()
    root = tmp_path / "expunges"
    (root / "6.12" / "ext4").mkdir(parents=True)
    (root / "6.12" / "ext4" / "ext4_4k.txt").write_text("generic/008 # reason: fine\ngeneric/363 slow\n")
    monkeypatch.setattr(expunges, "ROOT", root)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\nkernel: {tarball: /usr/src/linux-source-6.12.tar.xz}\n"
                   "variants: [{name: ext4_4k, fstype: ext4}]\ntests: []\n"
                   f"fstests: {{source: {tree}, tests: [generic/363]}}\n")
    assert cli.main(["list", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err == (f"harness.py: error: {root}/6.12/ext4/ext4_4k.txt:2: 'generic/363 slow' is not a test name like "
                   "generic/475 (a line is `TEST # reason: WHY; bug: URL`)\n")


def test_the_repositorys_expunge_files_are_valid():
    assert expunges.ROOT == REPO_ROOT / "expunges" and (expunges.ROOT / "README.md").is_file()
    table = expunges.load()                 # a malformed committed file fails here
    for key, entries in table.items():
        for e in entries:
            assert e.reason and e.test and (e.bug is None or e.bug.startswith("https://")), (key, e)


def test_plan_without_source_makes_error_jobs(monkeypatch):
    monkeypatch.delenv(fstests.ENV_SOURCE, raising=False)
    fstests._resolved.clear()
    jobs, _ = fstests.plan(Cfg(fstests.FstestsConfig(tests=["generic/363"]), [EXT4_4K]))
    assert [j.test.name for j in jobs] == ["generic/363"]
    with pytest.raises(fstests.Unavailable, match=r"fstests\.source"):
        fstests.resolve_source(fstests.FstestsConfig())


def test_unavailable_suite_errors_every_job(tmp_path, monkeypatch):
    monkeypatch.delenv(fstests.ENV_SOURCE, raising=False)
    fstests._resolved.clear()
    cfg = Cfg(fstests.FstestsConfig(tests=["generic/363"]), [EXT4_4K, XFS_4K])
    jobs, _ = fstests.plan(cfg)
    suite = fstests.FstestsSuite().prepare(cfg, tmp_path, jobs)
    assert suite.image is None and "fstests.source" in suite.unavailable
    results = list(suite.run(None, jobs))
    assert [(r.job.variant.name, r.verdict.status) for r in results] == [("ext4_4k", "error"), ("xfs_4k", "error")]
    assert "fstests.source" in results[0].verdict.message


def test_missing_local_source_names_the_key(tmp_path, monkeypatch, tmp_cache):
    monkeypatch.delenv(fstests.ENV_SOURCE, raising=False)
    fstests._resolved.clear()
    with pytest.raises(fstests.Unavailable, match=r"fstests\.source: .*does not exist"):
        fstests.resolve_source(fstests.FstestsConfig(source=str(tmp_path / "nope")))
    with pytest.raises(fstests.Unavailable, match=r"fstests\.git: cannot clone"):
        fstests.resolve_source(fstests.FstestsConfig(git=str(tmp_path / "nope.git")))


def test_env_overrides_source(tree, monkeypatch):
    fstests._resolved.clear()
    monkeypatch.setenv(fstests.ENV_SOURCE, str(tree))
    src = fstests.resolve_source(fstests.FstestsConfig(source="/elsewhere"))
    assert src.path == tree.resolve() and fstests.ENV_SOURCE in src.origin
    fstests._resolved.clear()


def test_tree_key_follows_content(tree, monkeypatch):
    monkeypatch.delenv(fstests.ENV_SOURCE, raising=False)
    fstests._resolved.clear()
    a = fstests.resolve_source(fstests.FstestsConfig(source=str(tree))).key
    fstests._resolved.clear()
    (tree / "tests" / "generic" / "363").write_text("changed\n")
    b = fstests.resolve_source(fstests.FstestsConfig(source=str(tree))).key
    fstests._resolved.clear()
    assert a != b


def test_check_config(tmp_path):
    from kharness import config
    p = tmp_path / "c.yaml"
    base = ("name: t\nkernel: {tarball: /x.tar.xz}\nvariants:\n  - {name: ext4, fstype: ext4}\n"
            "  - {name: xfs-reflink, fstype: xfs, mkfs: '-m reflink=1'}\n")
    p.write_text(base + "fstests:\n  source: /src\n  tests: [generic/363, -g zero]\n"
                 "  expunge:\n    - {tests: [generic/008], variants: [ext4], reason: slow}\n")
    cfg = config.load(p)
    fst = cfg.suites["fstests"]
    assert fst.tests == ["generic/363", "-g zero"] and fst.expunge[0].reason == "slow"
    p.write_text(base + "fstests:\n  tests: [generic/363]\n  variants: [btrfs]\n")
    with pytest.raises(UserError, match="fstests.variants: no variant named 'btrfs'"):
        config.load(p)
    p.write_text(base + "fstests:\n  source: /a\n  git: /b\n")
    with pytest.raises(UserError, match="not both"):
        config.load(p)
    p.write_text(base + "fstests:\n  tests: ['generic 363']\n")
    with pytest.raises(UserError, match="neither a test"):
        config.load(p)
    p.write_text(base + "fstests:\n  testz: [generic/363]\n")
    with pytest.raises(UserError, match="did you mean 'tests'"):
        config.load(p)


# ---------------------------------------------------------------- watchdog and console windows

def test_watchdog_from_history():
    hist = fstests.parse_check_time("generic/363 84\ngeneric/008 3\n")
    assert hist == {"generic/363": 84.0, "generic/008": 3.0}
    assert fstests.watchdog_for("generic/363", hist, 900) == 384           # t + 300 > 3t
    assert fstests.watchdog_for("generic/008", hist, 900) == 303
    assert fstests.watchdog_for("generic/127", hist, 900) == 900           # no history: the config bound
    assert fstests.watchdog_for("x/1", {"x/1": 1000}, 900) == 3000
    assert fstests.format_check_time(hist) == "generic/008 3\ngeneric/363 84\n"


def test_windows_and_attribution():
    lines = [(10, "[   50.1][ T201] run fstests generic/008 at 2026-11-26 10:00:00"),
             (11, "something"),
             (20, "[   60.1][ T230] run fstests generic/363 at 2026-11-26 10:00:10")]
    starts = fstests.test_starts(lines)
    assert starts == [(10, "generic/008"), (20, "generic/363")]
    w = fstests.windows(starts, 5, 200)
    assert w == {"generic/008": (5, 19), "generic/363": (20, 200)}
    assert fstests.findings_in([HANG, WARN, CRASH], w["generic/363"]) == [HANG, WARN, CRASH]
    assert fstests.findings_in([Finding("warn", "WARNING", "w", 12, "")], w["generic/008"])[0].line == 12
    assert fstests.findings_in([HANG], w["generic/008"]) == []


def test_console_tail(tmp_path):
    p = tmp_path / "console.log"
    p.write_text("a\nb\n")
    t = fstests.ConsoleTail(p, 2, p.stat().st_size)
    with open(p, "a") as f:
        f.write("run fstests generic/363 at 2026-11-26 10:00:00\npart")
    assert t.poll() == [(3, "run fstests generic/363 at 2026-11-26 10:00:00")]
    with open(p, "a") as f:
        f.write("ial\n")
    assert t.poll() == [(4, "partial")]


# ---------------------------------------------------------------- verdict combination

def case(status, msg=""):
    return fstests.CaseResult("generic/363", status, 84.0, msg)


def test_reported_status_and_findings_precedence():
    assert fstests.judge_reported(case("pass"), []).status == "pass"
    v = fstests.judge_reported(case("pass"), [HANG])                   # a pass with a hung task is a hang
    assert (v.status, v.message) == ("hang", HANG.title)
    assert fstests.judge_reported(case("pass"), [WARN]).status == "warn"
    assert fstests.judge_reported(case("pass"), [WARN], warn_is_failure=False).status == "pass"
    v = fstests.judge_reported(case("fail", "- output mismatch (see x.out.bad)"), [WARN])
    assert v.status == "fail" and v.message == "fstests: - output mismatch (see x.out.bad); kernel: WARNING in iomap_zero_iter"
    assert fstests.judge_reported(case("fail", "x"), [CRASH, HANG]).status == "crash"
    v = fstests.judge_reported(case("notrun", "ext4 does not support buffered_iomap"), [])
    assert (v.status, v.message) == ("skip", "fstests: not run: ext4 does not support buffered_iomap")
    assert fstests.judge_reported(case("notrun", "x"), [HANG]).status == "hang"


def test_tests_stopped_by_the_harness():
    v = fstests.judge_stopped([HANG], Trouble("hang", f"{HANG.title}"), seconds=30)
    assert (v.status, v.message) == ("hang", HANG.title)
    v = fstests.judge_stopped([], Trouble("hang", "fstests watchdog: generic/363 ran past 384 s"), seconds=385)
    assert (v.status, v.message) == ("hang", "fstests watchdog: generic/363 ran past 384 s")
    v = fstests.judge_stopped([], Trouble("crash", "QEMU exited during the test"), seconds=3)
    assert v.status == "crash"


# ---------------------------------------------------------------- captured real output

def test_fstests_deps_are_debian_names():
    from kharness.image import parse_packages
    assert parse_packages("\n".join(fstests.BUILD_DEPS + fstests.RUNTIME_DEPS))


SELF = DATA / "selftests-ext4_4k"      # ./check -R xunit -s ext4_4k selftest/001 002 004 003 (6.12, TCG)


def test_parse_real_result_xml():
    got = {c.name: c for c in fstests.parse_xunit((SELF / "result.xml").read_text())}
    assert {n: c.status for n, c in got.items()} == {
        "selftest/001": "pass", "selftest/002": "fail", "selftest/003": "fail", "selftest/004": "notrun"}
    c = got["selftest/002"]
    assert c.message.startswith("- output mismatch (see /opt/fstests/results//ext4_4k/selftest/002.out.bad")
    assert "+I am intentionally broken" in c.system_err
    assert got["selftest/004"].message == "Always skip me"
    assert got["selftest/001"].seconds == 2.0


def test_tolerant_parser_agrees_and_survives_unescaped_messages():
    text = (SELF / "result.xml").read_text()
    strict = fstests.parse_xunit(text)
    assert fstests._parse_xunit_tolerant(text) == strict
    # fstests puts _err_msg into the attribute unescaped: a '<' or '&' breaks the XML
    broken = text.replace('message="- output mismatch (see /opt/fstests/results//ext4_4k/selftest/002.out.bad)"',
                          'message="_check_dmesg: something found <WARNING> & more (see 002.dmesg)"')
    import xml.etree.ElementTree as ET
    with pytest.raises(ET.ParseError):
        ET.fromstring(broken)
    got = {c.name: c for c in fstests.parse_xunit(broken)}
    assert got["selftest/002"].status == "fail"
    assert got["selftest/002"].message == "_check_dmesg: something found <WARNING> & more (see 002.dmesg)"
    assert got["selftest/004"].status == "notrun" and got["selftest/001"].status == "pass"


def test_parse_real_check_output():
    text = (SELF / "check.stdout").read_text()
    names = ["selftest/001", "selftest/002", "selftest/004", "selftest/003"]
    got = fstests.parse_check_output(text, names)
    assert {n: c.status for n, c in got.items()} == {
        "selftest/001": "pass", "selftest/002": "fail", "selftest/003": "fail", "selftest/004": "notrun"}
    assert got["selftest/004"].message == "Always skip me"
    assert got["selftest/001"].seconds == 2.0
    lines = fstests.check_output_of(text, "selftest/002", names)
    assert lines.startswith("selftest/002") and "+I am intentionally broken" in lines
    assert "selftest/003" not in lines and "Ran:" not in lines
    assert fstests.parse_check_time((SELF / "check.time").read_text()) == {"selftest/001": 2.0}


def test_failure_detail_carries_the_diff_head_and_findings():
    c = {c.name: c for c in fstests.parse_xunit((SELF / "result.xml").read_text())}["selftest/002"]
    v = fstests.judge_reported(c, [WARN])
    d = fstests.failure_detail(c, v)
    assert d.startswith("fstests: - output mismatch")
    assert "--- .out.bad diff (head) ---" in d and "+I am intentionally broken" in d
    assert "kernel: WARNING in iomap_zero_iter (console.log line 130)" in d
    # without fstests' own diff (xunit-quiet): computed from the golden output and the pulled .out.bad
    c2 = fstests.CaseResult(c.name, "fail", 3.0, c.message)
    d2 = fstests.failure_detail(c2, fstests.judge_reported(c2, []), golden="QA output created by 002\nSilence is golden\n",
                                out_bad=(SELF / "selftest" / "002.out.bad").read_text())
    assert "+I am intentionally broken" in d2 and "-Silence is golden" in d2


def test_real_console_windows_split_by_run_fstests_lines():
    lines = list(enumerate((SELF / "console.log").read_text().splitlines(), 1))
    starts = fstests.test_starts(lines)
    assert [t for _, t in starts] == ["selftest/001", "selftest/002", "selftest/003", "selftest/004"]  # ./check sorts
    w = fstests.windows(starts, 2, len(lines))
    assert w["selftest/001"] == (2, 7) and w["selftest/002"] == (8, 10) and w["selftest/004"] == (14, 17)
    # a hung-task report printed during selftest/003 belongs to selftest/003, and turns its pass into a hang
    hang = dataclasses_replace(HANG, line=12)
    assert fstests.findings_in([hang], w["selftest/003"]) == [hang]
    assert fstests.findings_in([hang], w["selftest/002"]) == []
    v = fstests.judge_reported(fstests.CaseResult("selftest/003", "pass", 4.0), fstests.findings_in([hang], w["selftest/003"]))
    assert v.status == "hang"


def dataclasses_replace(f, **kw):
    import dataclasses
    return dataclasses.replace(f, **kw)


# ---------------------------------------------------------------- the run loop, with a simulated guest
#
# Prepared._run_group drives a real session.Session and the real lifecycle (real console stream, analyzer and windows); only the
# guest is simulated: its ./check prints the `run fstests` lines to the console, writes result.xml the
# way fstests does (rewritten before every test), and hangs, stalls or dies where the scenario says.

HUNG_REPORT = "\n".join((Path(__file__).resolve().parent / "data" / "console" / "hung-task.log")
                        .read_text().splitlines()[256:291]) + "\n"


class FakeSftp:
    def __init__(self, root: Path):
        self.root = root

    def _p(self, remote):
        return self.root / remote.lstrip("/")

    def stat(self, remote):
        try:
            return self._p(remote).stat()
        except FileNotFoundError:
            raise IOError(remote)

    def open(self, remote, mode):
        return open(self._p(remote), mode)

    def listdir_attr(self, remote):
        import types
        try:
            return [types.SimpleNamespace(filename=e.name, st_mode=e.stat().st_mode) for e in self._p(remote).iterdir()]
        except FileNotFoundError:
            raise IOError(remote)

    def get_channel(self):
        import types
        return types.SimpleNamespace(settimeout=lambda t: None)

    def close(self):
        pass


class FakeVm:
    """QEMU as the lifecycle sees it. `last_words` is console text a dead QEMU had written that the
    console tail has not copied yet: it reaches console.log only when someone drains the tail."""

    def __init__(self, stream=None):
        self.dead = False
        self.stream = stream
        self.last_words = ""

    def alive(self):
        return not self.dead

    def exited(self, grace):
        return self.dead

    def drain(self, timeout=5):
        if self.dead and self.last_words and self.stream:
            self.stream.write(self.last_words)
            self.last_words = ""

    def sysrq(self, key):
        raise RuntimeError("QMP socket closed")

    def kill(self):
        self.dead = True


class FakeGuest:
    """The guest side of a scenario: `plan[test]` is pass | fail | notrun | hang | stall | panic."""

    def __init__(self, session, root: Path, plan: dict[str, str]):
        import types
        self.s, self.root, self.plan = session, root, plan
        self.commands: list[list[str]] = []
        self.client = types.SimpleNamespace(open_sftp=lambda: FakeSftp(root))

    def put_text(self, text, remote, mode=0o755):
        p = self.root / remote.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def alive(self):
        return True

    def ping(self, timeout=15):
        return not self.s.vm.dead

    def say(self, line):
        self.s.stream.write(f"[  100.000000][   T85] {line}\n")

    def run(self, cmd, timeout, stdout_path=None, stderr_path=None, check_abort=lambda: None):
        import shlex
        import time as _t
        from kharness.model import Outcome
        if "sysrq-trigger" in cmd:
            self.say("sysrq: Show Blocked State")
            return Outcome(0, 0.1)
        if "./check" not in cmd:
            if "rm -rf" in cmd:
                import shutil
                shutil.rmtree(self.root / "opt/fstests/results/sec", ignore_errors=True)
            return Outcome(0, 0.1)
        words = shlex.split(cmd)                             # run-job ID - sh -c 'cd /opt/fstests && ./check ...'
        assert words[0].endswith("/run-job") and words[2] == "-" and words[3:5] == ["sh", "-c"], words
        run_id = words[1]
        argv = shlex.split(words[5].split("./check", 1)[1])
        tests = sorted(a for a in argv if "/" in a)          # ./check sorts its list
        self.commands.append(tests)
        res = self.root / "opt/fstests/results/sec"
        res.mkdir(parents=True, exist_ok=True)
        done, out = [], []
        self.say(f"kharness: job-start {run_id}")

        def write_xml():
            body = ""
            for name, st in done:
                body += f'\t<testcase classname="xfstests.sec" name="{name}" time="3">\n'
                if st == "fail":
                    body += '\t\t<failure message="- output mismatch (see x.out.bad)" type="TestFail" />\n'
                elif st == "notrun":
                    body += '\t\t<skipped message="not for this fs" />\n'
                body += "\t</testcase>\n"
            (res / "result.xml").write_text(f'<?xml version="1.0"?>\n<testsuite name="xfstests">\n{body}</testsuite>\n')

        def finish(outcome):
            if stdout_path:
                Path(stdout_path).write_text("".join(out))
            if stderr_path:
                Path(stderr_path).write_text("")
            return outcome

        for t in tests:
            write_xml()
            self.say(f"run fstests {t} at 2026-11-26 10:00:00")
            what = self.plan.get(t, "pass")
            if what in ("hang", "stall"):
                if what == "hang":
                    self.s.stream.write(HUNG_REPORT)
                deadline = _t.monotonic() + 30
                while _t.monotonic() < deadline:
                    if why := check_abort():
                        return finish(Outcome(None, 1.0, aborted=why))
                    _t.sleep(0.05)
                raise AssertionError(f"the harness did not stop {t}")
            if what == "panic":
                self.say("Kernel panic - not syncing: sysrq triggered crash")
                self.s.vm.dead = True     # as the real Guest.run reports it: no exit status
                return finish(Outcome(None, 1.0, lost="ssh channel closed without an exit status"))
            if what in ("killed", "panic-in-flight"):
                # What the real Guest.run returns when QEMU dies under the command: no exit status.
                if what == "panic-in-flight":      # the panic is still in the console tail's pipe
                    self.s.vm.last_words = "[  101.000000][    C0] Kernel panic - not syncing: sysrq triggered crash\n"
                self.s.vm.dead = True
                return finish(Outcome(None, 1.0, lost="ssh channel closed without an exit status"))
            assert check_abort() is None
            out.append(f"{t}       " + {"pass": "3s\n", "fail": "- output mismatch (see x.out.bad)\n",
                                          "notrun": "[not run] not for this fs\n"}[what])
            if what == "fail":
                d, n = t.split("/")
                (res / d).mkdir(exist_ok=True)
                (res / d / f"{n}.out.bad").write_text("QA output created by x\nwrong\n")
            done.append((t, what))
        write_xml()
        self.say(f"kharness: job-end {run_id} rc=0")
        return finish(Outcome(0, 2.0))


@pytest.fixture
def sim(tmp_path, tmp_cache, monkeypatch, tree):
    from kharness import lifecycle, session
    from kharness.config import RunConfig, VmConfig
    from kharness.fstests import suite as fstests_suite
    monkeypatch.setattr(lifecycle, "EVIDENCE_QUIET", 0.1)
    monkeypatch.setattr(fstests_suite, "section_name", lambda name: "sec")
    monkeypatch.delenv(fstests.ENV_SOURCE, raising=False)
    fstests._resolved.clear()

    def make(plan, timeouts=None):
        cfg = RunConfig(name="sim", variants=[EXT4_4K], vm=VmConfig())
        cfg.suites["fstests"] = fstests.FstestsConfig(source=str(tree), tests=sorted(plan), test_timeout=60,
                                            timeouts=timeouts or [])
        cfg.path = tmp_path / "sim.yaml"
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        s = session.Session(cfg, run_dir, None, None, "tcg")
        guest = FakeGuest(s, tmp_path / "guest", plan)
        s.vm = FakeVm(s.stream)
        s.boots = 1
        s.prepare = lambda g, v, log: None

        def guest_ready():
            if s.vm is None:
                s.vm, s.boots = FakeVm(s.stream), s.boots + 1
            return guest

        def stop():
            s.vm = None
        s.guest_ready, s.stop = guest_ready, stop
        suite = fstests.Prepared(cfg, run_dir)
        suite.src = fstests.resolve_source(cfg.suites["fstests"])
        jobs, _ = fstests.plan(cfg)
        return s, guest, suite, jobs
    return make


def run_sim(s, suite, jobs):
    try:
        return {r.job.test.name: r for r in suite.run(s, jobs)}
    finally:
        s.stream.close()


def add_tests(tree, *names):
    for n in names:
        (tree / "tests" / n).write_text("#! /bin/bash\n_begin_fstest auto\n")
        (tree / "tests" / f"{n}.out").write_text("QA output created by x\nSilence is golden\n")


def test_sim_hung_task_is_the_tests_hang_and_the_run_resumes(sim, tree):
    add_tests(tree, "generic/001", "generic/002", "generic/003")
    s, guest, suite, jobs = sim({"generic/001": "fail", "generic/002": "hang", "generic/003": "pass"})
    got = run_sim(s, suite, jobs)
    assert guest.commands == [["generic/001", "generic/002", "generic/003"], ["generic/003"]]   # resumed after 002
    assert s.boots == 2
    assert {n: r.verdict.status for n, r in got.items()} == {"generic/001": "fail", "generic/002": "hang",
                                                           "generic/003": "pass"}
    hung = got["generic/002"]
    assert hung.verdict.message == "INFO: task hung in lkdtm_HUNG_TASK"
    assert (hung.dir / "evidence.txt").exists()
    assert "run fstests generic/002" in (hung.dir / "console.txt").read_text()
    assert "INFO: task init:44 blocked" in (hung.dir / "console.txt").read_text()
    assert "INFO: task" not in (got["generic/001"].dir / "console.txt").read_text()
    # 001's files were pulled while the guest still answered, and its diff is in the failure text
    assert (got["generic/001"].dir / "001.out.bad").exists()
    assert "+wrong" in got["generic/001"].detail
    assert got["generic/003"].verdict.findings == []        # the fresh guest's window is clean


def test_sim_watchdog_and_crash(sim, tree):
    add_tests(tree, "generic/001", "generic/002", "generic/003", "generic/004")
    s, guest, suite, jobs = sim({"generic/001": "stall", "generic/002": "notrun", "generic/003": "panic",
                                 "generic/004": "pass"},
                                timeouts=[fstests.FstestsTimeout(tests=["generic/001"], seconds=1)])
    got = run_sim(s, suite, jobs)
    assert guest.commands == [["generic/001", "generic/002", "generic/003", "generic/004"],
                              ["generic/002", "generic/003", "generic/004"], ["generic/004"]]
    v = got["generic/001"].verdict
    assert (v.status, v.message) == ("hang", "fstests watchdog: generic/001 ran past 1 s")
    assert got["generic/002"].verdict.status == "skip"
    assert got["generic/003"].verdict.status == "crash"
    assert got["generic/004"].verdict.status == "pass"
    assert s.boots == 3


def test_sim_qemu_killed_under_a_test_is_a_crash(sim, tree):
    """QEMU killed mid-test (no panic on the console): Guest.run sees the channel close without an
    exit status; that test is a crash, not an ssh error, and the run resumes on a fresh guest."""
    add_tests(tree, "generic/001", "generic/002")
    s, guest, suite, jobs = sim({"generic/001": "killed", "generic/002": "pass"})
    got = run_sim(s, suite, jobs)
    v = got["generic/001"].verdict
    assert (v.status, v.message) == ("crash", "QEMU exited during the job (the guest panicked or was killed)")
    assert got["generic/002"].verdict.status == "pass"
    assert guest.commands == [["generic/001", "generic/002"], ["generic/002"]]


def test_sim_dead_guests_last_words_are_drained_into_its_window(sim, tree):
    """The panic a dying guest wrote is still in the console tail when ssh notices: it is drained
    into console.log, found in the test's window and titles the crash."""
    add_tests(tree, "generic/001", "generic/002")
    s, guest, suite, jobs = sim({"generic/001": "panic-in-flight", "generic/002": "pass"})
    got = run_sim(s, suite, jobs)
    v = got["generic/001"].verdict
    assert (v.status, v.message) == ("crash", "kernel panic: sysrq triggered crash")
    assert "Kernel panic - not syncing: sysrq triggered crash" in (got["generic/001"].dir / "console.txt").read_text()


def test_sim_windows_are_copied_from_their_offset_with_console_lines_kept(sim, tree):
    """Each test's console.txt carries console.log's own line numbers. Boot output with a lone
    carriage return (a progress line) before the window must not shift them: the window is copied
    from the byte offset where it opened, lines counted as the console stream counts them (\n)."""
    add_tests(tree, "generic/001", "generic/002")
    s, guest, suite, jobs = sim({"generic/001": "pass", "generic/002": "fail"})
    s.stream.write("[    1.000000] boot\nfsck 10%\rfsck 50%\rfsck 100%\n[    2.000000] ready\n")
    got = run_sim(s, suite, jobs)
    log = (s.run_dir / "console.log").read_bytes().split(b"\n")
    for name in ("generic/001", "generic/002"):
        window = console_window(got[name].dir / "console.txt")
        assert window, name
        for no, text in window:
            assert log[no - 1].decode() == text, (name, no)
    assert "run fstests generic/002" in window[0][1]


# ---------------------------------------------------------------- captured trouble: hang, crash, watchdog

def console_window(path: Path) -> list[tuple[int, str]]:
    """A job's console.txt (`%7d  line`, console.log line numbers) -> [(line, text)]."""
    return [(int(ln[:7]), ln[9:]) for ln in path.read_text().splitlines()]


def test_real_hung_task_during_a_test_is_that_tests_hang():
    """selftest/900 froze the test fs and wrote to it (e2e); the hung-task detector fired 12 s in."""
    d = DATA / "hang-ext4_4k"
    lines = console_window(d / "console-007.txt") + console_window(d / "console.txt")
    starts = fstests.test_starts(lines)
    assert [t for _, t in starts] == ["selftest/007", "selftest/900"]
    w = fstests.windows(starts, lines[0][0], lines[-1][0])
    found = analyze("\n".join(t for _, t in lines) + "\n")
    # analyze() numbers lines from 1: move them onto console.log's numbering
    found = [dataclasses_replace(f, line=lines[f.line - 1][0]) for f in found]
    assert [f.title for f in found] == ["INFO: task hung in mnt_want_write"]
    assert fstests.findings_in(found, w["selftest/007"]) == []
    mine = fstests.findings_in(found, w["selftest/900"])
    v = fstests.judge_stopped(mine, Trouble("hang", f"{mine[0].title}"), seconds=14.5)
    assert (v.status, v.message) == ("hang", "INFO: task hung in mnt_want_write")
    assert "kernel: INFO: task hung in mnt_want_write (console.log line 834)" in fstests.failure_detail(None, v)
    # the partial run left: 007's result (result.xml is rewritten before each test), 900's name only
    names = ["selftest/007", "selftest/900"]
    assert [c.name for c in fstests.parse_xunit((d / "result.xml").read_text())] == ["selftest/007"]
    assert set(fstests.parse_check_output((d / "check.stdout").read_text(), names)) == {"selftest/007"}


def test_real_crash_and_watchdog_windows():
    d = DATA / "crash-ext4_4k"
    lines = console_window(d / "console.txt")
    found = [dataclasses_replace(f, line=lines[f.line - 1][0]) for f in analyze("\n".join(t for _, t in lines) + "\n")]
    assert [f.kind for f in found] == ["crash"]
    v = fstests.judge_stopped(found, Trouble("crash", "QEMU exited during the test"), seconds=4)
    assert v.status == "crash" and "sysrq triggered crash" in v.message
    names = ["generic/363", "selftest/001", "selftest/002", "selftest/004", "selftest/900", "selftest/003",
             "selftest/006", "selftest/005", "selftest/007"]
    got = fstests.parse_check_output((d / "check.stdout").read_text(), names)
    assert {n: c.status for n, c in got.items()} == {"generic/363": "pass", "selftest/001": "pass",
                                                     "selftest/002": "fail", "selftest/003": "fail",
                                                     "selftest/004": "notrun"}     # 005 never printed a status
    assert {c.name for c in fstests.parse_xunit((d / "result.xml").read_text())} == set(got)
    w = DATA / "watchdog-ext4_4k"
    wl = console_window(w / "console.txt")
    assert fstests.test_starts(wl) == [(566, "selftest/006")]
    assert analyze("\n".join(t for _, t in wl) + "\n") == []           # a sleeping test: nothing on the console
    v = fstests.judge_stopped([], Trouble("hang", "fstests watchdog: selftest/006 ran past 60 s"), seconds=62)
    assert (v.status, v.message) == ("hang", "fstests watchdog: selftest/006 ran past 60 s")


def test_real_generic_363_results():
    for variant, secs in (("ext4_4k", 175.0), ("xfs_4k", 186.0)):
        d = DATA / f"generic-363-{variant}"
        (c,) = fstests.parse_xunit((d / "result.xml").read_text())
        assert (c.name, c.status, c.seconds) == ("generic/363", "pass", secs)
        assert fstests.parse_check_output((d / "check.stdout").read_text(), ["generic/363"])["generic/363"].seconds == secs
        lines = console_window(d / "console.txt")
        assert [t for _, t in fstests.test_starts(lines)] == ["generic/363"]
        assert fstests.judge_reported(c, []).status == "pass"
        assert "All 100000 operations completed A-OK!" in (d / "363.full").read_text()
    assert fstests.parse_check_time((DATA / "generic-363-xfs_4k" / "check.time").read_text())["generic/363"] == 186
