"""fstests in the guest: build it into the image, run ./check per variant, merge its results.

    config      FstestsConfig (the `fstests:` section of a run config) and its checks
    plan        selectors (generic/363, "-g zero", "zero") x variants x iterations -> Jobs,
                one Job per fstests test (classname = variant, name = generic/363)
    source      a local tree (`source:`, used as it is) or a git URL + ref (`git:`, `ref:`,
                cloned into the cache); keyed by tree content / git tree hash
    image       the base image + build deps + the tree copied to /opt/fstests and built
                with `make` inside the rootfs (chroot), test users added; cached by
                (base recipe, fstests key, build recipe)
    run         per variant: mkfs+mount TEST_DEV (the runner's Session.prepare), upload a
                local.config holding only that variant's section, `./check -R xunit -s SECTION
                TESTS` with the console watched. fstests writes `run fstests generic/363 at ...`
                to /dev/kmsg when a test starts: those lines split the console into per-test
                windows. A hang/crash finding or the per-test watchdog (from check.time history,
                else fstests.test_timeout) stops the run: evidence (sysrq-w), results pulled
                (result.xml is rewritten before every test, so it holds every finished test),
                the VM is killed, and a fresh guest resumes with the next test.
    results     results/SECTION/{result.xml,check.log} and each test's .out.bad/.full/.dmesg
                pulled over SFTP into the run directory; each testcase judged by combining
                fstests' status (pass / fail / notrun -> skip) with the console findings in its
                window (verdict.judge decides precedence: a pass with a hung task is a hang).

When fstests is unavailable (no source configured, clone failed, build broke) every
fstests job is an `error` whose message names the config key to set; the rest of the
run goes on.

This module imports config, image, catalogue and runner lazily: config.py imports
FstestsConfig from here.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import shlex
import shutil
import stat
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import cache, proc, ui
from .errors import InfraError, UserError
from .guest import Guest
from .model import Finding, Job, JobResult, Outcome, Trouble, Verdict
from .verdict import judge

GUEST_FSTESTS = "/opt/fstests"
TEST_DEV, SCRATCH_DEV = "/dev/vdb", "/dev/vdc"
TEST_DIR, SCRATCH_MNT = "/mnt/test", "/mnt/scratch"
TEMPLATES = Path(__file__).resolve().parent / "templates"
BUILD_RECIPE_VERSION = "1"       # bump when customize() changes what it installs
# Debian packages fstests needs to build (field notes) and a few it calls at run time.
BUILD_DEPS = ("acl", "attr", "automake", "bc", "gawk", "gcc", "make", "libacl1-dev", "libaio-dev",
              "libtool", "libtool-bin", "liburing-dev", "uuid-dev", "xfsprogs", "xfslibs-dev",
              "e2fsprogs", "fio", "psmisc", "pkgconf")
RUNTIME_DEPS = ("perl", "uuid-runtime")
TEST_USERS = ("fsgqa", "fsgqa2", "123456-fsgqa")
WATCHDOG_FACTOR, WATCHDOG_SLACK = 3, 300      # history t -> max(3t, t + 300) seconds
MAX_PULL_BYTES = 16 << 20                     # per file pulled from the guest
DIFF_HEAD = 30                                # lines of the .out.bad diff in the JUnit failure text
ENV_SOURCE = "KHARNESS_FSTESTS_SRC"           # a path or git URL; overrides fstests.source/git
NO_SOURCE = ("no fstests source configured: set `fstests.source: PATH` (an fstests checkout) "
             f"or `fstests.git: URL` (+ `fstests.ref:`) in the config, or ${ENV_SOURCE}")

_TEST_RE = re.compile(r"^([a-z0-9_]+)/(\d{3}(?:-?[A-Za-z0-9-]*))$")
_GROUP_RE = re.compile(r"^(?:[a-z0-9_]+/)?[A-Za-z0-9_-]+$")
_MARK_RE = re.compile(r"run fstests (\S+) at \d{4}-\d\d-\d\d")
_BEGIN_RE = re.compile(r"^_begin_fstest\b(.*)$", re.M)


# ====================================================================== config

@dataclass
class FstestsExpunge:
    """Tests not to run, on some variants (default: all), with the reason shown as the skip."""
    tests: list[str]
    variants: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class FstestsTimeout:
    """A watchdog for some tests that wins over check.time history and fstests.test_timeout."""
    tests: list[str]
    seconds: int


@dataclass
class FstestsConfig:
    """The `fstests:` section of a run config."""
    source: str | None = None           # a local fstests tree, used as it is (local changes included)
    git: str | None = None              # or a git URL / path, cloned into the cache
    ref: str = "HEAD"                   # branch, tag or commit in `git`
    tests: list[str] = field(default_factory=list)      # generic/363, groups: "-g zero" or "zero"
    variants: list[str] = field(default_factory=list)   # variants to run on (default: all)
    expunge: list[FstestsExpunge] = field(default_factory=list)
    test_timeout: int = 900             # watchdog for a test with no check.time history (seconds)
    timeouts: list[FstestsTimeout] = field(default_factory=list)   # per-test watchdogs
    jobs: int = 0                       # make -j for the build (0: all cores)


def check_config(cfg, path) -> None:
    """Checks of the `fstests:` section against the rest of the run config (config._check calls this)."""
    f: FstestsConfig = cfg.fstests
    if f.source and f.git:
        raise UserError(f"{path}: fstests: give one source, `fstests.source: PATH` or `fstests.git: URL`, not both")
    for s in f.tests:
        parse_selector(s, f"{path}: fstests.tests")
    names = {v.name for v in cfg.variants}
    for n in f.variants:
        if n not in names:
            raise UserError(f"{path}: fstests.variants: no variant named {n!r} (variants: {', '.join(sorted(names))})")
    for i, e in enumerate(f.expunge):
        for t in e.tests:
            if not _TEST_RE.match(t):
                raise UserError(f"{path}: fstests.expunge[{i}].tests: {t!r} is not a test name like generic/363")
        for n in e.variants:
            if n not in names:
                raise UserError(f"{path}: fstests.expunge[{i}].variants: no variant named {n!r}")
    if f.test_timeout < 60:
        raise UserError(f"{path}: fstests.test_timeout: {f.test_timeout} s is too short (at least 60)")
    for i, t in enumerate(f.timeouts):
        if t.seconds < 10:
            raise UserError(f"{path}: fstests.timeouts[{i}].seconds: {t.seconds} s is too short (at least 10)")
        for name in t.tests:
            if not _TEST_RE.match(name):
                raise UserError(f"{path}: fstests.timeouts[{i}].tests: {name!r} is not a test name like generic/363")
    seen: dict[str, str] = {}
    for v in cfg.variants:
        for label, value in (("mkfs", v.mkfs), ("mount", v.mount)):
            # fstests' parse_config_section() evals each line inside double quotes: $, ` and backslash would be
            # expanded (run) in the guest, and # starts a comment there (cuts the option short).
            if any(c in value for c in "\"'\n$`\\#"):
                raise UserError(f"{path}: variants[{v.name}].{label}: fstests' local.config cannot hold quotes, "
                                f"$, `, \\, # or newlines in an option value ({value!r})")
        s = section_name(v.name)
        if s in seen:
            raise UserError(f"{path}: variants {seen[s]!r} and {v.name!r} give the same fstests section name {s!r}")
        seen[s] = v.name


# ====================================================================== selection and planning

@dataclass(frozen=True)
class FstestsTest:
    """One fstests test as a Job's `test` (duck-types catalogue.Reproducer where the runner reads it)."""
    name: str                           # generic/363 (or "-g zero" when the group could not be expanded)
    timeout: int = 900
    description: str = "fstests"
    expect: str = "pass"
    source: str | None = None
    script: str | None = None
    args: tuple[str, ...] = ()
    filesystems: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()


def is_fstests(job) -> bool:
    return isinstance(job.test, FstestsTest)


def is_test_name(name: str) -> bool:
    return bool(_TEST_RE.match(name.strip()))


def is_selector(name: str) -> bool:
    """Names on the command line (--only, repro) that mean fstests rather than a reproducer."""
    n = name.strip()
    return n == "fstests" or n.startswith("-g ") or is_test_name(n)


def parse_selector(s: str, where: str = "fstests") -> tuple[str, str]:
    """'generic/363' -> ('test', 'generic/363'); '-g zero' or 'zero' (or 'xfs/quick') -> ('group', ...)."""
    t = s.strip()
    if t.startswith("-g"):
        g = t[2:].strip()
        if not g or not _GROUP_RE.match(g):
            raise UserError(f"{where}: {s!r}: expected a group name after -g, e.g. '-g zero'")
        return "group", g
    if _TEST_RE.match(t):
        return "test", t
    if _GROUP_RE.match(t):
        return "group", t
    raise UserError(f"{where}: {s!r} is neither a test (generic/363) nor a group (-g zero)")


def split_only(only: list[str] | None) -> tuple[list[str] | None, list[str] | None]:
    """--only names -> (reproducer names, fstests selectors); (None, None) when --only is not given.
    'fstests' selects every configured fstests test."""
    if not only:
        return None, None
    repro = [n for n in only if not is_selector(n)]
    fst = [n for n in only if is_selector(n)]
    return repro, fst


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
    from .runner import Job, select_variants
    fst: FstestsConfig = getattr(cfg, "fstests", None) or FstestsConfig()
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
                jobs.append(Job(v, FstestsTest(t, fst.test_timeout), i, n))
    return jobs, skipped


# ====================================================================== source

class Unavailable(Exception):
    """fstests cannot be had; the message names the config key to set."""


@dataclass(frozen=True)
class SourceTree:
    path: Path                      # a tree on the host (tests/ is read from it for groups)
    key: str                        # what the built image is keyed by (content of the tree)
    commit: str                     # git commit (+ " with local changes"), or "not a git tree"
    origin: str                     # "source: PATH" | "git: URL @ REF"
    files: tuple[str, ...] | None = field(default=None, repr=False)   # relative paths to copy (None: all but .git)


_resolved: dict[tuple, SourceTree] = {}


def resolve_source(fst: FstestsConfig | None, log: Path | None = None) -> SourceTree:
    """The fstests tree to build; raises Unavailable (naming the config key) when there is none.
    $KHARNESS_FSTESTS_SRC, when set, replaces the config's source (a URL: git with fstests.ref)."""
    fst = fst or FstestsConfig()
    if env := os.environ.get(ENV_SOURCE, "").strip():
        url = "://" in env or env.startswith("git@")
        fst = dataclasses.replace(fst, source=None if url else env, git=env if url else None)
    if not (fst.source or fst.git):
        raise Unavailable(NO_SOURCE)
    k = (fst.source, fst.git, fst.ref)
    if k not in _resolved:
        _resolved[k] = _local_source(fst.source) if fst.source else _git_source(fst.git, fst.ref, log)
    return _resolved[k]


def _config_path(p: str) -> Path:
    from .config import repo_path
    return repo_path(p)


def _looks_like_fstests(p: Path) -> bool:
    return (p / "check").is_file() and (p / "tests").is_dir() and (p / "common").is_dir()


def _local_source(source: str) -> SourceTree:
    path = _config_path(source).resolve()
    if not path.is_dir():
        raise Unavailable(f"fstests.source: {path} does not exist; set `fstests.source:` to an fstests checkout")
    if not _looks_like_fstests(path):
        raise Unavailable(f"fstests.source: {path} is not an fstests tree (no ./check, tests/, common/); "
                          "set `fstests.source:` to an fstests checkout")
    files = None
    commit = "not a git tree"
    if (path / ".git").exists():
        try:
            out = proc.capture(["git", "-C", str(path), "ls-files", "-z", "-c", "-o", "--exclude-standard"])
            files = tuple(sorted(f for f in set(out.split("\0")) if f and (path / f).exists()
                                 or (f and (path / f).is_symlink())))
            head = proc.capture(["git", "-C", str(path), "rev-parse", "HEAD"]).strip()
            dirty = proc.capture(["git", "-C", str(path), "status", "--porcelain"]).strip()
            commit = head + (" with local changes" if dirty else "")
        except (InfraError, OSError):
            files = None
    key = _tree_digest(path, files)
    origin = f"source: {path}" + (f" (${ENV_SOURCE})" if os.environ.get(ENV_SOURCE) else "")
    return SourceTree(path, key, commit, origin, files)


def _tree_digest(root: Path, files: tuple[str, ...] | None) -> str:
    """sha256 over (path, executable bit, content or link target) of the files to copy."""
    parts: list[str | bytes] = ["kharness-fstests-tree"]
    for rel in files if files is not None else _walk(root):
        p = root / rel
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            parts += [rel, "link", os.readlink(p)]
        elif stat.S_ISREG(st.st_mode):
            parts += [rel, "x" if st.st_mode & 0o111 else "-", cache.file_digest(p)]
    return cache.digest(*parts)


def _walk(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for f in sorted(filenames):
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return out


def _git_source(url: str, ref: str, log: Path | None) -> SourceTree:
    u = url
    if "://" not in url and not url.startswith("git@"):
        u = str(_config_path(url))
    mirror = cache.cache_root() / "fstests" / "git" / (cache.digest(u)[:24] + ".git")
    logf = log or cache.cache_root() / "fstests" / "git.log"
    with cache.locked(f"fstests-git-{cache.digest(u)[:24]}"):
        if not (mirror / "HEAD").exists():
            shutil.rmtree(mirror, ignore_errors=True)
            mirror.parent.mkdir(parents=True, exist_ok=True)
            tmp = mirror.with_suffix(f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            rc = proc.run(["git", "clone", "--bare", "--quiet", u, str(tmp)], logf, check=False,
                          env={"GIT_TERMINAL_PROMPT": "0"})
            if rc != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise Unavailable(f"fstests.git: cannot clone {url} ({_last_line(logf)}); set `fstests.git:` to a "
                                  f"reachable repository or `fstests.source:` to a local checkout")
            os.rename(tmp, mirror)
        else:
            rc = proc.run(["git", "-C", str(mirror), "fetch", "--quiet", "--prune", "--tags", "origin",
                           "+refs/heads/*:refs/heads/*"], logf, check=False, env={"GIT_TERMINAL_PROMPT": "0"})
            if rc != 0:
                ui.warn(f"fstests.git: fetching {url} failed ({_last_line(logf)}); using the cached clone")
        try:
            commit = proc.capture(["git", "-C", str(mirror), "rev-parse", "--verify", "--quiet",
                                   f"{ref}^{{commit}}"]).strip()
            tree = proc.capture(["git", "-C", str(mirror), "rev-parse", f"{commit}^{{tree}}"]).strip()
        except InfraError:
            raise Unavailable(f"fstests.ref: {ref!r} is not a branch, tag or commit in {url}; set `fstests.ref:`")
        export = cache.cache_root() / "fstests" / "trees" / tree
        if not _looks_like_fstests(export):
            tmp = export.with_name(f".{tree}.{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            proc.run(["sh", "-c", f"git -C {shlex.quote(str(mirror))} archive {commit} | tar -x -C {shlex.quote(str(tmp))}"],
                     logf)
            shutil.rmtree(export, ignore_errors=True)
            os.rename(tmp, export)
            if not _looks_like_fstests(export):
                raise Unavailable(f"fstests.git: {url} @ {ref} is not an fstests tree (no ./check, tests/)")
    return SourceTree(export, cache.digest("git-tree", tree), commit, f"git: {url} @ {ref}", None)


def _last_line(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith(("$ ", "[exit "))]
    except OSError:
        return "no output"
    return lines[-1][:200] if lines else "no output"


# ====================================================================== image

def image_extra(src: SourceTree, jobs: int = 0):
    """What the base image gets for fstests (image.ImageExtra): build deps, the built tree, test users."""
    from .image import ImageExtra
    key = cache.digest("fstests-build", BUILD_RECIPE_VERSION, src.key)
    return ImageExtra(name="fstests", packages=BUILD_DEPS + RUNTIME_DEPS, key=key,
                      customize=lambda root, log, say: install_into(root, src, log, say, jobs))


def build_image(cfg, src: SourceTree, log: Path, progress=None):
    """The guest image with fstests built in: (ImageArtifact, cache_hit)."""
    from . import image
    fst = getattr(cfg, "fstests", None) or FstestsConfig()
    return image.build_image(cfg.image, log, progress=progress, extra=image_extra(src, fst.jobs))


def install_into(root: Path, src: SourceTree, log: Path, say: Callable[[str], None], jobs: int = 0) -> None:
    """Copy the tree to ROOT/opt/fstests, build it in a chroot (so the binaries link against the
    guest's libraries), add the test users fstests expects, record what was built."""
    t0 = time.monotonic()
    dest = root / GUEST_FSTESTS.lstrip("/")
    if dest.exists():
        shutil.rmtree(dest)
    say(f"fstests: copying {src.origin}")
    _copy_tree(src.path, dest, src.files)
    # A tree configured elsewhere: start from a clean configure inside the guest's userland.
    if (dest / "include" / "builddefs").exists():
        proc.run(["chroot", str(root), "/bin/sh", "-c", f"cd {GUEST_FSTESTS} && make realclean"], log, check=False)
    n = jobs or os.cpu_count() or 1
    say(f"fstests: make -j{n} in the guest root (chroot)")
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    try:
        proc.run(["nice", "-n", "10", "chroot", str(root), "/bin/sh", "-c",
                  f"cd {GUEST_FSTESTS} && make -j{n}"], log, env=env)
    except InfraError:
        raise InfraError(f"building fstests ({src.origin}) in the guest root failed; log: {log}") from None
    if not (dest / "ltp" / "fsx").exists():
        raise InfraError(f"building fstests ({src.origin}) produced no ltp/fsx; log: {log}")
    say("fstests: adding test users " + ", ".join(TEST_USERS))
    for user in TEST_USERS:
        argv = ["chroot", str(root), "useradd", "-m", user]
        if proc.run(argv, log, check=False, env=env) != 0:
            # shadow's useradd refuses a name starting with digits unless told.
            proc.run(["chroot", str(root), "useradd", "--badname", "-m", user], log, env=env)
    proc.run(["chroot", str(root), "sh", "-c", "getent group fsgqa >/dev/null || groupadd fsgqa"], log, env=env)
    meta = {"origin": src.origin, "commit": src.commit, "key": src.key, "build_recipe": BUILD_RECIPE_VERSION,
            "build_seconds": round(time.monotonic() - t0, 1)}
    (dest / ".kharness-fstests.json").write_text(json.dumps(meta, indent=2) + "\n")
    (root.parent / "fstests.json").write_text(json.dumps(meta, indent=2) + "\n")   # beside rootfs.img


def _copy_tree(src: Path, dest: Path, files: tuple[str, ...] | None) -> None:
    if files is None:
        shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        return
    dest.mkdir(parents=True)
    for rel in files:
        s, d = src / rel, dest / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_symlink():
            os.symlink(os.readlink(s), d)
        elif s.is_file():
            shutil.copy2(s, d)


def image_meta(image_art) -> dict:
    try:
        return json.loads((Path(image_art.path).parent / "fstests.json").read_text())
    except (OSError, ValueError):
        return {}


# ====================================================================== local.config

def section_name(variant_name: str) -> str:
    """fstests section names allow [A-Za-z0-9_] only."""
    return re.sub(r"[^A-Za-z0-9_]", "_", variant_name)


def render_local_config(variants, origin: str = "") -> str:
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    sections = [{"name": section_name(v.name), "variant": v.name, "fstype": v.fstype,
                 "mkfs": v.mkfs.strip(), "mount": v.mount.strip()} for v in variants]
    return env.get_template("local.config.j2").render(
        sections=sections, origin=origin, test_dev=TEST_DEV, test_dir=TEST_DIR,
        scratch_dev=SCRATCH_DEV, scratch_mnt=SCRATCH_MNT)


# ====================================================================== fstests output (pure)

@dataclass
class CaseResult:
    """One <testcase> of fstests' result.xml (or a line of check's output when that is all there is)."""
    name: str                       # generic/363
    status: str                     # pass | fail | notrun
    seconds: float | None = None
    message: str = ""               # failure message or notrun reason
    system_out: str = ""            # fstests: the .full file of a failed test
    system_err: str = ""            # fstests: diff of the golden output and .out.bad
    kernel_log: str = ""            # fstests: the .dmesg of a failed test


def parse_xunit(text: str) -> list[CaseResult]:
    """fstests' result.xml -> CaseResults. fstests writes failure messages into attributes without
    escaping them, so a document ElementTree rejects is read case by case with a tolerant scan."""
    try:
        root = ET.fromstring(text)
        return [_case_from_element(tc) for tc in root.iter("testcase")]
    except ET.ParseError:
        return _parse_xunit_tolerant(text)


def _case_from_element(tc: ET.Element) -> CaseResult:
    name = tc.get("name", "")
    secs = _float(tc.get("time"))
    out = _trim(tc.findtext("system-out") or "")
    err = _trim(tc.findtext("system-err") or "")
    klog = _trim(tc.findtext("kernel-log") or "")
    if (f := tc.find("failure")) is not None or (f := tc.find("error")) is not None:
        return CaseResult(name, "fail", secs, f.get("message") or "failed", out, err, klog)
    if (s := tc.find("skipped")) is not None:
        return CaseResult(name, "notrun", secs, (s.get("message") or "").strip())
    return CaseResult(name, "pass", secs)


_TC_RE = re.compile(r"<testcase\b([^>]*?)(/>|>(.*?)</testcase>)", re.S)
_ATTR_RE = re.compile(r'(\w[\w:-]*)="([^"]*)"')


def _parse_xunit_tolerant(text: str) -> list[CaseResult]:
    out = []
    for m in _TC_RE.finditer(text):
        attrs = dict(_ATTR_RE.findall(m.group(1)))
        body = m.group(3) or ""
        secs = _float(attrs.get("time"))
        name = attrs.get("name", "")
        fm = re.search(r'<(failure|error)\b', body)
        if fm:
            # fstests writes <failure message="$_err_msg" type="TestFail" />: the message ends at ' type="'
            msg = (re.search(r'message="(.*?)"\s+type="[^"]*"\s*/?>', body[fm.start():], re.S)
                   or re.search(r'message="([^"]*)"', body[fm.start():]))
            out.append(CaseResult(name, "fail", secs, _unescape(msg.group(1)) if msg else "failed",
                                  _cdata(body, "system-out"), _cdata(body, "system-err"), _cdata(body, "kernel-log")))
        elif re.search(r"<skipped\b", body):
            sm = re.search(r'<skipped\s+message="(.*?)"\s*/>', body, re.S)
            out.append(CaseResult(name, "notrun", secs, _unescape(sm.group(1)).strip() if sm else ""))
        else:
            out.append(CaseResult(name, "pass", secs))
    return out


def _cdata(body: str, tag: str) -> str:
    m = re.search(rf"<{tag}>\s*<!\[CDATA\[(.*?)\]\]>\s*</{tag}>", body, re.S)
    return _trim(m.group(1).replace("]]]]><![CDATA[>", "]]>")) if m else ""


def _trim(text: str) -> str:
    """Drop the blank lines and indentation around a CDATA block, keep the first line's own indent."""
    return text.lstrip("\n").rstrip()


def _unescape(s: str) -> str:
    return (s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))


def _float(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def parse_check_output(text: str, tests: list[str]) -> dict[str, CaseResult]:
    """Statuses from check's own stdout: the fallback when result.xml could not be pulled."""
    known = set(tests)
    out: dict[str, CaseResult] = {}
    for line in text.splitlines():
        first = line.split(None, 1)
        if not first or first[0] not in known:
            continue
        name, rest = first[0], (first[1] if len(first) > 1 else "")
        if "[not run]" in rest:
            out[name] = CaseResult(name, "notrun", None, rest.split("[not run]", 1)[1].strip())
        elif "[failed" in rest or "- output mismatch" in rest or "_check_" in rest or "[expunged]" in rest:
            out[name] = CaseResult(name, "fail", None, rest.strip())
        elif m := re.search(r"(\d+)s\s*$", rest):
            out[name] = CaseResult(name, "pass", float(m.group(1)))
    return out


def check_output_of(text: str, test: str, tests: list[str]) -> str:
    """The lines check printed for one test (its status line and the diff head under it)."""
    lines, keep = [], False
    for line in text.splitlines():
        head = line.split(None, 1)[0] if line.strip() else ""
        if head in tests or line.startswith(("Ran:", "Not run:", "Failures:", "Passed all", "Failed ", "SECTION")):
            keep = head == test
        if keep:
            lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def parse_check_time(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2 and "/" in f[0]:
            try:
                out[f[0]] = float(f[1])
            except ValueError:
                pass
    return out


def format_check_time(times: dict[str, float]) -> str:
    return "".join(f"{k} {int(round(v))}\n" for k, v in sorted(times.items()))


def watchdog_for(test: str, history: dict[str, float], bound: int, fixed: dict[str, int] | None = None) -> int:
    """Seconds a test may run: fstests.timeouts when it names the test; else 3x its last passing
    time (at least that + 300 s) when fstests' check.time knows it; else fstests.test_timeout."""
    if fixed and test in fixed:
        return fixed[test]
    t = history.get(test)
    if t is None:
        return bound
    return int(max(WATCHDOG_FACTOR * t, t + WATCHDOG_SLACK))


def test_starts(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """console (line number, text) -> [(line, test)] for each `run fstests TEST at ...`."""
    out = []
    for no, text in lines:
        if m := _MARK_RE.search(text):
            out.append((no, m.group(1)))
    return out


def windows(starts: list[tuple[int, str]], first: int, last: int) -> dict[str, tuple[int, int]]:
    """Per-test console windows [a, b] (line numbers) from the start markers; the first test's window
    opens at `first` (check's set-up belongs to it), the last closes at `last`. A test started twice
    (check restarted) keeps its last window."""
    out: dict[str, tuple[int, int]] = {}
    for i, (line, test) in enumerate(starts):
        a = first if i == 0 else line
        b = starts[i + 1][0] - 1 if i + 1 < len(starts) else last
        out[test] = (a, max(a, b))
    return out


def findings_in(findings: list[Finding], window: tuple[int, int] | None) -> list[Finding]:
    if not window:
        return []
    a, b = window
    return [f for f in findings if a <= f.line <= b]


def combine(case: CaseResult | None, findings: list[Finding], *, warn_is_failure: bool = True,
            aborted: str | None = None, timed_out: bool = False, seconds: float = 0.0,
            watchdog: float | None = None) -> Verdict:
    """fstests' status + the console findings of the test's window -> Verdict (verdict.judge decides
    precedence: crash > hang > fail > warn > pass). notrun -> skip unless the kernel crashed or hung."""
    if case is None:            # the harness stopped the test: hang finding, crash, watchdog
        out = Outcome(None, seconds, timed_out=timed_out, aborted=aborted)
        return judge(out, findings, warn_is_failure=warn_is_failure, timeout=watchdog)
    if case.status == "notrun":
        if any(f.kind in ("crash", "hang") for f in findings):
            return judge(Outcome(0, seconds), findings, warn_is_failure=warn_is_failure)
        return Verdict("skip", f"fstests: not run: {case.message or 'no reason given'}", findings=findings)
    if case.status == "pass":
        return judge(Outcome(0, seconds), findings, warn_is_failure=warn_is_failure)
    v = judge(Outcome(1, seconds, stderr=case.message), findings, warn_is_failure=warn_is_failure)
    if v.status == "fail":
        v.message = f"fstests: {case.message or 'failed'}"
        if (w := next((f for f in findings if f.kind == "warn"), None)):
            v.message += f"; kernel: {w.title}"
    return v


def failure_detail(case: CaseResult | None, verdict: Verdict, golden: str | None = None,
                   out_bad: str | None = None, check_lines: str = "") -> str:
    """The JUnit failure text of an fstests test: fstests' message, the .out.bad diff head, the finding titles."""
    parts = []
    if case and case.status == "fail":
        parts.append(f"fstests: {case.message}")
        diff = case.system_err
        if not diff and golden is not None and out_bad is not None:
            diff = "".join(difflib.unified_diff(golden.splitlines(True), out_bad.splitlines(True),
                                                "golden .out", ".out.bad"))
        if diff:
            lines = diff.splitlines()
            more = f"\n[... {len(lines) - DIFF_HEAD} more lines; see the .out.bad in the job directory]" \
                if len(lines) > DIFF_HEAD else ""
            parts.append("--- .out.bad diff (head) ---\n" + "\n".join(lines[:DIFF_HEAD]) + more)
        elif check_lines.strip():
            parts.append("--- check output ---\n" + check_lines.rstrip())
    titles = [f"{f.title} (console.log line {f.line})" for f in verdict.findings]
    if titles:
        parts.append("kernel: " + "\n        ".join(titles))
    return "\n\n".join(parts)


# ====================================================================== the run

class ConsoleTail:
    """New complete lines of the run's console.log from a given line on, without re-reading it."""

    def __init__(self, path: Path, after_line: int, offset: int):
        self.path = path
        self.line = after_line
        self.offset = offset
        self._partial = b""

    def poll(self) -> list[tuple[int, str]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        if not data:
            return []
        self.offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        out = []
        for raw in complete:
            self.line += 1
            out.append((self.line, raw.decode("utf-8", "replace")))
        return out


def history_file(v) -> Path:
    tag = cache.digest(v.fstype, v.mkfs, v.mount)[:10]
    return cache.cache_root() / "fstests" / "check.time" / f"{section_name(v.name)}-{tag}"


def load_history(v) -> dict[str, float]:
    try:
        return parse_check_time(history_file(v).read_text())
    except OSError:
        return {}


def save_history(v, times: dict[str, float]) -> None:
    p = history_file(v)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(format_check_time(times))
    os.replace(tmp, p)


class Suite:
    """The fstests part of a run: the image to boot, and the runs of ./check."""

    def __init__(self, cfg, run_dir: Path):
        self.cfg = cfg
        self.run_dir = run_dir
        self.fst: FstestsConfig = getattr(cfg, "fstests", None) or FstestsConfig()
        self.image = None               # ImageArtifact with fstests, when available
        self.src: SourceTree | None = None
        self.unavailable: str | None = None
        self.meta: dict = {}

    # -- preparation

    @classmethod
    def prepare(cls, cfg, run_dir: Path, jobs: list) -> "Suite":
        """Resolve the source and build (or find) the fstests image, if any fstests job is planned.
        Never raises for "fstests unavailable": the jobs will say why."""
        s = cls(cfg, run_dir)
        if not any(is_fstests(j) for j in jobs):
            return s
        log = run_dir / "fstests-build.log"
        ui.stage("fstests")
        try:
            s.src = resolve_source(s.fst, log)
            with ui.progress("guest image with fstests") as p:
                s.image, hit = build_image(cfg, s.src, run_dir / "image-build.log", progress=p.update)
                p.update("cache hit" if hit else "built")
        except Unavailable as e:
            s.unavailable = str(e)
        except (InfraError, UserError) as e:
            s.unavailable = f"fstests image: {str(e).splitlines()[0]}"
        if s.unavailable:
            ui.warn(f"fstests jobs will be errors: {s.unavailable}")
            return s
        s.meta = {**image_meta(s.image), "origin": s.src.origin, "commit": s.src.commit,
                  "image_key": s.image.key}
        out = run_dir / "fstests"
        out.mkdir(exist_ok=True)
        (out / "fstests.json").write_text(json.dumps(s.meta, indent=2) + "\n")
        variants = [v for v in cfg.variants if any(is_fstests(j) and j.variant == v for j in jobs)]
        (out / "local.config").write_text(render_local_config(variants, s.src.origin))
        ui.info(f"fstests {s.src.commit[:12]} ({s.src.origin}); image {s.image.key[:12]}")
        return s

    # -- running

    def run(self, session, jobs: list) -> Iterator:
        """Run the fstests jobs (grouped by variant and iteration); yields a JobResult per test."""
        from .runner import JobResult
        groups: dict[tuple, list] = {}
        for j in jobs:
            if is_fstests(j):
                groups.setdefault((j.variant.name, j.iteration), []).append(j)
        for (_, _), group in groups.items():
            if self.unavailable:
                for j in group:
                    yield self._result(JobResult, j, Verdict("error", self.unavailable), None)
                continue
            if bad := [j for j in group if not is_test_name(j.test.name)]:   # a group not expanded at plan time
                for j in bad:
                    yield self._result(JobResult, j, Verdict("error", f"fstests: group {j.test.name!r} could not "
                                                                      "be expanded when the run was planned"), None)
                group = [j for j in group if j not in bad]
            yield from self._run_group(session, group) if group else iter(())

    def _job_dir(self, job) -> Path:
        return self.run_dir / "jobs" / job.variant.name / job.name.replace("#", ".")

    def _result(self, JobResult, job, verdict, outcome, detail="", seconds=None, lines=None):
        d = self._job_dir(job)
        d.mkdir(parents=True, exist_ok=True)
        for name in ("stdout", "stderr"):
            if not (d / name).exists():
                (d / name).write_text("")
        r = JobResult(job, verdict, outcome, d, seconds, lines)
        r.detail = detail            # read by report/junit.py for the failure text
        return r

    def _run_group(self, s, group: list) -> Iterator:
        from .runner import JobResult, TroubleWatch, _collect_evidence
        v = group[0].variant
        section = section_name(v.name)
        pending = list(group)
        attempt = 0
        history = load_history(v)
        fixed = {t: to.seconds for to in self.fst.timeouts for t in to.tests}
        while pending:
            attempt += 1
            label = section + (f".{group[0].iteration}" if group[0].repeat > 1 else "") + \
                (f".resume{attempt - 1}" if attempt > 1 else "")
            out_dir = self.run_dir / "fstests" / label
            out_dir.mkdir(parents=True, exist_ok=True)
            setup_log = self.run_dir / "setup.log"
            try:
                guest = s.guest_ready()
                skip = s.prepare(guest, v, setup_log)
                if skip:
                    for j in pending:
                        yield self._result(JobResult, j, Verdict("skip", skip), None)
                    return
                guest.put_text(render_local_config([v], self.src.origin), f"{GUEST_FSTESTS}/local.config", mode=0o644)
                guest.run(f"rm -rf {GUEST_FSTESTS}/results/{section} && mkdir -p {GUEST_FSTESTS}/results", timeout=60)
                # results/check.time is shared by all sections: give ./check this variant's history only.
                guest.put_text(format_check_time(history), f"{GUEST_FSTESTS}/results/check.time", mode=0o644)
            except InfraError as e:
                for j in pending:
                    yield self._result(JobResult, j, Verdict("error", str(e)), None)
                return

            names = [j.test.name for j in pending]
            run_id = f"fstests.{label}"
            cmd = (f"cd {GUEST_FSTESTS} && echo '<5>kharness: job-start {run_id}' > /dev/kmsg; "
                   f"./check -R xunit -s {section} {' '.join(shlex.quote(n) for n in names)}; rc=$?; "
                   f"echo \"<5>kharness: job-end {run_id} rc=$rc\" > /dev/kmsg; exit $rc")
            (out_dir / "command").write_text(cmd + "\n")
            ui.info(f"fstests {section}: ./check -R xunit -s {section} {' '.join(names)}"
                    + (" (resuming after a restart)" if attempt > 1 else ""))

            with s.stream.cond:
                s.stream.out.flush()
                offset = os.path.getsize(s.stream.path)
            start_line = s.open_window()
            tail = ConsoleTail(s.stream.path, start_line, offset)
            seen: list[tuple[int, str]] = []
            pulled_files: dict = {}
            state = {"test": None, "since": time.monotonic(), "watchdog": None}

            def note_starts(pull: bool) -> None:
                started = test_starts(tail.poll())
                if started and seen and pull:
                    # A test ended: pull what it left now, while the guest is well (a later crash loses it).
                    self._pull(guest, section, out_dir, pulled_files)
                for no, test in started:
                    seen.append((no, test))
                    w = watchdog_for(test, history, self.fst.test_timeout, fixed)
                    state.update(test=test, since=time.monotonic(), watchdog=w)
                    ui.info(f"fstests {section}: {test} started (watchdog {w} s)")

            watch = TroubleWatch(s, guest)

            def check_abort() -> str | None:
                note_starts(pull=True)
                if why := watch():
                    return why
                if state["test"] and state["watchdog"] and time.monotonic() - state["since"] > state["watchdog"]:
                    return (f"hang: fstests watchdog: {state['test']} ran past {state['watchdog']} s"
                            + (f" ({history[state['test']]:.0f} s last time)" if state['test'] in history else ""))
                return None

            total = sum(watchdog_for(n, history, self.fst.test_timeout, fixed) for n in names) + 600
            outcome = guest.run(cmd, timeout=total, stdout_path=out_dir / "check.stdout",
                                stderr_path=out_dir / "check.stderr", check_abort=check_abort)
            outcome = _no_status_is_trouble(outcome, s)
            trouble = outcome.exit_status is None
            if trouble and s.vm and not s.vm.alive():
                time.sleep(0.5)         # let the console tail copy the dead guest's last lines
            note_starts(pull=False)     # a test that started just before the end
            victim = state["test"] or (names[0] if trouble else None)
            victim_dir = self._job_dir(next(j for j in pending if j.test.name == victim)) if victim in names else out_dir
            victim_dir.mkdir(parents=True, exist_ok=True)
            if trouble:
                _collect_evidence(s, guest, victim_dir)
            else:
                s.stream.wait(lambda: f"end {run_id}" in s.stream.marks, 10)
            end_line = s.stream.marks.get(f"end {run_id}") if not trouble else None
            s.close_window()
            last_line = end_line or s.stream.lines
            findings = s.window_findings(end_line)
            seen += test_starts(tail.poll())        # (state no longer matters: the run is over)

            if not trouble or guest.ping():
                pulled = self._pull(guest, section, out_dir, pulled_files)
            else:
                pulled = (out_dir / "result.xml").exists()     # what was pulled while the run went on
            if trouble:
                ui.info(f"fstests {section}: {outcome.aborted or outcome.lost or 'timed out'}; restarting the guest")
                s.stop()
            s.mounted = None            # fstests remounts and reformats: the next job mkfs's again

            cases = {}
            xml = out_dir / "result.xml"
            if pulled and xml.exists():
                cases = {c.name: c for c in parse_xunit(xml.read_text(errors="replace"))}
            stdout_text = (out_dir / "check.stdout").read_text(errors="replace") if (out_dir / "check.stdout").exists() else ""
            for name, c in parse_check_output(stdout_text, names).items():
                cases.setdefault(name, c)
            if trouble and victim in cases and victim == state["test"]:
                del cases[victim]       # a status line printed before the hang was noticed is not the verdict
            wins = windows(seen, start_line + 1, last_line)
            self._update_history(v, history, cases, out_dir)
            _split_console(s.stream.path, wins, {t: self._job_dir(j) for j in pending for t in [j.test.name]})

            still = []
            for j in pending:
                name = j.test.name
                d = self._job_dir(j)
                d.mkdir(parents=True, exist_ok=True)
                (d / "stdout").write_text(
                    f"fstests {self.meta.get('commit', '?')} ({self.meta.get('origin', '?')}), section {section}\n"
                    f"$ {cmd}\n" + check_output_of(stdout_text, name, names))
                (d / "stderr").write_text("")
                win = wins.get(name)
                if name in cases:
                    c = cases[name]
                    _copy_test_files(out_dir, name, d)
                    fs = findings_in(findings, win)
                    verdict = combine(c, fs, warn_is_failure=self.cfg.warn_is_failure, seconds=c.seconds or 0.0)
                    golden, bad = _golden_and_bad(self.src.path, out_dir, name)
                    detail = failure_detail(c, verdict, golden, bad, check_output_of(stdout_text, name, names))
                    status = {"pass": 0, "fail": 1, "notrun": 77}[c.status]
                    oc = Outcome(status, c.seconds or 0.0, stdout=c.message)
                    yield self._result(JobResult, j, verdict, oc, detail, c.seconds, win)
                elif trouble and name == victim:
                    secs = time.monotonic() - state["since"] if state["test"] else outcome.duration
                    fs = findings_in(findings, win) if win else findings
                    why = outcome.aborted
                    if not state["test"]:
                        why = (why or "hang: stopped").replace(": ", f": during ./check's set-up before {name} started: ", 1)
                    verdict = combine(None, fs, warn_is_failure=self.cfg.warn_is_failure, aborted=why,
                                      timed_out=outcome.timed_out, seconds=secs, watchdog=state["watchdog"])
                    if outcome.lost and not outcome.aborted:
                        verdict = Verdict("error", f"ssh connection lost during {name}: {outcome.lost}", findings=fs)
                    _copy_test_files(out_dir, name, d)
                    oc = Outcome(None, secs, timed_out=outcome.timed_out, aborted=why, lost=outcome.lost)
                    yield self._result(JobResult, j, verdict, oc, failure_detail(None, verdict), None,
                                       win or (start_line + 1, last_line))
                elif trouble:
                    still.append(j)     # not reached: resume after a fresh boot
                else:
                    why = _last_line(out_dir / "check.stdout") if stdout_text else "no output"
                    yield self._result(JobResult, j, Verdict("error", f"fstests did not report {name} ({why}); "
                                                             f"see {out_dir / 'check.stdout'}"), None)
            if trouble and len(still) == len(pending):
                for j in still:      # no progress at all: do not loop
                    yield self._result(JobResult, j, Verdict("error", f"fstests made no progress: {outcome.aborted}"), None)
                return
            pending = still

    def _update_history(self, v, history: dict[str, float], cases: dict[str, CaseResult], out_dir: Path) -> None:
        ct = out_dir / "check.time"
        if ct.exists():
            history.update(parse_check_time(ct.read_text(errors="replace")))
        for c in cases.values():
            if c.status == "pass" and c.seconds:
                history[c.name] = c.seconds
        try:
            save_history(v, history)
        except OSError:
            pass

    def _pull(self, guest: Guest, section: str, out_dir: Path, seen: dict | None = None) -> bool:
        """results/SECTION/** (result.xml, check.log, per-test files) and results/check.time -> out_dir.
        `seen` (remote path -> (size, mtime)) skips files already pulled unchanged."""
        seen = {} if seen is None else seen
        try:
            sftp = guest.client.open_sftp()
        except Exception as e:     # the guest may be too far gone
            (out_dir / "pull-error.txt").write_text(f"cannot open sftp: {e}\n")
            return (out_dir / "result.xml").exists()
        try:
            sftp.get_channel().settimeout(60)
            base = f"{GUEST_FSTESTS}/results"
            _sftp_get(sftp, f"{base}/check.time", out_dir / "check.time", seen)
            _sftp_tree(sftp, f"{base}/{section}", out_dir, seen)
            return True
        except Exception as e:
            (out_dir / "pull-error.txt").write_text(f"pulling results failed: {e}\n")
            return (out_dir / "result.xml").exists()
        finally:
            try:
                sftp.close()
            except Exception:
                pass


def _sftp_get(sftp, remote: str, local: Path, seen: dict) -> bool:
    try:
        st = sftp.stat(remote)
    except IOError:
        return False
    if seen.get(remote) == (st.st_size, st.st_mtime) and local.exists():
        return True
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(local.name + ".part")
    with sftp.open(remote, "rb") as src, open(tmp, "wb") as dst:
        left = min(st.st_size or 0, MAX_PULL_BYTES)
        while left > 0:
            chunk = src.read(min(left, 1 << 16))
            if not chunk:
                break
            dst.write(chunk)
            left -= len(chunk)
        if (st.st_size or 0) > MAX_PULL_BYTES:
            dst.write(f"\n[... truncated at {MAX_PULL_BYTES} bytes by kharness]\n".encode())
    os.replace(tmp, local)
    seen[remote] = (st.st_size, st.st_mtime)
    return True


def _sftp_tree(sftp, remote: str, local: Path, seen: dict) -> None:
    try:
        entries = sftp.listdir_attr(remote)
    except IOError:
        return
    for e in entries:
        r = f"{remote}/{e.filename}"
        if stat.S_ISDIR(e.st_mode or 0):
            _sftp_tree(sftp, r, local / e.filename, seen)
        elif stat.S_ISREG(e.st_mode or 0):
            _sftp_get(sftp, r, local / e.filename, seen)


def _no_status_is_trouble(outcome: Outcome, s) -> Outcome:
    """A channel that closed without an exit status (paramiko: -1) did not finish: when QEMU died
    under it (a panic with -no-reboot), that is a crash; otherwise the connection was lost."""
    if outcome.exit_status is None or outcome.exit_status >= 0:
        return outcome
    deadline = time.monotonic() + 5
    while s.vm and s.vm.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    dead = not (s.vm and s.vm.alive())
    return dataclasses.replace(
        outcome, exit_status=None,
        aborted="crash: QEMU exited during the test (the guest panicked or was killed)" if dead else None,
        lost=None if dead else "the ssh channel closed without an exit status")


TEST_FILES = (".out.bad", ".full", ".dmesg", ".notrun", ".hints")


def _copy_test_files(out_dir: Path, test: str, dest: Path) -> None:
    d, num = test.split("/", 1) if "/" in test else ("", test)
    for suffix in TEST_FILES:
        p = out_dir / d / (num + suffix)
        if p.is_file():
            shutil.copyfile(p, dest / (num + suffix))


def _golden_and_bad(tree: Path, out_dir: Path, test: str) -> tuple[str | None, str | None]:
    d, num = test.split("/", 1) if "/" in test else ("", test)
    try:
        return ((tree / "tests" / d / f"{num}.out").read_text(errors="replace"),
                (out_dir / d / f"{num}.out.bad").read_text(errors="replace"))
    except OSError:
        return None, None


def _split_console(console: Path, wins: dict[str, tuple[int, int]], dirs: dict[str, Path],
                   max_bytes: int = 2 << 20) -> None:
    """Write each test's console window (console.log line numbers kept) to its job directory."""
    if not wins:
        return
    outs = {}
    for t in wins:
        if t in dirs:
            dirs[t].mkdir(parents=True, exist_ok=True)
            outs[t] = open(dirs[t] / "console.txt", "w")
    sizes = dict.fromkeys(outs, 0)
    lo = min(a for a, _ in wins.values())
    hi = max(b for _, b in wins.values())
    try:
        with open(console, encoding="utf-8", errors="replace") as src:
            for i, line in enumerate(src, 1):
                if i < lo:
                    continue
                if i > hi:
                    break
                for t, (a, b) in wins.items():
                    if t in outs and a <= i <= b and sizes[t] <= max_bytes:
                        sizes[t] += len(line)
                        outs[t].write(f"{i:7d}  {line}" if sizes[t] <= max_bytes else
                                      f"[... console window truncated at {max_bytes} bytes; see console.log]\n")
    finally:
        for f in outs.values():
            f.close()
