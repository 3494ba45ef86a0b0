"""fstests selectors x variants x iterations -> Jobs, one per fstests test."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..config import select_variants
from ..errors import UserError
from ..model import Job
from .config import FstestsConfig, fstests_config, parse_selector
from .source import Unavailable, resolve_source

SUITE = "fstests"
_BEGIN_RE = re.compile(r"^_begin_fstest\b(.*)$", re.M)

@dataclass(frozen=True)
class FstestsTest:
    """One fstests test as a Job's test (model.Test)."""
    name: str                           # generic/363 (or "-g zero" when the group could not be expanded)
    timeout: int = 900
    expect: str = "pass"


def is_fstests(job) -> bool:
    return isinstance(job.test, FstestsTest)


# tests/ subdirectories that belong to one filesystem (others, like generic/ and selftest/, run anywhere).
FS_DIRS = frozenset({"9p", "afs", "bcachefs", "btrfs", "ceph", "cifs", "exfat", "ext2", "ext3", "ext4", "f2fs",
                     "fuse", "gfs2", "glusterfs", "nfs", "ocfs2", "overlay", "pvfs2", "tmpfs", "ubifs", "udf",
                     "virtiofs", "xfs", "zonefs"})


def test_dirs(tree: Path, fstype: str) -> list[str]:
    """The tests/ subdirectories ./check draws groups from for this fstype."""
    dirs = ["generic", "shared", "ext4" if fstype in ("ext2", "ext3") else fstype]
    return [d for d in dict.fromkeys(dirs) if (tree / "tests" / d).is_dir()]


def test_groups(tree: Path, d: str) -> dict[str, set[str]]:
    """{'363': {'rw', 'auto'}} for tests/<d>: from group.list / the old `group` file, else `_begin_fstest`."""
    base = tree / "tests" / d
    out: dict[str, set[str]] = {}
    for fname in ("group.list", "group"):
        gf = base / fname
        if gf.is_file():
            for line in gf.read_text(errors="replace").splitlines():
                fields = line.split("#", 1)[0].split()
                if fields and re.fullmatch(r"\d{3}(?:-?[A-Za-z0-9-]*)", fields[0]):
                    out[fields[0]] = set(fields[1:])
            if out:
                return out
    for p in sorted(base.iterdir()) if base.is_dir() else []:
        if not re.fullmatch(r"\d{3}(?:-?[A-Za-z0-9-]*)", p.name) or not p.is_file():
            continue
        try:
            head = p.read_text(errors="replace")[:8192]
        except OSError:
            continue
        m = _BEGIN_RE.search(head)
        out[p.name] = set(m.group(1).split()) if m else set()
    return out


def expand(tree: Path, selectors: list[str], fstype: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Selectors -> (tests to run in order, [(test, why not applicable)]). Unknown test or group: UserError."""
    dirs = test_dirs(tree, fstype)
    tests: list[str] = []
    na: list[tuple[str, str]] = []
    cache_: dict[str, dict[str, set[str]]] = {}

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
            if d in FS_DIRS and d not in dirs:
                na.append((name, f"{name} is a {d} test; this variant is {fstype}"))
            elif name not in tests:
                tests.append(name)
            continue
        sub, _, g = name.rpartition("/")
        found = []
        for d in ([sub] if sub else dirs):
            found += [f"{d}/{t}" for t, gs in sorted(groups_of(d).items()) if g in gs or g == "all"]
        if not found and not sub:
            known = any(g in gs for d in ("generic", "shared", "ext4", "xfs", "btrfs")
                        for gs in groups_of(d).values()) if (tree / "tests").is_dir() else False
            if not known:
                raise UserError(f"fstests.tests: group {g!r} is empty or not defined in {tree / 'tests'}")
        tests += [t for t in found if t not in tests]
    return tests, na


def expunged(fst: FstestsConfig, test: str, variant: str) -> str | None:
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
        src = resolve_source(fst)
    except Unavailable:
        src = None
    jobs, skipped = [], []
    for v in vs:
        if src:
            names, na = expand(src.path, selectors, v.fstype)
        else:   # jobs that will report why fstests is unavailable
            names, na = [s.strip() for s in selectors], []
        skipped += [(v, FstestsTest(t, fst.test_timeout), why) for t, why in na]
        for i in range(1, n + 1):
            for t in names:
                why = expunged(fst, t, v.name)
                if why:
                    if i == 1:
                        skipped.append((v, FstestsTest(t, fst.test_timeout), why))
                    continue
                jobs.append(Job(SUITE, v, FstestsTest(t, fst.test_timeout), i, n))
    return jobs, skipped


