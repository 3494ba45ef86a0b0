"""Where fstests comes from (a local tree or a git URL + ref, keyed by content) and the guest
image it is built into (in a chroot of the rootfs, so it links against the guest's libraries)."""
from __future__ import annotations

import atexit
import dataclasses
import json
import os
import shlex
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import cache, proc, ui
from ..config import repo_path
from ..errors import InfraError
from ..image import ImageExtra, build_image as build_base_image
from .config import FstestsConfig, fstests_config

GUEST_FSTESTS = "/opt/fstests"
BUILD_RECIPE_VERSION = "1"       # bump when customize() changes what it installs
# Debian packages fstests needs to build (field notes) and a few it calls at run time.
BUILD_DEPS = ("acl", "attr", "automake", "bc", "gawk", "gcc", "make", "libacl1-dev", "libaio-dev",
              "libtool", "libtool-bin", "liburing-dev", "uuid-dev", "xfsprogs", "xfslibs-dev",
              "e2fsprogs", "fio", "psmisc", "pkgconf")
RUNTIME_DEPS = ("perl", "uuid-runtime")
TEST_USERS = ("fsgqa", "fsgqa2", "123456-fsgqa")
ENV_SOURCE = "KHARNESS_FSTESTS_SRC"           # a path or git URL; overrides fstests.source/git
NO_SOURCE = ("no fstests source configured: set `fstests.source: PATH` (an fstests checkout) "
             f"or `fstests.git: URL` (+ `fstests.ref:`) in the config, or ${ENV_SOURCE}")

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
    fst = _with_env(fst)
    k = (fst.source, fst.git, fst.ref)
    if k not in _resolved:
        _resolved[k] = _local_source(fst.source) if fst.source else _git_source(fst.git, fst.ref, log)
    return _resolved[k]


def _with_env(fst: FstestsConfig | None) -> FstestsConfig:
    fst = fst or FstestsConfig()
    if env := os.environ.get(ENV_SOURCE, "").strip():
        url = "://" in env or env.startswith("git@")
        fst = dataclasses.replace(fst, source=None if url else env, git=env if url else None)
    if not (fst.source or fst.git):
        raise Unavailable(NO_SOURCE)
    return fst


_planned: dict[tuple, SourceTree] = {}


def plan_source(fst: FstestsConfig | None) -> SourceTree:
    """The tree a plan reads (test names, groups) without writing the cache, so `list`, and bad
    input found while planning, leave nothing behind: a local tree as it is; a git source checked
    out in a temporary directory outside the cache (from the cached mirror when a run made one,
    as of that run's fetch; else cloned from the URL), removed when the process exits. A run's
    prepare() then clones or fetches into the cache (resolve_source)."""
    fst = _with_env(fst)
    k = (fst.source, fst.git, fst.ref)
    if fst.source or k in _resolved:
        return resolve_source(fst)
    if k not in _planned:
        _planned[k] = _git_plan_tree(fst.git, fst.ref)
    return _planned[k]


def _git_url(url: str) -> str:
    return url if "://" in url or url.startswith("git@") else str(repo_path(url))


def _git_plan_tree(url: str, ref: str) -> SourceTree:
    u = _git_url(url)
    mirror = cache.existing("fstests", "git", cache.digest(u)[:24] + ".git")
    tmp = Path(tempfile.mkdtemp(prefix="kharness-fstests-plan."))
    atexit.register(shutil.rmtree, tmp, True)
    log, bare, tree = tmp / "git.log", tmp / "fstests.git", tmp / "tree"
    origin = str(mirror) if mirror and (mirror / "HEAD").exists() else u
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if proc.run(["git", "clone", "--bare", "--quiet", origin, str(bare)], log, check=False, env=env) != 0:
        raise Unavailable(f"fstests.git: cannot clone {url} ({_last_line(log)}); set `fstests.git:` to a "
                          f"reachable repository or `fstests.source:` to a local checkout")
    try:
        commit = proc.capture(["git", "-C", str(bare), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]).strip()
        tree.mkdir()
        proc.run(["git", f"--git-dir={bare}", f"--work-tree={tree}", "checkout", "-q", "-f", commit, "--", "."],
                 log, env=env)
        tree_id = proc.capture(["git", "-C", str(bare), "rev-parse", f"{commit}^{{tree}}"]).strip()
    except InfraError:
        raise Unavailable(f"fstests.ref: {ref!r} is not a branch, tag or commit in {url}; set `fstests.ref:`")
    if not _looks_like_fstests(tree):
        raise Unavailable(f"fstests.git: {url} @ {ref} is not an fstests tree (no ./check, tests/)")
    return SourceTree(tree, cache.digest("git-tree", tree_id), commit, f"git: {url} @ {ref}", None)


def _looks_like_fstests(p: Path) -> bool:
    return (p / "check").is_file() and (p / "tests").is_dir() and (p / "common").is_dir()


def _local_source(source: str) -> SourceTree:
    path = repo_path(source).resolve()
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
    u = _git_url(url)
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
    key = cache.digest("fstests-build", BUILD_RECIPE_VERSION, src.key)
    return ImageExtra(name="fstests", packages=BUILD_DEPS + RUNTIME_DEPS, key=key,
                      customize=lambda root, log, say: install_into(root, src, log, say, jobs))


def build_image(cfg, src: SourceTree, log: Path, progress=None):
    """The guest image with fstests built in: (ImageArtifact, cache_hit)."""
    return build_base_image(cfg.image, log, progress=progress, extra=image_extra(src, fstests_config(cfg).jobs))


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


