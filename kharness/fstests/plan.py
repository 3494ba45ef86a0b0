"""fstests selectors x variants x iterations -> Jobs, one per fstests test; expunges.

Groups are expanded the way ./check expands them, from fstests' own group lists:

    tests/<dir>/group.list   what ./check reads; fstests' `make` writes it with tools/mkgroupfile
                             (from each test's `_begin_fstest GROUPS` line). A git checkout has
                             none until `make` runs, so the planner runs that same tools/mkgroupfile
                             on the host (bash, grep, sed, sort: no build, no devices, no root),
                             which prints what `make` will write into the image.
    dirs                     check's SRC_GROUPS (read from the tree's ./check: "generic") and the
                             FSTYP's own directory (ext2 and ext3 use ext4's), as get_group_list does
    order                    sorted by path and deduplicated, as check sorts its list: the jobs are
                             planned in the order ./check will run them

Why not `./check -n` itself at plan time: it is not a dry run of the list alone. It needs a built
tree (it stops with "fsstress not found or executable" without ltp/fsstress), root, TEST_DEV as a
block device holding FSTYP (init_rc mounts it) and, with SCRATCH_DEV set, it mkfs's and mounts the
scratch device before it prints anything; in the guest it takes 12 s (-g zero) to 114 s (-g auto)
under TCG. The planner runs before anything is built or booted, so ./check -n is the oracle the
unit tests compare with instead (tests/data/fstests/check-n/: real output from the guest).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import ui
from ..config import check_job_count, select_variants
from ..errors import UserError
from ..model import Job
from .expunges import describe_kernel, for_variant, kernel_dirs, kernel_key, load as load_expunges
from .config import FstestsConfig, fstests_config, parse_selector, section_name
from .source import Unavailable, plan_source

SUITE = "fstests"
_BEGIN_RE = re.compile(r"^_begin_fstest\b(.*)$", re.M)
_NAME_RE = re.compile(r"\d{3}(?:-?[A-Za-z0-9-]*)")       # common/test_names: VALID_TEST_NAME
_SRC_GROUPS_RE = re.compile(r'^SRC_GROUPS="([^"]*)"', re.M)


@dataclass(frozen=True)
class FstestsTest:
    """One fstests test as a Job's test (model.Test)."""
    name: str                           # generic/363 (or "-g zero" when the group could not be expanded)
    timeout: int = 900
    expect: str = "pass"


def is_fstests(job) -> bool:
    return isinstance(job.test, FstestsTest)


# The harness's policy, not fstests' (./check runs xfs/131 on ext4 when it is named: see
# tests/data/fstests/check-n/ext4_4k.mixed.stdout): a test named from another filesystem's
# directory is not applicable to this variant. Group expansion never looks at this list.
FS_DIRS = frozenset({"9p", "afs", "bcachefs", "btrfs", "ceph", "cifs", "exfat", "ext2", "ext3", "ext4", "f2fs",
                     "fuse", "gfs2", "glusterfs", "nfs", "ocfs2", "overlay", "pvfs2", "tmpfs", "ubifs", "udf",
                     "virtiofs", "xfs", "zonefs"})


def src_groups(tree: Path) -> list[str]:
    """check's SRC_GROUPS: the directories every FSTYP draws groups from ("generic"; older trees
    also "shared")."""
    try:
        m = _SRC_GROUPS_RE.search((tree / "check").read_text(errors="replace"))
    except OSError:
        m = None
    return m.group(1).split() if m else ["generic"]


def test_dirs(tree: Path, fstype: str) -> list[str]:
    """The tests/ subdirectories ./check draws groups from for this fstype (get_group_list)."""
    dirs = src_groups(tree) + ["ext4" if fstype in ("ext2", "ext3") else fstype]
    return [d for d in dict.fromkeys(dirs) if (tree / "tests" / d).is_dir()]


def parse_group_list(text: str) -> dict[str, set[str]]:
    """group.list (or the old `group` file) as check's get_sub_group_list reads it: '#' starts a
    comment, then a test name and its groups."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and _NAME_RE.fullmatch(fields[0]):
            out[fields[0]] = set(fields[1:])
    return out


def test_groups(tree: Path, d: str) -> dict[str, set[str]]:
    """{'363': {'rw', 'auto'}} for tests/<d>, from, in this order:
    1. fstests' tools/mkgroupfile, run in tests/<d> as `make` runs it (its output is what the
       image's group.list will be; the tree is not written to);
    2. tests/<d>/group.list, when there is no mkgroupfile or it failed (a tree built elsewhere);
    3. the `group` file fstests kept by hand before group.list existed (check read that file);
    4. the fallback: the `_begin_fstest` lines of the tests, read here (with a warning), for a tree
       none of the above works for. It is what mkgroupfile does, minus its checks."""
    base = tree / "tests" / d
    if not base.is_dir():
        return {}
    why = "no tools/mkgroupfile, group.list or group file"
    tool = tree / "tools" / "mkgroupfile"
    if tool.is_file():
        try:
            r = subprocess.run(["bash", "../../tools/mkgroupfile", "-"], cwd=base, capture_output=True, text=True,
                               timeout=120, errors="replace")
            if r.returncode == 0:
                return parse_group_list(r.stdout)
            why = f"tools/mkgroupfile failed: {(r.stderr or r.stdout).strip().splitlines()[-1:] or ['no output']}"
        except (OSError, subprocess.SubprocessError) as e:
            why = f"tools/mkgroupfile could not run: {e}"
    for fname in ("group.list", "group"):
        if (base / fname).is_file():
            if out := parse_group_list((base / fname).read_text(errors="replace")):
                return out
    ui.warn(f"fstests: {base}: groups read from the tests' _begin_fstest lines ({why})")
    out = {}
    for p in sorted(base.iterdir()):
        if not _NAME_RE.fullmatch(p.name) or not p.is_file():
            continue
        try:
            head = p.read_text(errors="replace")[:8192]
        except OSError:
            continue
        m = _BEGIN_RE.search(head)
        out[p.name] = set(m.group(1).split()) if m else set()
    return out


def _check_order(names) -> list[str]:
    """check: `sort -n $tmp.list | uniq` over tests/<dir>/<name> (no numeric key: byte order)."""
    return sorted(dict.fromkeys(names), key=lambda t: f"tests/{t}".encode())


def expand(tree: Path, selectors: list[str], fstype: str,
           groups: dict[str, dict[str, set[str]]] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Selectors -> (tests to run, in ./check's order; [(test, why not applicable)]).
    An unknown test or group is a UserError. `groups` caches test_groups() across calls."""
    dirs = test_dirs(tree, fstype)
    cache_ = {} if groups is None else groups
    tests: list[str] = []
    na: list[tuple[str, str]] = []

    def groups_of(d: str) -> dict[str, set[str]]:
        if d not in cache_:
            cache_[d] = test_groups(tree, d)
        return cache_[d]

    for s in selectors:
        kind, name = parse_selector(s)
        if kind == "test":
            d, num = name.split("/", 1)
            if not (tree / "tests" / d / num).is_file():
                raise UserError(f"fstests.tests: {name}: no such test in {tree / 'tests'}")
            if num not in groups_of(d):
                raise UserError(f"fstests.tests: {name} is not in tests/{d}'s group list (no _begin_fstest line?); "
                                "./check would ignore it as an unknown test")
            if d in FS_DIRS and d not in dirs:
                na.append((name, f"{name} is a {d} test; this variant is {fstype}"))
            else:
                tests.append(name)
            continue
        sub, _, g = name.rpartition("/")
        if sub and not (tree / "tests" / sub).is_dir():
            raise UserError(f"fstests.tests: group {name!r}: there is no {tree / 'tests' / sub}")
        found = [f"{d}/{t}" for d in ([sub] if sub else dirs) for t, gs in groups_of(d).items()
                 if g in gs or g == "all"]
        if not found:
            if sub:
                raise UserError(f"fstests.tests: group {g!r} is empty or not defined in {tree / 'tests' / sub}")
            # Defined for another filesystem only: nothing to run on this variant (./check would stop).
            every = [p.name for p in sorted((tree / "tests").iterdir()) if p.is_dir()] \
                if (tree / "tests").is_dir() else []
            if not any(g in gs for d in every for gs in groups_of(d).values()):
                raise UserError(f"fstests.tests: group {g!r} is empty or not defined in {tree / 'tests'}")
        tests += found
    return _check_order(tests), na


def expunged(fst: FstestsConfig, test: str, variant: str) -> str | None:
    """The config's fstests.expunge for this test on this variant (it wins over expunge files)."""
    for e in fst.expunge:
        if test in e.tests and (not e.variants or variant in e.variants):
            return f"expunged in the config{': ' + e.reason if e.reason else ''}"
    return None


def plan(cfg, only: list[str] | None = None, variants: list[str] | None = None,
         repeat: int | None = None) -> tuple[list, list]:
    """fstests Jobs in run order (variant, iteration, test) and the (variant, test, reason) not applicable.
    only=None: the config's fstests.tests; ['fstests']: the same; otherwise these selectors."""
    fst = fstests_config(cfg)
    selectors = list(fst.tests) if only is None else [s for n in only for s in (fst.tests if n == "fstests" else [n])]
    if not selectors:
        return [], []
    vs = select_variants(cfg, variants)
    if not variants and fst.variants:
        vs = [v for v in cfg.variants if v.name in fst.variants]
    if not vs:
        raise UserError(f"{cfg.path}: variants: the config lists no variants for fstests to run on")
    n = repeat or cfg.repeat
    try:
        src = plan_source(fst)
    except Unavailable:
        src = None
    table = load_expunges()
    kernel = getattr(cfg, "kernel", None)
    kkey = kernel_key(kernel) if table else None
    if table and not kkey and (dirs := kernel_dirs(table)):
        ui.warn(f"fstests: cannot tell the kernel's major.minor from {describe_kernel(kernel)}; "
                f"only expunges/all/ applies (not {', '.join(f'expunges/{d}/' for d in dirs)})")
    groups: dict[str, dict[str, set[str]]] = {}
    jobs, skipped = [], []
    planned = 0
    for v in vs:
        if src:
            try:
                names, na = expand(src.path, selectors, v.fstype, groups)
            except UserError as e:      # a git source is read from a checkout that is gone after the plan
                if src.origin.startswith("git: ") and str(src.path) in str(e):
                    label = src.origin.removeprefix("git: ")
                    raise UserError(str(e).replace(f"{src.path}/tests", f"{label}'s tests/")
                                    .replace(str(src.path), label)) from None
                raise
        else:   # jobs that will report why fstests is unavailable
            names, na = [s.strip() for s in selectors], []
        skipped += [(v, FstestsTest(t, fst.test_timeout), why) for t, why in na]
        planned += len(names) * n
        check_job_count(cfg, planned, f"fstests: {len(selectors)} selector(s) on {len(vs)} variant(s) x repeat {n}")
        files = for_variant(table, kkey, v.fstype, section_name(v.name))
        for i in range(1, n + 1):
            for t in names:
                why = expunged(fst, t, v.name) or (files[t].why() if t in files else None)
                if why:
                    if i == 1:
                        skipped.append((v, FstestsTest(t, fst.test_timeout), why))
                    continue
                jobs.append(Job(SUITE, v, FstestsTest(t, fst.test_timeout), i, n))
    return jobs, skipped
