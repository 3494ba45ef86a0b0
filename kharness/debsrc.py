"""A kernel source from a Debian package: `kernel.debian: {package: linux-source-7.2, suite: sid}`.

    host apt sources (/etc/apt/sources.list, sources.list.d/*.list|*.sources)
      --keep Debian entries, swap the suite (bookworm -> sid), drop -updates/-security-->
    a private apt root  cache/debian/<suite>/_apt/   (own sources, lists, status, archives)
      --apt-get update / apt-get download--> <package>_<version>_all.deb
      --dpkg-deb -x--> cache/debian/<suite>/<package>/<version>/<package>.tar.xz

Nothing is written to the host's apt configuration and nothing is installed:
`apt-get download` only fetches a file, and every Dir:: apt writes to points into
the private root. The mirror is the one the host already uses (no host name is
written here); the host's trusted keyrings verify it. A resolved version is
remembered for REFRESH_SECONDS so a second run makes no apt call at all.

Modules: aptsources.py reads the host's sources and swaps the suite, aptroot.py lays
out the private root, this module runs apt in it and keeps what it fetched.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, proc, ui
from .aptroot import KEY, private_apt_config
from .config import DEBIAN_PACKAGE, DEBIAN_SUITE
# AptSource and the source-list functions are re-exported: callers and tests use them as debsrc.*.
from .aptsources import (  # noqa: F401
    CODENAMES, AptSource, host_codename, host_debian_sources, parse_sources, private_sources, render_deb822,
)
from .errors import InfraError, UserError

REFRESH_SECONDS = 6 * 3600
_SUITE_OK, _PACKAGE_OK = DEBIAN_SUITE, DEBIAN_PACKAGE      # the config is checked with the same patterns


@dataclass(frozen=True)
class DebianSource:
    package: str
    version: str        # e.g. "7.2.13-1"
    tarball: Path       # the linux-source-X.Y.tar.xz extracted from the .deb, inside the cache
    suite: str
    deb_sha256: str
    deb_uri: str = field(default="", compare=False)

    def description(self) -> dict:
        """What kernel.json records about this source."""
        return {"package": self.package, "version": self.version, "suite": self.suite,
                "deb_sha256": self.deb_sha256, "deb_uri": self.deb_uri, "tarball": str(self.tarball)}


# ---------------------------------------------------------------- fetch

def _apt(tool: str, root: Path, opts: dict[str, str]) -> list[str]:
    """An apt tool run in the private root: its apt.conf, then the -o options private_apt_config returned."""
    argv = [tool, "-c", str(root / "apt.conf")]
    for k, v in opts.items():
        argv += ["-o", f"{k}={v}"]
    return argv


def _check_names(package: str, suite: str) -> None:
    if not _PACKAGE_OK.fullmatch(package or ""):
        raise UserError(f"{KEY}.package: {package!r} is not a Debian package name (e.g. linux-source-7.2)")
    if not _SUITE_OK.fullmatch(suite or ""):
        raise UserError(f"{KEY}.suite: {suite!r} is not a Debian suite name (e.g. sid, trixie, bookworm-backports)")


def _suite_hint(codename: str | None) -> str:
    hint = ["sid"]
    if codename in CODENAMES and CODENAMES.index(codename) + 1 < len(CODENAMES):
        hint.append(CODENAMES[CODENAMES.index(codename) + 1])
    hint.append(f"{codename or 'bookworm'}-backports")
    return ", ".join(hint)


def _lists_for(root: Path, suite: str) -> list[Path]:
    tag = "_dists_" + suite.replace("/", "_") + "_"
    return [p for p in (root / "state" / "lists").glob("*Packages*") if tag in p.name]


def _apt_errors(lines: list[str]) -> list[str]:
    """The Err:/E:/W: lines of an apt run, each Err: joined with its indented reason."""
    out = []
    for i, line in enumerate(lines):
        if line.startswith("Err:"):
            reason = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith(" ") else ""
            out.append(f"{line.strip()}: {reason}" if reason else line.strip())
        elif line.startswith(("E:", "W:")):
            out.append(line.strip())
    return out


def _norm_uri(uri: str) -> str:
    """apt prints file:///x as file:/x; compare URIs in one spelling."""
    uri = uri.rstrip("/")
    return "file:/" + uri[5:].lstrip("/") if uri.startswith("file:") else uri


def _update(root: Path, opts: dict, suite: str, log: Path, progress) -> None:
    """apt-get update of the private lists; one clear error if no mirror delivered the suite."""
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if progress and line.startswith(("Get:", "Hit:", "Ign:")):
            progress.update(f"apt-get update ({suite}): {' '.join(line.split()[1:4])}")

    rc = proc.run(_apt("apt-get", root, opts) + ["update"], log, on_line=on_line, check=False)
    errors = _apt_errors(lines)
    mirrors = [u for line in (root / "kharness.sources").read_text().splitlines()
               if line.startswith("URIs:") for u in line.split()[1:]]
    failed = {_norm_uri(e.split()[1]) for e in errors if e.startswith("Err:") and len(e.split()) > 1}
    ok = [m for m in mirrors if _norm_uri(m) not in failed]
    if ok and _lists_for(root, suite):
        # At least one mirror serves the suite (a second one without it is not fatal).
        (root / "state" / "kharness-updated").write_text(f"{time.time()}\n")
        return
    mirror = mirrors[0] if mirrors else "the host's mirror"
    for e in errors:
        if "does not have a Release file" in e or re.search(r"\b404\b|File not found", e):
            raise UserError(f"{KEY}: no Debian suite {suite!r} on {mirror} "
                            f"(try {_suite_hint(host_codename())})")
    for e in errors:
        if "NO_PUBKEY" in e or "not signed" in e or "signatures were invalid" in e or "EXPKEYSIG" in e:
            raise InfraError(f"{KEY}: the {suite} Release file on {mirror} is not signed by a key this host "
                             f"trusts ({e[:160]}); update the host's debian-archive-keyring. Log: {log}")
    first = next((e for e in errors if e.startswith("Err:")), None)
    reason = first.split(": ", 1)[1] if first and ": " in first else (first or next(iter(errors), f"exit {rc}"))
    raise InfraError(f"{KEY}: cannot fetch the Debian {suite} package lists from {mirror}: {reason[:200]} "
                     f"(log: {log})")


@dataclass(frozen=True)
class _Candidate:
    version: str
    uri: str
    filename: str
    size: int
    hash: str


_URI_LINE = re.compile(r"^'(?P<uri>[^']+)'\s+(?P<file>\S+)\s+(?P<size>\d+)\s*(?P<hash>\S*)")


def _candidate(package: str, suite: str, version: str | None, root: Path, opts: dict, log: Path) -> _Candidate:
    spec = f"{package}={version}" if version else package
    lines: list[str] = []
    rc = proc.run(_apt("apt-get", root, opts) + ["download", "--print-uris", spec], log,
                  on_line=lines.append, check=False)
    for line in lines:
        if m := _URI_LINE.match(line):
            fname = m["file"]
            parts = fname.removesuffix(".deb").split("_")
            ver = urllib.parse.unquote(parts[1]) if len(parts) >= 3 else (version or "")
            return _Candidate(ver, m["uri"], fname, int(m["size"]), m["hash"])
    errors = [e for e in _apt_errors(lines) if e.startswith("E:")]
    if version and any("was not found" in e for e in errors):
        raise UserError(f"{KEY}: {package} version {version!r} is not in Debian {suite}"
                        f"{_available_versions(package, root, opts)}")
    if errors or rc != 0:
        raise UserError(f"{KEY}: no package {package!r} in Debian {suite}{_similar(package, root, opts)}")
    raise InfraError(f"{KEY}: apt-get download --print-uris {spec} printed no URI (log: {log})")


def _similar(package: str, root: Path, opts: dict) -> str:
    prefix = re.sub(r"[-.0-9]+$", "", package) or package
    try:
        names = sorted(set(proc.capture(_apt("apt-cache", root, opts) + ["pkgnames", prefix]).split()))
    except InfraError:
        return ""
    names = [n for n in names if re.match(re.escape(prefix) + r"-[0-9.]+$", n)] or names[:8]
    return f" (it has: {', '.join(names[:8])})" if names else ""


def _available_versions(package: str, root: Path, opts: dict) -> str:
    try:
        out = proc.capture(_apt("apt-cache", root, opts) + ["madison", package])
    except InfraError:
        return ""
    vers = [line.split("|")[1].strip() for line in out.splitlines() if line.count("|") >= 2]
    return f" (it has: {', '.join(vers)})" if vers else ""


def _load(d: Path) -> DebianSource | None:
    try:
        meta = json.loads((d / "deb.json").read_text())
        tarball = d / meta["tarball"]
        if not tarball.is_file():
            return None
        return DebianSource(meta["package"], meta["version"], tarball, meta["suite"], meta["deb_sha256"],
                            meta.get("deb_uri", ""))
    except (OSError, ValueError, KeyError):
        return None


def _read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(p: Path, data: dict) -> None:
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, p)


def _watch(directory: Path, total: int, progress, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            got = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        except OSError:
            continue
        progress.update(f"downloading {got / 1e6:.0f}/{total / 1e6:.0f} MB")


def _download(package: str, suite: str, cand: _Candidate, root: Path, opts: dict, log: Path,
              progress) -> DebianSource:
    with cache.publishing(f"debian/{suite}/{package}", cand.version) as tmp:
        dl = tmp / "download"
        dl.mkdir()
        stop = threading.Event()
        watcher = None
        if progress:
            progress.update(f"downloading {cand.filename} ({cand.size / 1e6:.0f} MB)")
            watcher = threading.Thread(target=_watch, args=(dl, cand.size, progress, stop), daemon=True)
            watcher.start()
        try:
            lines: list[str] = []
            rc = proc.run(_apt("apt-get", root, opts) + ["download", f"{package}={cand.version}"], log,
                          cwd=dl, on_line=lines.append, check=False)
        finally:
            stop.set()
            if watcher:
                watcher.join()
        debs = list(dl.glob("*.deb"))
        if rc != 0 or len(debs) != 1:
            err = next((e for e in _apt_errors(lines) if e.startswith(("Err:", "E:"))), f"exit {rc}")
            raise InfraError(f"{KEY}: downloading {cand.filename} from {cand.uri.rsplit('/pool/', 1)[0]} failed: "
                             f"{err[:200]} (log: {log})")
        deb = debs[0]
        sha = cache.file_digest(deb)
        if cand.hash.lower().startswith("sha256:") and cand.hash.split(":", 1)[1].lower() != sha:
            raise InfraError(f"{KEY}: {deb.name} has sha256 {sha}, the signed index says {cand.hash} (log: {log})")
        if progress:
            progress.update(f"extracting {deb.name}")
        x = tmp / "extract"
        proc.run(["dpkg-deb", "-x", deb, x], log)
        found = sorted((x / "usr" / "src").glob("linux-source-*.tar.*"))
        exact = [p for p in found if p.name.startswith(f"{package}.tar.")]
        tarball = (exact or found or [None])[0]
        if tarball is None:
            raise UserError(f"{KEY}: {package} {cand.version} holds no usr/src/linux-source-*.tar.* "
                            f"(not a kernel source package)")
        os.replace(tarball, tmp / tarball.name)
        shutil.rmtree(x)
        shutil.rmtree(dl)
        _write_json(tmp / "deb.json", {
            "package": package, "version": cand.version, "suite": suite, "deb_sha256": sha,
            "deb_size": deb.stat().st_size if deb.exists() else cand.size, "deb_uri": cand.uri,
            "deb_file": cand.filename, "tarball": tarball.name, "fetched_at": time.time()})
    loaded = _load(cache.entry(f"debian/{suite}/{package}", cand.version))
    if loaded is None:
        raise InfraError(f"{KEY}: {package} {cand.version} was fetched but its cache entry is unreadable")
    return loaded


def cached(package: str, suite: str, version: str | None = None,
           max_age: float = REFRESH_SECONDS) -> DebianSource | None:
    """What fetch() would return without any apt call, or None if it needs the mirror.

    Lets a caller show a progress line only when something is going to happen.
    """
    _check_names(package, suite)
    pkgdir = cache.entry("debian", f"{suite}/{package}")
    if version:
        return _load(pkgdir / version)
    r = _read_json(pkgdir / "resolved.json")
    if r.get("version") and time.time() - float(r.get("resolved_at", 0)) < max_age:
        return _load(pkgdir / r["version"])
    return None


def fetch(package: str, suite: str, log: Path, progress=None, *, version: str | None = None,
          max_age: float = REFRESH_SECONDS, host_sources: list[AptSource] | None = None) -> DebianSource:
    """The kernel tarball of Debian package `package` in `suite`, downloaded once into the cache.

    Without `version` the suite's current candidate is used; which version that is gets
    re-checked against the mirror at most every `max_age` seconds (in between, no apt call
    is made). If the mirror cannot be reached but a version was fetched before, that one is
    used with a warning. `progress` is a ui.Progress (or anything with update(str)).
    """
    if hit := cached(package, suite, version, max_age):
        return hit
    pkgdir = cache.entry("debian", f"{suite}/{package}")
    resolved_file = pkgdir / "resolved.json"
    with cache.locked(f"debian-{suite}"):
        if hit := cached(package, suite, version, max_age):     # another run resolved it while we waited
            return hit
        root = cache.entry("debian", f"{suite}/_apt")
        old_sources = _read_text(root / "kharness.sources")
        opts = private_apt_config(suite, root, host_sources)
        stamp = root / "state" / "kharness-updated"
        stale = (not stamp.exists() or time.time() - stamp.stat().st_mtime >= max_age
                 or old_sources != _read_text(root / "kharness.sources") or not _lists_for(root, suite))
        try:
            if stale:
                _update(root, opts, suite, log, progress)
        except UserError:
            if not any(p.name != "_apt" for p in root.parent.iterdir()):
                shutil.rmtree(root.parent, ignore_errors=True)    # an unknown suite leaves nothing behind
            raise
        except InfraError as e:
            previous = _read_json(resolved_file).get("version")
            if (old := _load(pkgdir / (version or previous or "-"))) is not None:
                ui.warn(f"{e}; using the {package} {old.version} fetched before")
                return old
            raise
        if progress:
            progress.update(f"resolving {package} in {suite}")
        cand = _candidate(package, suite, version, root, opts, log)
        got = _load(pkgdir / cand.version) or _download(package, suite, cand, root, opts, log, progress)
        if not version:
            pkgdir.mkdir(parents=True, exist_ok=True)
            _write_json(resolved_file, {"version": cand.version, "resolved_at": time.time(), "deb_uri": cand.uri})
        return got


def _read_text(p: Path) -> str | None:
    try:
        return p.read_text()
    except OSError:
        return None
