"""Fast tests of the image recipe and cache logic (no network, no debootstrap run)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kharness import cache, image
from kharness.config import ImageConfig
from kharness.errors import InfraError, UserError

REAL_KVM = image.KVM_DIR


@pytest.fixture
def kvm(tmp_path, monkeypatch):
    """A private copy of kvm/ that the module hashes instead of the repository's."""
    d = tmp_path / "kvm"
    d.mkdir()
    for name in image.RECIPE_FILES:
        shutil.copy(REAL_KVM / name, d / name)
    monkeypatch.setattr(image, "KVM_DIR", d)
    return d


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("KHARNESS_CACHE", str(d))
    return d


def cfg(**kw):
    kw.setdefault("suite", "bookworm")
    return ImageConfig(**kw)


# --- key ---------------------------------------------------------------------------------

def test_key_is_stable(kvm):
    assert image.image_key(cfg()) == image.image_key(cfg())
    assert len(image.image_key(cfg())) == 64


@pytest.mark.parametrize("name", image.RECIPE_FILES)
def test_key_changes_with_each_recipe_file(kvm, name):
    before = image.image_key(cfg())
    with open(kvm / name, "a") as f:
        f.write("\n# edited\n")
    assert image.image_key(cfg()) != before


def test_key_ignores_other_files_in_kvm(kvm):
    before = image.image_key(cfg())
    (kvm / "qemu-defaults.yaml").write_text("memory: 4G\n")
    (kvm / "README").write_text("notes\n")
    assert image.image_key(cfg()) == before


def test_key_changes_with_recipe_version(kvm, monkeypatch):
    before = image.image_key(cfg())
    monkeypatch.setattr(image, "RECIPE_VERSION", image.RECIPE_VERSION + "-next")
    assert image.image_key(cfg()) != before


@pytest.mark.parametrize("change", [
    {"suite": "trixie"},
    {"mirror": "http://mirror.example/debian"},
    {"size": "3G"},
])
def test_key_changes_with_config(kvm, change):
    assert image.image_key(cfg(**change)) != image.image_key(cfg())


def test_key_unmoved_by_unrelated_config(kvm):
    # mirror None and "" both mean debootstrap's default
    assert image.image_key(cfg(mirror=None)) == image.image_key(cfg(mirror=""))


def test_default_suite_is_the_hosts(kvm, tmp_path, monkeypatch):
    rel = tmp_path / "os-release"
    rel.write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_CODENAME=trixie\nID=debian\n')
    monkeypatch.setattr(image, "OS_RELEASE", rel)
    assert image.resolve_suite(ImageConfig()) == "trixie"
    assert image.image_key(ImageConfig()) == image.image_key(cfg(suite="trixie"))


def test_no_host_codename_is_a_user_error(tmp_path, monkeypatch):
    rel = tmp_path / "os-release"
    rel.write_text('ID=something\nNAME="Something"\n')
    monkeypatch.setattr(image, "OS_RELEASE", rel)
    with pytest.raises(UserError, match="image.suite"):
        image.resolve_suite(ImageConfig())


def test_missing_recipe_file_is_a_user_error(kvm):
    (kvm / "init").unlink()
    with pytest.raises(UserError, match="init"):
        image.image_key(cfg())


# --- packages.txt --------------------------------------------------------------------------

def test_parse_packages_comments_blanks_duplicates():
    text = """# a comment
openssh-server
   xfsprogs   # inline comment

# another
fio
libstdc++6
xfsprogs
"""
    assert image.parse_packages(text) == ["openssh-server", "xfsprogs", "fio", "libstdc++6"]


def test_parse_packages_rejects_two_names_on_a_line():
    with pytest.raises(UserError, match=r"packages.txt:3: 'fio bc'"):
        image.parse_packages("# x\nacl\nfio bc\n")


def test_parse_packages_rejects_empty():
    with pytest.raises(UserError, match="no packages"):
        image.parse_packages("# nothing\n\n")


def test_real_package_list():
    pkgs = image.parse_packages((REAL_KVM / "packages.txt").read_text())
    for must in ("openssh-server", "e2fsprogs", "xfsprogs", "util-linux", "procps", "iproute2",
                 "fio", "bash", "gawk", "bc", "attr", "acl", "psmisc", "coreutils"):
        assert must in pkgs
    for build_tool in ("gcc", "make", "build-essential", "libc6-dev", "autoconf", "automake"):
        assert build_tool not in pkgs
    assert not any(p.endswith("-dev") for p in pkgs)


# --- init and sshd_config ------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["sh", "bash", "dash"])
def test_init_syntax(shell):
    if not shutil.which(shell):
        pytest.skip(f"{shell} not installed")
    res = subprocess.run([shell, "-n", str(REAL_KVM / "init")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_init_contract():
    text = (REAL_KVM / "init").read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "KHARNESS-READY" in text
    assert "10.0.2.15/24" in text and "10.0.2.2" in text
    assert "/run/sshd" in text and "/usr/sbin/sshd" in text
    # Boot speed under TCG (a fork+exec costs ~0.1 s): sshd starts first, without a re-exec per
    # login; one mount(8) for every pseudo filesystem; one cp for the /dev links.
    code = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    sshd = next(i for i, ln in enumerate(code) if ln.startswith("/usr/sbin/sshd -D"))
    assert "-r" in code[sshd].split()
    assert sshd < next(i for i, ln in enumerate(code) if ln.startswith("mount -a"))
    assert sum(ln.startswith("mount ") for ln in code) <= 3     # mount -a, and two fallbacks
    assert not any(ln.startswith(("ln ", "[ -e /dev/fd ] || ln")) for ln in code)
    # PID 1 ends in an endless loop, never falls off the end
    assert text.rstrip().endswith("done")
    assert "while :; do" in text


def test_sshd_config_contract():
    opts = {}
    for line in (REAL_KVM / "sshd_config").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            k, _, v = line.partition(" ")
            opts[k.lower()] = v.strip()
    assert opts["permitrootlogin"] == "prohibit-password"
    assert opts["passwordauthentication"] == "no"
    assert opts["usedns"] == "no"
    assert opts["hostkey"] == "/etc/ssh/ssh_host_ed25519_key"
    assert opts["subsystem"] == "sftp internal-sftp"
    assert int(opts["maxsessions"]) >= 64


# --- cache hits and failures ---------------------------------------------------------------

def _fake_entry(key: str, suite="bookworm") -> Path:
    d = cache.entry(image.KIND, key)
    d.mkdir(parents=True)
    (d / image.ROOTFS).write_bytes(b"")
    (d / image.CLIENT_KEY).write_text("key")
    os.chmod(d / image.CLIENT_KEY, 0o644)
    (d / image.IMAGE_JSON).write_text(json.dumps({
        "key": key, "suite": suite, "host_key_pub": "ssh-ed25519 AAAAtest",
        "recipe_files": list(image.RECIPE_FILES)}))
    return d


def test_load_image_absent_or_incomplete(cache_dir):
    assert image.load_image("0" * 64) is None
    d = cache.entry(image.KIND, "1" * 64)
    d.mkdir(parents=True)
    (d / image.ROOTFS).write_bytes(b"")
    assert image.load_image("1" * 64) is None        # no image.json: not complete


def test_cache_hit_does_not_build(kvm, cache_dir, monkeypatch, tmp_path):
    key = image.image_key(cfg())
    d = _fake_entry(key)

    def boom(*a, **k):
        raise AssertionError("a cache hit must not run anything")
    monkeypatch.setattr(image.proc, "run", boom)
    art, hit = image.build_image(cfg(), tmp_path / "log")
    assert hit is True
    assert art == image.ImageArtifact(path=d / image.ROOTFS, host_key_pub="ssh-ed25519 AAAAtest",
                                      client_key=d / image.CLIENT_KEY, key=key, suite="bookworm",
                                      recipe_files=image.RECIPE_FILES)
    assert (d / image.CLIENT_KEY).stat().st_mode & 0o777 == 0o600


def test_unknown_suite_is_a_user_error(kvm, cache_dir, tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for s in ("bookworm", "trixie", "sid"):
        (scripts / s).write_text("")
    monkeypatch.setattr(image, "DEBOOTSTRAP_SCRIPTS", scripts)
    with pytest.raises(UserError, match="bookwrom.*bookworm"):
        image.build_image(cfg(suite="bookwrom"), tmp_path / "log")


def test_debootstrap_failure_is_an_infra_error_with_the_reason(kvm, cache_dir, tmp_path, monkeypatch):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "bookworm").write_text("")
    monkeypatch.setattr(image, "DEBOOTSTRAP_SCRIPTS", scripts)
    monkeypatch.setattr(image, "_is_root", lambda: True)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "debootstrap").write_text(
        "#!/bin/sh\n"
        "echo 'I: Retrieving InRelease'\n"
        "echo 'E: Failed getting release file http://deb.debian.org/debian/dists/bookworm/InRelease'\n"
        "echo '...'\n"
        "exit 1\n")
    os.chmod(fake / "debootstrap", 0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    log = tmp_path / "image.log"
    log.write_text("E: an older failure of another command\n")
    stale = cache.entry(image.KIND, image.image_key(cfg())).parent / f".{image.image_key(cfg())[:16]}.dead"
    (stale / "root/etc").mkdir(parents=True)          # left by a build killed with SIGKILL
    seen = []
    with pytest.raises(InfraError) as ei:
        image.build_image(cfg(), log, progress=seen.append)
    msg = str(ei.value)
    assert "E: Failed getting release file" in msg and str(log) in msg
    assert "\n" not in msg
    assert "debootstrap: Retrieving InRelease" in seen
    # nothing half-written in the cache
    images = cache_dir / image.KIND
    assert not any(images.iterdir())


def test_last_meaningful_line():
    text = ("$ debootstrap --variant=minbase bookworm /x\nI: Retrieving InRelease\n"
            "W: some warning\nE: Couldn't download packages: fio\n\n[exit 1]\n")
    assert image.last_meaningful_line(text) == "E: Couldn't download packages: fio"
    assert image.last_meaningful_line("I: a\nboom\n[exit 2]\n") == "boom"
    assert image.last_meaningful_line("") == "no output"


def test_pub_line():
    assert image._pub_line("ssh-ed25519 AAAAC3Nza root@kharness\n") == "ssh-ed25519 AAAAC3Nza"
    with pytest.raises(InfraError):
        image._pub_line("garbage")


# --- the tree customisation (no debootstrap: a skeleton of what it leaves) -----------------

def test_in_keeps_paths_inside_the_tree(tmp_path):
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "sbin").symlink_to("usr/sbin")              # merged /usr: relative, stays inside
    assert image._in(root, "sbin/kharness-init") == (root / "usr/sbin/kharness-init").resolve()
    (root / "etc").mkdir()
    (root / "etc/evil").symlink_to("/usr/bin")           # absolute: would write on the host
    with pytest.raises(InfraError, match="outside the image tree"):
        image._in(root, "etc/evil/x")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ssh-keygen"), reason="needs root and ssh-keygen")
def test_customize_skeleton(tmp_path):
    root, entry = tmp_path / "root", tmp_path / "entry"
    entry.mkdir()
    for d in ("usr/sbin", "etc/ssh", "root", "var/cache/apt/archives/partial",
              "var/lib/apt/lists/partial", "run", "mnt"):
        (root / d).mkdir(parents=True)
    (root / "sbin").symlink_to("usr/sbin")
    (root / "etc/ssh/ssh_host_rsa_key").write_text("old")
    (root / "etc/ssh/ssh_host_rsa_key.pub").write_text("old")
    (root / "etc/resolv.conf").write_text("nameserver 192.0.2.1\n")
    (root / "var/cache/apt/archives/fio_3.33_amd64.deb").write_text("x")
    (root / "var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease").write_text("x")
    recipe = {"init": b"#!/bin/sh\n", "sshd_config": b"UsePAM no\n", "packages.txt": b"fio\n"}
    image._customize(root, recipe, entry, tmp_path / "log")

    init = root / "usr/sbin/kharness-init"
    assert init.read_bytes() == b"#!/bin/sh\n" and init.stat().st_mode & 0o777 == 0o755
    assert (root / "etc/ssh/sshd_config").read_bytes() == b"UsePAM no\n"
    hostkeys = sorted(p.name for p in (root / "etc/ssh").glob("ssh_host_*"))
    assert hostkeys == ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    assert (root / "etc/ssh/ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600
    ck = entry / image.CLIENT_KEY
    assert ck.stat().st_mode & 0o777 == 0o600
    ak = root / "root/.ssh/authorized_keys"
    assert ak.read_text() == (entry / "client_key.pub").read_text()
    assert ak.read_text().startswith("ssh-ed25519 ")
    assert ak.stat().st_mode & 0o777 == 0o600
    assert (root / "root/.ssh").stat().st_mode & 0o777 == 0o700
    assert (root / "root").stat().st_mode & 0o777 == 0o700
    assert (root / "etc/hostname").read_text() == "kharness\n"
    assert "192.0.2.1" not in (root / "etc/resolv.conf").read_text()
    assert (root / "mnt/test").is_dir() and (root / "mnt/scratch").is_dir()
    # kvm/init copies these onto devtmpfs with one cp (no ln per link at boot)
    links = {p.name: os.readlink(p) for p in (root / "usr/lib/kharness/dev").iterdir()}
    assert links == {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                     "stderr": "/proc/self/fd/2"}
    assert not list((root / "var/cache/apt/archives").glob("*.deb"))
    assert [p.name for p in (root / "var/lib/apt/lists").iterdir()] == ["partial"]


def test_kill_inside_stops_processes_working_in_the_tree(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    inside = subprocess.Popen(["sleep", "60"], cwd=root / "sub")
    outside = subprocess.Popen(["sleep", "60"], cwd=tmp_path)
    try:
        image._kill_inside(root)
        assert inside.wait(timeout=5) == -9
        assert outside.poll() is None
    finally:
        for p in (inside, outside):
            p.kill()
            p.wait()
