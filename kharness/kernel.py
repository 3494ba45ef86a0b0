"""Kernel source + patch series + kconfig fragments -> a cached bzImage.

    source (tarball | git tree) --import--> cache/src/<id>   (a git repo we own)
    checkout base, apply each series (series.py reads them)  (the user's tree is never touched)
        `git am --3way`; a thread with apply: fuzzy falls back to patchapply.apply_fuzzy
    base config + fragments --merge_config.sh/olddefconfig--> .config, every fragment option checked
    make O=cache/build/<id>-<base> bzImage                   (one output tree per source+base: incremental)
    cache/kernels/<key>/{bzImage,config,System.map,kernel.json}, and vmlinux when the
                                                             .config has CONFIG_PVH=y (vm.py boots it)

The artifact key hashes the source identity, every applied patch, the final
.config and the compiler version. A second key over the *inputs* (fragments
instead of the final .config) lets an unchanged build be answered from the
cache without running git or make at all.
"""
from __future__ import annotations

import itertools
import json
import mailbox
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, debsrc, files, patchapply, proc, ui
from .config import REPO, KernelConfig, repo_path
from .series import Series, first_patches, read_series
from .errors import InfraError, UserError

BUILD_VERSION = "1"        # bump when the build recipe changes in a way the key cannot see
FRAGMENTS_DIR = REPO / "configs" / "kconfig"
BASE_TARGETS = ("tinyconfig", "defconfig", "allnoconfig")
# Fixed identity for commits the harness makes, so the same series gives the same HEAD.
GIT_IDENT = {"GIT_AUTHOR_NAME": "kharness", "GIT_AUTHOR_EMAIL": "kharness@localhost",
             "GIT_COMMITTER_NAME": "kharness", "GIT_COMMITTER_EMAIL": "kharness@localhost",
             "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z"}
MAKE_VARS = ["LOCALVERSION=", "KBUILD_BUILD_USER=kharness", "KBUILD_BUILD_HOST=kharness",
             "KBUILD_BUILD_TIMESTAMP=Thu Jan  1 00:00:00 UTC 2000"]
# Published beside bzImage when the kernel has CONFIG_PVH=y: QEMU loads this ELF straight
# into the guest and enters it at its PVH note (no decompression, no real-mode setup).
PVH_VMLINUX = "vmlinux"
_OBJECT_LINE = re.compile(r"^\s+(CC|AS|LD|AR|HOSTCC|CPP)\s")




@dataclass(frozen=True)
class KernelArtifact:
    dir: Path
    key: str
    meta: dict = field(hash=False, compare=False)

    @property
    def bzimage(self) -> Path:
        return self.dir / "bzImage"

    @property
    def pvh_vmlinux(self) -> Path | None:
        """The uncompressed kernel with a PVH entry point (published for CONFIG_PVH=y), or None."""
        p = self.dir / PVH_VMLINUX
        return p if p.is_file() else None

    @property
    def release(self) -> str:
        return self.meta["release"]


# ---------------------------------------------------------------- kconfig

_OPT = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X -> value, with 'n' for '# CONFIG_X is not set'."""
    out = {}
    for line in text.splitlines():
        if m := _OPT.match(line.strip()):
            out[m.group(1)] = m.group(2)
        elif m := _UNSET.match(line.strip()):
            out[m.group(1)] = "n"
    return out


def fragment_path(name: str) -> Path:
    p = FRAGMENTS_DIR / f"{name}.config"
    if not p.is_file():
        q = repo_path(name)
        if q.is_file():
            return q
        if os.path.lexists(q) and not q.is_dir():       # a FIFO, a device: say so, never open it
            files.check_regular(q, "kconfig fragment")
        avail = ", ".join(sorted(f.stem for f in FRAGMENTS_DIR.glob("*.config")))
        raise UserError(f"kconfig fragment {name!r}: no {os.path.relpath(p, REPO)} (available: {avail})")
    return p


MAX_KCONFIG_BYTES = 4 << 20      # a full .config is about 300 KiB


def read_kconfig(path: Path, what: str) -> str:
    """A fragment or a .config: every line CONFIG_X=value, '# CONFIG_X is not set', a comment or
    blank (Kconfig itself skips any other line with a warning, so a typo would vanish)."""
    text = files.read_text(path, what, MAX_KCONFIG_BYTES)
    where = os.path.relpath(path, REPO) if path.is_relative_to(REPO) else str(path)
    for n, line in enumerate(text.splitlines(), 1):
        t = line.strip()
        if t and not t.startswith("#") and not _OPT.match(t):
            raise UserError(f"{where}:{n}: {t[:80]!r} is not a kconfig line; write CONFIG_NAME=value "
                            f"(no spaces around =) or '# CONFIG_NAME is not set'")
    return text


def read_fragment(name: str) -> str:
    return read_kconfig(fragment_path(name), "kconfig fragment")


def _base_config_text(k: KernelConfig) -> str | None:
    """The base .config file's text (None for a make target like tinyconfig)."""
    if k.base_config in BASE_TARGETS:
        return None
    p = repo_path(k.base_config)
    if not p.is_file():
        if os.path.lexists(p) and not p.is_dir():
            files.check_regular(p, "kernel.base_config")
        raise UserError(f"kernel.base_config: {k.base_config!r} is neither {'/'.join(BASE_TARGETS)} nor a file")
    return read_kconfig(p, "kernel.base_config")


def dropped_options(fragments: dict[str, str], final: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(fragment, option, wanted, got) for every fragment request the final .config does not honour."""
    out = []
    for frag_name, text in fragments.items():
        for opt, want in parse_config(text).items():
            got = final.get(opt, "n")
            if got != want:
                out.append((frag_name, opt, want, got))
    return out


def _option_exists(src: Path, opt: str) -> bool:
    sym = opt.removeprefix("CONFIG_")
    res = subprocess.run(["grep", "-rqE", "--include=Kconfig*", rf"^\s*(menu)?config\s+{sym}\s*$", str(src)],
                         stdin=subprocess.DEVNULL)
    return res.returncode == 0


# ---------------------------------------------------------------- sources

def _tarball_digest(path: Path, remember: bool = True) -> str:
    """sha256 of the tarball, remembered by (path, size, mtime) so a cache hit stays fast
    (preflight only reads the memo: bad input found after it must leave the cache as it was)."""
    st = path.stat()
    memo_file = cache.cache_root() / "tarball-digests.json"
    memo_key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    try:        # the cache's own file, read as any other (a FIFO or a list there is just no memo)
        memo = json.loads(files.read_text(memo_file, "digest memo", 16 << 20))
    except (UserError, ValueError):
        memo = {}
    if not isinstance(memo, dict) or not isinstance(memo.get(memo_key, ""), str):
        memo = {}
    if memo_key not in memo:
        memo[memo_key] = cache.file_digest(path)
        if not remember:
            return memo[memo_key]
        tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, memo_file)
    return memo[memo_key]


@dataclass(frozen=True)
class Source:
    id: str                 # "tarball-<sha256>" or "git-<commit>"
    description: dict       # goes into kernel.json
    base_commit: str | None  # the user's commit (git) or None until imported (tarball)


def resolve_source(k: KernelConfig, log: Path | None = None, remember: bool = True) -> Source:
    if k.debian:
        d = k.debian
        deb = debsrc.cached(d.package, d.suite, d.version)
        if deb is None:         # only then is there something to show (apt update, download)
            with ui.progress(f"Debian {d.suite} {d.package}") as p:
                deb = debsrc.fetch(d.package, d.suite, log or cache.cache_root() / "debian" / "fetch.log", p,
                                   version=d.version)
        return Source(f"deb-{deb.package}-{deb.version}", deb.description(), None)
    if k.tarball:
        path = Path(k.tarball).expanduser()
        if not path.is_file():
            hint = " (install it: apt-get install linux-source-6.12, or run `make setup`)" if "linux-source" in path.name else ""
            raise UserError(f"kernel.tarball: {path} does not exist{hint}")
        sha = _tarball_digest(path, remember)
        return Source(f"tarball-{sha[:20]}", {"tarball": str(path), "sha256": sha}, None)
    tree = Path(k.git).expanduser()
    if not (tree / ".git").exists() and not (tree / "HEAD").exists():
        raise UserError(f"kernel.git: {tree} is not a git tree")
    try:
        commit = proc.capture(["git", "-C", tree, "rev-parse", "--verify", "--quiet", f"{k.ref}^{{commit}}"]).strip()
    except InfraError:
        raise UserError(f"kernel.ref: {k.ref!r} is not a commit, branch or tag in {tree}")
    return Source(f"git-{commit[:20]}", {"git": str(tree.resolve()), "ref": k.ref, "commit": commit}, commit)


def _import_source(k: KernelConfig, src: Source, log: Path) -> tuple[Path, str]:
    """Our own git repository for this source, created once; returns (repo, base commit)."""
    repo = cache.entry("src", src.id)
    base_file = repo / ".kharness-base"
    if base_file.exists():
        if src.base_commit and not _has_commit(repo, src.base_commit):
            proc.run(["git", "-C", repo, "fetch", "-q", src.description["git"], src.base_commit], log)
        return repo, src.base_commit or base_file.read_text().strip()
    with cache.locked(f"src-{src.id}"):
        if base_file.exists():
            return repo, src.base_commit or base_file.read_text().strip()
        with cache.publishing("src", src.id) as tmp:
            tarball = src.description.get("tarball")       # kernel.tarball, or the one kernel.debian fetched
            if tarball:
                with ui.progress("unpacking kernel tarball") as p:
                    p.update(Path(tarball).name)
                    proc.run(["tar", "-xf", Path(tarball), "-C", tmp, "--strip-components=1"], log)
                    p.update("committing it to a scratch git repo")
                    proc.run(["git", "init", "-q", tmp], log)
                    # Debian's linux-source tarballs carry a top-level .gitignore with `/*`
                    # (packaging leftovers): plain `git add -A` would add nothing.
                    proc.run(["git", "-C", tmp, "add", "-f", "-A"], log)
                    proc.run(["git", "-C", tmp, "commit", "-q", "--no-verify", "-m",
                              f"import {Path(tarball).name}"], log, env=GIT_IDENT)
                base = proc.capture(["git", "-C", tmp, "rev-parse", "HEAD"]).strip()
            else:
                with ui.progress("cloning kernel tree into the cache") as p:
                    p.update(src.description["git"])
                    # A plain local clone (hardlinked objects) reads the user's repository and
                    # writes nothing to it: no worktree metadata, no refs, index untouched.
                    shutil.rmtree(tmp)
                    proc.run(["git", "clone", "-q", "--no-checkout", src.description["git"], tmp], log)
                    if not _has_commit(tmp, src.base_commit):
                        proc.run(["git", "-C", tmp, "fetch", "-q", src.description["git"], src.base_commit], log)
                base = src.base_commit
            (tmp / ".git" / "info").mkdir(exist_ok=True)
            (tmp / ".git" / "info" / "exclude").write_text("/.kharness-base\n")
            (tmp / ".kharness-base").write_text(base + "\n")
    return repo, base


def _has_commit(repo: Path, commit: str) -> bool:
    return subprocess.run(["git", "-C", repo, "cat-file", "-e", f"{commit}^{{commit}}"],
                          stdin=subprocess.DEVNULL, capture_output=True).returncode == 0


def _apply_series(repo: Path, base: str, series: list[Series], log: Path) -> tuple[str, list[patchapply.Applied]]:
    """Reset the cache repo to `base` and apply every series; returns HEAD and how each thread patch went in."""
    git = ["git", "-C", str(repo)]
    subprocess.run(git + ["am", "--abort"], stdin=subprocess.DEVNULL, capture_output=True)
    proc.run(git + ["checkout", "-q", "-f", "--detach", base], log)
    proc.run(git + ["clean", "-q", "-f", "-d", "-e", ".kharness-base"], log)

    def reset() -> None:
        subprocess.run(git + ["am", "--abort"], stdin=subprocess.DEVNULL, capture_output=True)
        subprocess.run(git + ["checkout", "-q", "-f", "--detach", base], stdin=subprocess.DEVNULL, capture_output=True)
        subprocess.run(git + ["clean", "-q", "-f", "-d", "-e", ".kharness-base"], stdin=subprocess.DEVNULL,
                       capture_output=True)

    def git_am(inp: Path) -> subprocess.CompletedProcess:
        res = subprocess.run(git + ["am", "-q", "--3way", "--keep-cr", str(inp)], env={**os.environ, **GIT_IDENT},
                             stdin=subprocess.DEVNULL, capture_output=True, text=True)
        with open(log, "a") as f:
            f.write(f"$ git am --3way {inp}\n{res.stdout}{res.stderr}[exit {res.returncode}]\n")
        return res

    applied: list[patchapply.Applied] = []
    for s in series:
        if s.thread is None and s.take is None:
            for inp in s.inputs:
                res = git_am(inp)
                if res.returncode != 0:
                    reset()
                    raise UserError(_am_failure(res.stdout + res.stderr, s, inp))
            continue
        if s.thread is None:        # the first `take` messages of one mbox (a bisection step)
            with tempfile.TemporaryDirectory(prefix="kharness-am.") as td:
                part = Path(td) / s.inputs[0].name
                box = mailbox.mbox(str(part))
                for msg in itertools.islice(mailbox.mbox(str(s.inputs[0])), s.take):
                    box.add(msg)
                box.close()
                res = git_am(part)
                if res.returncode != 0:
                    reset()
                    raise UserError(_am_failure(res.stdout + res.stderr, s, s.inputs[0]))
            continue
        with tempfile.TemporaryDirectory(prefix="kharness-am.") as td:
            for tp in s.thread.patches:
                label = f"{tp.number:02d}/{tp.total}"
                mail = Path(td) / f"{tp.number:04d}.eml"
                mail.write_bytes(tp.mail)
                res = git_am(mail)
                if res.returncode == 0:
                    head = proc.capture(git + ["rev-parse", "HEAD"]).strip()
                    applied.append(patchapply.Applied(f"{s.name} {label}", tp.subject, "git am --3way", head))
                    continue
                if s.apply != "fuzzy":
                    reset()
                    raise UserError(f"series {s.name!r}: patch {label} ({tp.subject}) does not apply with "
                                    f"git am --3way{_am_where(res.stdout + res.stderr)}; the cached tree was reset. "
                                    "Skip it (`skip:`) if it is upstream, or allow `apply: fuzzy`")
                subprocess.run(git + ["am", "--abort"], stdin=subprocess.DEVNULL, capture_output=True)
                try:
                    head, hunks = patchapply.apply_fuzzy(repo, tp.mail, s.fuzz, GIT_IDENT)
                except patchapply.Rejected as e:
                    reset()
                    raise UserError(f"series {s.name!r}: patch {label} ({tp.subject}): {e}; the cached tree was "
                                    "reset. Skip the patch, or port it in a fixup series of your own")
                with open(log, "a") as f:
                    f.write(f"$ patch -p1 -F{s.fuzz} < {label}: " +
                            ("; ".join(f"{h.file} hunk #{h.hunk} at {h.line} fuzz {h.fuzz} offset {h.offset}"
                                       for h in hunks) or "exact") + "\n")
                applied.append(patchapply.Applied(f"{s.name} {label}", tp.subject, f"patch -F{s.fuzz}", head, hunks))
    return proc.capture(git + ["rev-parse", "HEAD"]).strip(), applied


def _am_where(output: str) -> str:
    if m := re.search(r"error: patch failed: (\S+)", output):
        return f" (at {m.group(1)})"
    if m := re.search(r"error: (.*)", output):
        return f" ({m.group(1).strip()})"
    return ""


def _am_failure(output: str, s: Series, inp: Path) -> str:
    subject = next((p.subject for p in s.patches if REPO / p.file == inp), None)
    if m := re.search(r"Patch failed at \d+ (.*)", output):
        subject = m.group(1).strip()
    where = ""
    if m := re.search(r"error: patch failed: (\S+)", output):
        where = f" at {m.group(1)}"
    elif m := re.search(r"(CONFLICT \([^)]*\): .*)", output):
        where = f": {m.group(1)}"
    elif m := re.search(r"error: (.*)", output):
        where = f": {m.group(1)}"
    return (f"series {s.name!r}: patch {os.path.relpath(inp, REPO)} ({subject or '?'}) does not apply{where}; "
            f"the cached tree was reset (git am --abort). Rebase the patch onto this kernel")


# ---------------------------------------------------------------- build

def _compiler_version(cc: str) -> str:
    try:
        return proc.capture([cc, "--version"]).splitlines()[0].strip()
    except (InfraError, OSError, ValueError, IndexError):
        raise UserError(f"kernel.cc: compiler {cc!r} not found or not working (install it, or set kernel.cc)")


def _input_key(k: KernelConfig, src: Source, series: list[Series], compiler: str) -> str:
    parts = [BUILD_VERSION, src.id, compiler, k.base_config, str(k.ccache)]
    if k.base_config not in BASE_TARGETS:
        parts.append(_base_config_text(k))
    for s in series:
        parts += [s.name, s.apply, str(s.fuzz)] + [p.sha256 for p in s.patches]
    for f in k.fragments:
        parts += [f, read_fragment(f)]
    return cache.digest(*parts)


def load_artifact(key: str) -> KernelArtifact | None:
    d = cache.entry("kernels", key)
    try:
        return KernelArtifact(d, key, json.loads((d / "kernel.json").read_text()))
    except (OSError, ValueError):
        return None


def preflight(k: KernelConfig, series_override: list[str] | None = None) -> None:
    """Every input a build will read, checked before a run starts (one line on the first
    problem, nothing created): series and their patches, fragments and base config (each line
    parses), the compiler, the cache directory, the source."""
    names = series_override if series_override is not None else k.series
    for n in names:
        read_series(n)
    for f in k.fragments:
        read_fragment(f)
    _base_config_text(k)
    _compiler_version(k.cc)
    cache.check_root()
    if not k.debian:            # a Debian package is only known after apt has been asked
        resolve_source(k, remember=False)


def build_kernel(k: KernelConfig, log_dir: Path, series_override: list | None = None,
                 take: int | None = None) -> tuple[KernelArtifact, bool]:
    """Build (or find in the cache) the kernel the config describes; returns (artifact, cache_hit).
    take: only the first `take` patches of the series, in order (a bisection's candidate)."""
    names = series_override if series_override is not None else k.series
    series = [read_series(n) for n in names]
    if take is not None:
        series = first_patches(series, take)
    fragments = {f: read_fragment(f) for f in k.fragments}
    _base_config_text(k)
    compiler = _compiler_version(k.cc)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "kernel-build.log"
    src = resolve_source(k, log)

    by_input = cache.entry("kernels", "by-input") / _input_key(k, src, series, compiler)
    if by_input.exists() and (art := load_artifact(by_input.read_text().strip())):
        return art, True

    repo, base = _import_source(k, src, log)
    with cache.locked(f"src-{src.id}"):
        head, applied = _apply_series(repo, base, series, log)
        out = cache.entry("build", f"{src.id}-{cache.digest(k.base_config)[:12]}")
        out.mkdir(parents=True, exist_ok=True)
        final_config = _configure(k, repo, out, fragments, log)
        key = cache.digest(BUILD_VERSION, src.id, *[f"{s.apply}{s.fuzz}" for s in series if s.thread],
                           *[p.sha256 for s in series for p in s.patches], final_config, compiler)
        art = load_artifact(key)
        hit = art is not None
        if not hit:
            art = _make(k, repo, out, key, log, applied, meta={
                "source": src.description, "base_commit": base, "head_commit": head,
                "series": [s.describe() for s in series],
                "applied": [a.to_json() for a in applied],
                "base_config": k.base_config, "fragments": list(k.fragments),
                "config_sha256": cache.digest(final_config), "compiler": compiler,
            })
    by_input.parent.mkdir(parents=True, exist_ok=True)
    tmp = by_input.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(art.key + "\n")
    os.replace(tmp, by_input)
    return art, hit


def _configure(k: KernelConfig, repo: Path, out: Path, fragments: dict[str, str], log: Path) -> str:
    make = ["make", "-s", "-C", str(repo), f"O={out}", f"CC={k.cc}"]
    if k.base_config in BASE_TARGETS:
        proc.run(make + [k.base_config], log)
    else:
        shutil.copyfile(repo_path(k.base_config), out / ".config")
        proc.run(make + ["olddefconfig"], log)
    if fragments:
        with tempfile.TemporaryDirectory(prefix="kharness-frag.") as td:
            paths = []
            for name, text in fragments.items():
                p = Path(td) / f"{name}.config"
                p.write_text(text)
                paths.append(p)
            proc.run([repo / "scripts/kconfig/merge_config.sh", "-m", "-O", out, out / ".config", *paths], log, cwd=repo)
        proc.run(make + ["olddefconfig"], log)
    final = (out / ".config").read_text()
    dropped = dropped_options(fragments, parse_config(final))
    if dropped:
        frag, opt, want, got = dropped[0]
        where = f"configs/kconfig/{frag}.config"
        if not _option_exists(repo, opt):
            raise UserError(f"{where}: {opt} does not exist in this kernel's Kconfig; remove it or fix its name")
        more = f" (and {len(dropped) - 1} more)" if len(dropped) > 1 else ""
        raise UserError(f"{where}: {opt}={want} was dropped by Kconfig (final .config has {opt}={got}): "
                        f"an unmet dependency; add what it depends on to the fragment{more}")
    return final


def _make(k: KernelConfig, repo: Path, out: Path, key: str, log: Path, applied: list[patchapply.Applied],
          meta: dict) -> KernelArtifact:
    jobs = k.jobs or os.cpu_count() or 1
    cc = k.cc
    env = {}
    if k.ccache and shutil.which("ccache"):
        cc = f"ccache {k.cc}"
        env = {"CCACHE_DIR": str(cache.cache_root() / "ccache"), "CCACHE_MAXSIZE": "5G",
               # Paths differ between source trees of one kernel; compare them relative to it.
               "CCACHE_BASEDIR": str(repo), "CCACHE_NOHASHDIR": "1"}
    argv = ["make", "-C", str(repo), f"O={out}", f"-j{jobs}", f"CC={cc}", *MAKE_VARS, "bzImage"]
    start = time.monotonic()
    count = 0
    tail: list[str] = []

    with ui.progress("building kernel") as p:
        def on_line(line: str) -> None:
            nonlocal count
            if _OBJECT_LINE.match(line):
                count += 1
                p.update(f"{count} objects, {line.split()[-1]}")
            tail.append(line)
            del tail[:-200]
        rc = proc.run(argv, log, env=env, on_line=on_line, check=False)
        p.update(f"{count} objects compiled, make exited {rc}")
    if rc != 0:
        errors = [ln for ln in tail if re.search(r"error|Error \d", ln)][:8]
        site = patchapply.blame_build_error(repo, "\n".join(tail), applied) if applied else None
        first = f"\n    first error: {site.describe()}" if site else ""
        raise InfraError("kernel build failed:\n    " + "\n    ".join(errors or tail[-8:]) + first +
                         f"\n    full log: {log}")
    release = (out / "include/config/kernel.release").read_text().strip()
    with cache.publishing("kernels", key) as tmp:
        shutil.copyfile(out / "arch/x86/boot/bzImage", tmp / "bzImage")
        shutil.copyfile(out / ".config", tmp / "config")
        shutil.copyfile(out / "System.map", tmp / "System.map")
        if parse_config((out / ".config").read_text()).get("CONFIG_PVH") == "y":
            shutil.copyfile(out / "vmlinux", tmp / PVH_VMLINUX)
        meta = dict(meta, key=key, release=release, build_seconds=round(time.monotonic() - start, 1),
                    objects_compiled=count, make_jobs=jobs, ccache=bool(env),
                    built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        (tmp / "kernel.json").write_text(json.dumps(meta, indent=2) + "\n")
    art = load_artifact(key)
    assert art is not None
    return art
