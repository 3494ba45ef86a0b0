"""kernel.debian: host apt sources parsed, the private apt root, fetch against a local file:// archive.

Only test_fetch_linux_source_7_2_from_sid (e2e) touches the network.
"""
import email.utils
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from kharness import debsrc, proc
from kharness.debsrc import AptSource
from kharness.errors import InfraError, UserError

# Modeled on this machine's /etc/apt/sources.list.d (a stock Debian 12 image plus two vendor repos),
# with a different mirror to show that the host's mirror is used, whatever it is.
DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://ftp.de.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://ftp.de.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
NODESOURCE_SOURCES = """\
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/nodesource.gpg
"""
GOOGLE_LIST = "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def host_etc(tmp_path, sources_list=None, parts=None):
    etc = tmp_path / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    if sources_list is not None:
        (etc / "sources.list").write_text(sources_list)
    for name, text in (parts or {}).items():
        (etc / "sources.list.d" / name).write_text(text)
    return etc / "sources.list", etc / "sources.list.d"


def tree(path: Path, skip: Path | None = None) -> dict:
    """Every file and directory below path (except below skip) with size and mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        if skip and Path(dirpath).resolve().is_relative_to(skip.resolve()):
            continue
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


# ---------------------------------------------------------------- parsing

def test_host_deb822_like_this_machine(tmp_path):
    sl, parts = host_etc(tmp_path, parts={
        "debian.sources": DEBIAN_SOURCES,
        "nodesource.sources": NODESOURCE_SOURCES,
        "google-cloud-sdk.list": GOOGLE_LIST,
        "nodesource.sources.disabled-by-farm": NODESOURCE_SOURCES.replace("nodesource", "other"),
    })
    everything = debsrc.parse_sources(sl, parts)
    assert len(everything) == 4                       # the .disabled-by-farm file is not read, as in apt
    got = debsrc.host_debian_sources(sl, parts, codename="bookworm")
    assert [(s.uris, s.suites) for s in got] == [
        (("http://ftp.de.debian.org/debian",), ("bookworm", "bookworm-updates")),
        (("http://ftp.de.debian.org/debian-security",), ("bookworm-security",))]
    assert got[0].option("signed-by") == KEYRING
    assert got[0].origin.endswith("debian.sources:1") and got[1].origin.endswith("debian.sources:8")


def test_host_one_line_format(tmp_path):
    sl, parts = host_etc(tmp_path, sources_list="""\
# a comment line
deb http://mirror.example.org/debian/ bookworm main contrib non-free-firmware
deb-src http://mirror.example.org/debian/ bookworm main
deb http://security.debian.org/debian-security bookworm-security main   # trailing comment
deb [arch=amd64,i386 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.org/debian bookworm-updates main
deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian bookworm stable
deb [signed-by=/usr/share/keyrings/deb.sury.org-php.gpg] https://packages.sury.org/php/ bookworm main
deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main
deb cdrom:[Debian_GNU/Linux_12]/ bookworm main
""", parts={"google-cloud-sdk.list": GOOGLE_LIST})
    got = debsrc.host_debian_sources(sl, parts, codename="bookworm")
    assert [(s.uris[0], s.suites[0]) for s in got] == [
        ("http://mirror.example.org/debian/", "bookworm"),
        ("http://security.debian.org/debian-security", "bookworm-security"),
        ("http://mirror.example.org/debian", "bookworm-updates")]
    assert got[0].components == ("main", "contrib", "non-free-firmware")
    assert dict(got[2].options) == {"Architectures": "amd64 i386", "Signed-By": KEYRING}


def test_deb822_enabled_no_and_multiline_fields(tmp_path):
    sl, parts = host_etc(tmp_path, parts={"x.sources": """\
Enabled: no
Types: deb
URIs: http://old.example.org/debian
Suites: bookworm
Components: main

Types: deb deb-src
URIs: http://a.example.org/debian
  http://b.example.org/debian
Suites: trixie
Components: main
"""})
    got = debsrc.host_debian_sources(sl, parts, codename="bookworm")
    assert len(got) == 1
    assert got[0].uris == ("http://a.example.org/debian", "http://b.example.org/debian")


def test_private_sources_swap_the_suite_and_drop_side_suites(tmp_path):
    sl, parts = host_etc(tmp_path, parts={"debian.sources": DEBIAN_SOURCES, "google-cloud-sdk.list": GOOGLE_LIST})
    host = debsrc.host_debian_sources(sl, parts, codename="bookworm")
    priv = debsrc.private_sources("sid", host)
    assert len(priv) == 1                               # debian-security (bookworm-security only) dropped
    s = priv[0]
    assert s.uris == ("http://ftp.de.debian.org/debian",)
    assert s.suites == ("sid",)                         # bookworm -> sid; bookworm-updates gone
    assert s.option("Signed-By") == KEYRING             # the host's trusted keyring
    assert s.option("Targets") == "Packages"
    text = debsrc.render_deb822(priv)
    assert "bookworm" not in text.replace(str(sl.parent), "")
    assert "Suites: sid\n" in text and "nodesource" not in text and "google" not in text
    # and it reads back as the same entry
    (tmp_path / "back.sources").write_text(text)
    back = debsrc.parse_sources(tmp_path / "none", tmp_path)
    assert [(b.uris, b.suites, b.components) for b in back] == [(s.uris, s.suites, s.components)]


def test_private_apt_config_writes_only_under_root(tmp_path):
    sl, parts = host_etc(tmp_path, parts={"debian.sources": DEBIAN_SOURCES})
    host = debsrc.host_debian_sources(sl, parts, codename="bookworm")
    root = tmp_path / "cache" / "debian" / "sid" / "_apt"
    watched = [Path("/etc/apt"), Path("/var/lib/apt/lists"), Path("/var/cache/apt")]
    before = tree(tmp_path), {str(w): tree(w) for w in watched if w.is_dir()}
    opts = debsrc.private_apt_config("sid", root, host)
    after = tree(tmp_path, skip=root)
    # outside root: only root itself and the directories leading to it are new; nothing else changed
    assert set(after) - set(before[0]) == {str(tmp_path / "cache"), str(tmp_path / "cache/debian"),
                                           str(tmp_path / "cache/debian/sid"), str(root)}
    assert {k: after[k] for k in before[0]} == before[0]
    assert {str(w): tree(w) for w in watched if w.is_dir()} == before[1]
    for key in ("Dir::State", "Dir::State::status", "Dir::Cache", "Dir::Etc::SourceList", "Dir::Etc::SourceParts",
                "Dir::Etc::Preferences", "Dir::Etc::PreferencesParts", "Dir::Log"):
        assert Path(opts[key]).resolve().is_relative_to(root.resolve()), key
    assert (root / "state" / "status").read_text() == ""              # no host packages in play
    assert list((root / "sources.list.d").iterdir()) == []
    assert "Suites: sid" in Path(opts["Dir::Etc::SourceList"]).read_text()
    conf = (root / "apt.conf").read_text()
    assert "#clear APT::Update::Post-Invoke-Success;" in conf and f'Dir::State "{root}/state";' in conf
    # idempotent: a second call rewrites nothing
    mtimes = tree(root)
    assert debsrc.private_apt_config("sid", root, host) == opts
    assert tree(root) == mtimes


def test_no_debian_source_on_the_host(tmp_path):
    sl, parts = host_etc(tmp_path, parts={"nodesource.sources": NODESOURCE_SOURCES,
                                          "google-cloud-sdk.list": GOOGLE_LIST})
    host = debsrc.host_debian_sources(sl, parts, codename="bookworm")
    assert host == []
    with pytest.raises(UserError, match=r"^kernel.debian: the host's apt sources .* name no Debian archive mirror"):
        debsrc.private_apt_config("sid", tmp_path / "root", host)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("package,suite,msg", [
    ("Linux_Source", "sid", r"kernel.debian.package: 'Linux_Source' is not a Debian package name"),
    ("linux-source-7.2", "../etc", r"kernel.debian.suite: '../etc' is not a Debian suite name"),
])
def test_bad_names(tmp_cache, package, suite, msg):
    with pytest.raises(UserError, match=msg):
        debsrc.fetch(package, suite, tmp_cache / "log")


# ---------------------------------------------------------------- fetch against a local archive

needs_apt = pytest.mark.skipif(not (shutil.which("apt-get") and shutil.which("dpkg-deb")),
                               reason="needs apt-get and dpkg-deb (a Debian host)")


class LocalArchive:
    """A tiny unsigned Debian archive under file://, trusted through the entry's `Trusted: yes`."""

    def __init__(self, base: Path):
        self.base = base
        self.arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()

    @property
    def uri(self) -> str:
        return f"file://{self.base}"

    def host_sources(self, uri=None) -> list[AptSource]:
        return [AptSource(("deb",), (uri or self.uri,), ("bookworm", "bookworm-updates"), ("main",),
                          (("Trusted", "yes"),), "test")]

    def publish(self, suite: str, packages: dict[str, str]) -> None:
        stanzas = []
        for pkg, ver in packages.items():
            deb = self._build_deb(pkg, ver)
            data = deb.read_bytes()
            stanzas.append(f"Package: {pkg}\nVersion: {ver}\nArchitecture: all\nMaintainer: t <t@example.org>\n"
                           f"Filename: {deb.relative_to(self.base)}\nSize: {len(data)}\n"
                           f"SHA256: {hashlib.sha256(data).hexdigest()}\nDescription: test kernel source\n")
        d = self.base / "dists" / suite
        pk = d / "main" / f"binary-{self.arch}" / "Packages"
        pk.parent.mkdir(parents=True, exist_ok=True)
        pk.write_text("\n".join(stanzas))
        raw = pk.read_bytes()
        (d / "Release").write_text(
            f"Origin: Test\nSuite: {suite}\nCodename: {suite}\nArchitectures: {self.arch}\nComponents: main\n"
            f"Date: {email.utils.formatdate(usegmt=True)}\nSHA256:\n"
            f" {hashlib.sha256(raw).hexdigest()} {len(raw)} main/binary-{self.arch}/Packages\n")

    def _build_deb(self, pkg: str, ver: str) -> Path:
        work = self.base / "build" / f"{pkg}-{ver}"
        src = work / "src" / pkg
        src.mkdir(parents=True)
        (src / "Makefile").write_text(f"VERSION = {ver}\n")
        root = work / "root"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "usr" / "src").mkdir(parents=True)
        with tarfile.open(root / "usr" / "src" / f"{pkg}.tar.xz", "w:xz") as t:
            t.add(src, arcname=pkg)
        (root / "DEBIAN" / "control").write_text(
            f"Package: {pkg}\nVersion: {ver}\nArchitecture: all\nMaintainer: t <t@example.org>\n"
            f"Description: test kernel source\n")
        deb = self.base / "pool" / "main" / f"{pkg}_{ver}_all.deb"
        deb.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(root), str(deb)], check=True,
                       capture_output=True)
        return deb


@pytest.fixture
def archive(tmp_path):
    a = LocalArchive(tmp_path / "mirror")
    a.publish("sid", {"linux-source-9.9": "9.9.1-1"})
    return a


def no_subprocess(*a, **kw):
    raise AssertionError(f"unexpected subprocess {a[0] if a else kw}")


@needs_apt
def test_fetch_from_local_archive_then_cached(tmp_cache, archive, tmp_path, monkeypatch):
    log = tmp_path / "fetch.log"
    got = debsrc.fetch("linux-source-9.9", "sid", log, host_sources=archive.host_sources())
    assert got.version == "9.9.1-1" and got.suite == "sid" and got.package == "linux-source-9.9"
    assert got.tarball == tmp_cache / "debian/sid/linux-source-9.9/9.9.1-1/linux-source-9.9.tar.xz"
    with tarfile.open(got.tarball) as t:
        assert "linux-source-9.9/Makefile" in t.getnames()
    deb = archive.base / "pool/main/linux-source-9.9_9.9.1-1_all.deb"
    assert got.deb_sha256 == hashlib.sha256(deb.read_bytes()).hexdigest()
    assert got.description()["version"] == "9.9.1-1"
    # only the tarball and its record are kept (no .deb, no extraction leftovers)
    assert sorted(p.name for p in got.tarball.parent.iterdir()) == ["deb.json", "linux-source-9.9.tar.xz"]
    assert "update" in log.read_text() and "download linux-source-9.9=9.9.1-1" in log.read_text()
    assert debsrc.cached("linux-source-9.9", "sid") == got
    assert debsrc.cached("linux-source-9.9", "sid", max_age=0) is None      # would ask the mirror again
    assert debsrc.cached("linux-source-9.9", "sid", version="9.9.1-1") == got
    assert debsrc.cached("linux-source-9.9", "trixie") is None
    # second call: answered from the cache without any apt call
    monkeypatch.setattr(proc, "run", no_subprocess)
    monkeypatch.setattr(proc, "capture", no_subprocess)
    t0 = time.monotonic()
    assert debsrc.fetch("linux-source-9.9", "sid", log, host_sources=archive.host_sources()) == got
    assert time.monotonic() - t0 < 0.5


@needs_apt
def test_fetch_follows_a_new_version_after_max_age(tmp_cache, archive, tmp_path):
    log = tmp_path / "fetch.log"
    first = debsrc.fetch("linux-source-9.9", "sid", log, host_sources=archive.host_sources())
    archive.publish("sid", {"linux-source-9.9": "9.9.2-1"})
    assert debsrc.fetch("linux-source-9.9", "sid", log, host_sources=archive.host_sources()) == first
    second = debsrc.fetch("linux-source-9.9", "sid", log, max_age=0, host_sources=archive.host_sources())
    assert second.version == "9.9.2-1" and second.tarball != first.tarball
    # a pinned version that the mirror no longer has is still answered from the cache
    assert debsrc.fetch("linux-source-9.9", "sid", log, version="9.9.1-1",
                        host_sources=archive.host_sources()) == first


@needs_apt
def test_unknown_package(tmp_cache, archive, tmp_path):
    with pytest.raises(UserError, match=r"^kernel.debian: no package 'linux-source-9.8' in Debian sid "
                                        r"\(it has: linux-source-9.9\)$"):
        debsrc.fetch("linux-source-9.8", "sid", tmp_path / "log", host_sources=archive.host_sources())


@needs_apt
def test_unknown_version(tmp_cache, archive, tmp_path):
    with pytest.raises(UserError, match=r"^kernel.debian: linux-source-9.9 version '9.9.0-1' is not in Debian sid "
                                        r"\(it has: 9.9.1-1\)$"):
        debsrc.fetch("linux-source-9.9", "sid", tmp_path / "log", version="9.9.0-1",
                     host_sources=archive.host_sources())


@needs_apt
def test_unknown_suite_leaves_nothing(tmp_cache, archive, tmp_path):
    with pytest.raises(UserError, match=rf"^kernel.debian: no Debian suite 'nosuch' on {re.escape(archive.uri)} "
                                        r"\(try sid, "):
        debsrc.fetch("linux-source-9.9", "nosuch", tmp_path / "log", host_sources=archive.host_sources())
    assert not (tmp_cache / "debian" / "nosuch").exists()


@pytest.fixture
def no_retries(monkeypatch):
    """apt retries a refused connection 3 times with back-off (7 s); once is enough here."""
    orig = debsrc._apt
    monkeypatch.setattr(debsrc, "_apt", lambda *a: orig(*a) + ["-o", "Acquire::Retries=0"])


@needs_apt
def test_unreachable_mirror(tmp_cache, archive, tmp_path, no_retries):
    dead = archive.host_sources("http://127.0.0.1:9/debian")
    with pytest.raises(InfraError, match=r"^kernel.debian: cannot fetch the Debian sid package lists from "
                                         r"http://127.0.0.1:9/debian: Could not connect"):
        debsrc.fetch("linux-source-9.9", "sid", tmp_path / "log", host_sources=dead)


@needs_apt
def test_unreachable_mirror_reuses_what_was_fetched(tmp_cache, archive, tmp_path, no_retries):
    got = debsrc.fetch("linux-source-9.9", "sid", tmp_path / "log", host_sources=archive.host_sources())
    dead = archive.host_sources("http://127.0.0.1:9/debian")
    assert debsrc.fetch("linux-source-9.9", "sid", tmp_path / "log", max_age=0, host_sources=dead) == got


# ---------------------------------------------------------------- the real thing

@pytest.mark.e2e
def test_fetch_linux_source_7_2_from_sid(tmp_path):
    """What CI does: the real package from the host's Debian mirror, into the real cache."""
    if not shutil.which("apt-get"):
        pytest.skip("needs apt-get (a Debian host)")
    try:
        got = debsrc.fetch("linux-source-7.2", "sid", tmp_path / "fetch.log")
    except InfraError as e:
        if "cannot fetch the Debian sid package lists" in str(e):
            pytest.skip(f"Debian mirror not reachable: {e}")
        raise
    assert re.fullmatch(r"7\.2\.\d+-\d+(\S*)", got.version), got.version
    assert got.tarball.is_file() and got.tarball.name == "linux-source-7.2.tar.xz"
    assert re.fullmatch(r"[0-9a-f]{64}", got.deb_sha256)
    names = subprocess.run(["tar", "-tf", str(got.tarball)], capture_output=True, text=True, check=True).stdout
    assert "linux-source-7.2/Makefile" in names.splitlines()
