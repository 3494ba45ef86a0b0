"""The guest root filesystem: debootstrap + the kvm/ recipe -> an ext4 image and its keys.

Recipe: kvm/packages.txt (what debootstrap --include's), kvm/init (PID 1, installed
as /sbin/kharness-init), kvm/sshd_config. The image is keyed by a hash of those
files, RECIPE_VERSION (bump it when the build steps below change), the suite,
the mirror and the size, and lives in the cache as images/<key>/:

    rootfs.img      ext4, packed from a directory tree with `mke2fs -d` (never mounted)
    client_key      ed25519 private key (0600) the harness logs in as root with
    client_key.pub
    image.json      the record; written last, so its presence means "complete"

The guest's ssh host key is generated here (never by the guest), and its public
half is kept in image.json so the harness can pin it (paramiko RejectPolicy).
The VM attaches rootfs.img with snapshot=on, so a run never changes the cache.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import cache, proc
from .config import REPO, ImageConfig, size_bytes
from .errors import InfraError, UserError

RECIPE_VERSION = "3"
KVM_DIR = REPO / "kvm"                       # tests point this at a copy
RECIPE_FILES = ("packages.txt", "init", "sshd_config")
DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
OS_RELEASE = Path("/etc/os-release")
KIND = "images"
IMAGE_JSON = "image.json"
CLIENT_KEY = "client_key"
ROOTFS = "rootfs.img"
HOSTNAME = "kharness"
LABEL = "kharness-root"

_PKG_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")

Progress = Callable[[str], None] | None


@dataclass(frozen=True)
class ImageArtifact:
    path: Path              # rootfs.img (ext4, packed with mke2fs -d)
    host_key_pub: str       # "ssh-ed25519 AAAA..." of the guest, pinned by the harness
    client_key: Path        # private key (0600) for root@guest
    key: str                # cache key
    suite: str
    recipe_files: tuple     # names of the kvm/ files hashed into the key


@dataclass(frozen=True)
class ImageExtra:
    """What a suite adds to the base recipe (fstests: its build deps and the built tree)."""
    name: str                               # "fstests"
    packages: tuple[str, ...]               # debootstrap --include'd on top of kvm/packages.txt
    key: str                                # identifies what customize() installs (hashed into the image key)
    customize: Callable[[Path, Path, Callable[[str], None]], None]   # (root, log, say), before packing


# --- recipe ------------------------------------------------------------------------------

def host_suite(os_release: Path | None = None) -> str:
    """The host's Debian release codename (VERSION_CODENAME in /etc/os-release)."""
    path = os_release or OS_RELEASE
    try:
        text = path.read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "VERSION_CODENAME" and value.strip().strip("\"'"):
            return value.strip().strip("\"'")
    raise UserError(f"image.suite: cannot tell the host's Debian release from {path} "
                    "(no VERSION_CODENAME); set `image.suite:` in the config, e.g. bookworm")


def resolve_suite(cfg: ImageConfig) -> str:
    return cfg.suite or host_suite()


def parse_packages(text: str, where: str = "kvm/packages.txt") -> list[str]:
    """Package names, one a line; '#' starts a comment; order kept, duplicates dropped."""
    pkgs: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _PKG_NAME.match(line):
            raise UserError(f"{where}:{n}: {line!r} is not a Debian package name "
                            "(one name per line, '#' for comments)")
        if line not in pkgs:
            pkgs.append(line)
    if not pkgs:
        raise UserError(f"{where}: lists no packages (needs at least openssh-server)")
    return pkgs


def _recipe_bytes() -> dict[str, bytes]:
    out = {}
    for name in RECIPE_FILES:
        p = KVM_DIR / name
        try:
            out[name] = p.read_bytes()
        except OSError as e:
            raise UserError(f"{p}: image recipe file missing or unreadable ({e.strerror}); "
                            f"kvm/ needs {', '.join(RECIPE_FILES)}")
    return out


def image_key(cfg: ImageConfig) -> str:
    """Hash of the recipe files, RECIPE_VERSION, suite (resolved), mirror and size."""
    return _key_of(cfg, _recipe_bytes())


def _key_of(cfg: ImageConfig, recipe: dict[str, bytes]) -> str:
    parts: list[str | bytes] = ["kharness-image", RECIPE_VERSION, resolve_suite(cfg),
                                cfg.mirror or "", cfg.size]
    for name, data in sorted(recipe.items()):
        parts += [name, data]
    return cache.digest(*parts)


# --- cache ---------------------------------------------------------------------------------

def load_image(key: str) -> ImageArtifact | None:
    """The cached image with this key, or None when absent or incomplete."""
    d = cache.entry(KIND, key)
    try:
        meta = json.loads((d / IMAGE_JSON).read_text())
    except (OSError, ValueError):
        return None
    img, ck = d / ROOTFS, d / CLIENT_KEY
    if not (img.is_file() and ck.is_file() and meta.get("host_key_pub")):
        return None
    # ssh refuses group/world-readable keys; rootfs.img holds the guest's private host key
    # (whoever can read it can pose as the guest on the forwarded port).
    for private in (ck, img):
        if stat.S_IMODE(private.stat().st_mode) != 0o600:
            try:
                os.chmod(private, 0o600)
            except OSError:
                pass
    return ImageArtifact(path=img, host_key_pub=meta["host_key_pub"], client_key=ck, key=key,
                         suite=meta["suite"], recipe_files=tuple(meta.get("recipe_files", RECIPE_FILES)))


# --- build ---------------------------------------------------------------------------------

def build_image(cfg: ImageConfig, log: Path, progress: Progress = None,
                extra: ImageExtra | None = None) -> tuple[ImageArtifact, bool]:
    """The image for cfg, from the cache or built now; returns (artifact, cache_hit)."""
    recipe = _recipe_bytes()        # read once: the image built is the one the key names
    if extra:
        recipe[f"extra:{extra.name}"] = "\n".join([extra.key, *extra.packages]).encode()
    key = _key_of(cfg, recipe)
    art = load_image(key)
    if art:
        return art, True
    say = progress or (lambda msg: None)
    with cache.locked(f"image-{key}"):
        art = load_image(key)               # another run may have built it while we waited
        if art:
            return art, True
        _preflight(resolve_suite(cfg))
        _sweep_stale(key, Path(log))
        with cache.publishing(KIND, key) as tmp:
            _build_into(tmp, key, cfg, recipe, Path(log), say, extra)
    art = load_image(key)
    if art is None:
        raise InfraError(f"image {key[:12]} was built but is not readable in {cache.entry(KIND, key)}")
    return art, False


def preflight(cfg: ImageConfig) -> None:
    """What build_image would refuse, checked before a lock, a log or a run directory exists: the
    cache, and for an image still to be built, the suite (debootstrap must know it) and the tools."""
    cache.check_root()
    if load_image(_key_of(cfg, _recipe_bytes())) is None:
        _preflight(resolve_suite(cfg))


def host_tool(name: str) -> str:
    """Full path of a host tool (root's sbin directories included even when PATH lacks them)."""
    found = shutil.which(name, path=os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin")
    if not found:
        raise InfraError(f"{name} not found: building the guest image needs debootstrap, "
                         "e2fsprogs and openssh-client on the host (apt-get install them)")
    return found


def _is_root() -> bool:
    return os.geteuid() == 0


def _preflight(suite: str) -> None:
    if not (DEBOOTSTRAP_SCRIPTS / suite).exists():
        known = sorted(p.name for p in DEBOOTSTRAP_SCRIPTS.glob("*")) if DEBOOTSTRAP_SCRIPTS.is_dir() else []
        if not known:
            raise InfraError("debootstrap is not installed (apt-get install debootstrap)")
        debian = [k for k in known if k in ("bullseye", "bookworm", "trixie", "forky", "sid",
                                            "stable", "testing", "unstable")]
        raise UserError(f"image.suite: debootstrap knows no suite {suite!r} "
                        f"(e.g. {', '.join(debian or known[:8])})")
    for tool in ("debootstrap", "mke2fs", "ssh-keygen", "chroot"):
        host_tool(tool)
    if not _is_root():
        raise InfraError("building the guest image needs root (debootstrap creates device "
                         "nodes and root-owned files); run as root")


def _build_into(tmp: Path, key: str, cfg: ImageConfig, recipe: dict[str, bytes], log: Path,
                say: Callable[[str], None], extra: ImageExtra | None = None) -> None:
    t0 = time.monotonic()
    os.chmod(tmp, 0o755)
    suite = resolve_suite(cfg)
    pkgs = parse_packages(recipe["packages.txt"].decode(), str(KVM_DIR / "packages.txt"))
    pkgs += [p for p in (extra.packages if extra else ()) if p not in pkgs]
    root = tmp / "root"
    try:
        say(f"debootstrap {suite} with {len(pkgs)} packages (a minute or more)")
        argv = [host_tool("debootstrap"), "--variant=minbase", f"--include={','.join(pkgs)}", suite, str(root)]
        if cfg.mirror:
            argv.append(cfg.mirror)
        start = log.stat().st_size if log.exists() else 0
        t1 = time.monotonic()
        try:
            proc.run(argv, log, on_line=_debootstrap_progress(say))
        except InfraError:
            _keep_debootstrap_log(root, log)
            raise InfraError(f"debootstrap {suite} failed: {_last_meaningful(log, start)} (log: {log})") from None
        debootstrap_s = time.monotonic() - t1

        say("installing kharness init, sshd config and keys")
        _customize(root, recipe, tmp, log)
        if extra:
            extra.customize(root, log, say)
        host_key_pub = _pub_line(_in(root, "etc/ssh/ssh_host_ed25519_key.pub").read_text())
        proc.run([host_tool("chroot"), str(root), "/usr/sbin/sshd", "-t", "-f", "/etc/ssh/sshd_config"], log)
        # /run stays on the root filesystem in the guest (each boot's snapshot=on overlay, so
        # it starts as packed here): empty but for what kvm/init needs before anything is
        # mounted, sshd's privilege separation directory and /run/lock (/var/lock points there).
        for p in _in(root, "run").iterdir():
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        for d, mode in (("run/sshd", 0o755), ("run/lock", 0o1777)):
            _in(root, d).mkdir()
            os.chmod(_in(root, d), mode)

        need = _tree_bytes(root)
        if need * 1.25 + (64 << 20) > size_bytes(cfg.size):
            raise UserError(f"image.size: {cfg.size} is too small for the guest root filesystem "
                            f"({need >> 20} MiB of files); use at least {_suggest(need)}")
        say(f"packing {ROOTFS} ({cfg.size}, mke2fs -d, {need >> 20} MiB of files)")
        proc.run([host_tool("mke2fs"), "-q", "-t", "ext4", "-L", LABEL, "-d", str(root),
                  str(tmp / ROOTFS), cfg.size], log)
    except BaseException:
        _release_tree(root, log)
        raise
    shutil.rmtree(root)

    img = tmp / ROOTFS
    os.chmod(img, 0o600)        # it holds the guest's private host key: the owner's alone
    meta = {
        "key": key,
        "suite": suite,
        "mirror": cfg.mirror,
        "size": cfg.size,
        "packages": pkgs,
        "recipe_version": RECIPE_VERSION,
        "recipe_files": list(RECIPE_FILES),
        "host_key_pub": host_key_pub,
        "client_key": CLIENT_KEY,
        "debootstrap_version": _debootstrap_version(),
        "debootstrap_seconds": round(debootstrap_s, 1),
        "build_seconds": round(time.monotonic() - t0, 1),
        "rootfs_bytes": need,
        "image_bytes_allocated": img.stat().st_blocks * 512,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    tmp_json = tmp / (IMAGE_JSON + ".tmp")
    tmp_json.write_text(json.dumps(meta, indent=2) + "\n")
    os.rename(tmp_json, tmp / IMAGE_JSON)
    say(f"image {key[:12]} ready in {meta['build_seconds']:.0f} s "
        f"({meta['image_bytes_allocated'] >> 20} MiB used of {cfg.size})")


def _customize(root: Path, recipe: dict[str, bytes], tmp: Path, log: Path) -> None:
    os.chmod(root, 0o755)
    init = _in(root, "sbin/kharness-init")
    init.write_bytes(recipe["init"])
    os.chmod(init, 0o755)
    ssh = _in(root, "etc/ssh")
    (ssh / "sshd_config").write_bytes(recipe["sshd_config"])
    os.chmod(ssh / "sshd_config", 0o644)

    # Host key: our own ed25519 only (debootstrap's postinst made rsa/ecdsa/ed25519 ones).
    for old in ssh.glob("ssh_host_*"):
        old.unlink()
    proc.run([host_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", f"root@{HOSTNAME}",
              "-f", str(ssh / "ssh_host_ed25519_key")], log)
    os.chmod(ssh / "ssh_host_ed25519_key", 0o600)

    # Client key for the harness, kept beside the image (outside it).
    proc.run([host_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "kharness-harness",
              "-f", str(tmp / CLIENT_KEY)], log)
    os.chmod(tmp / CLIENT_KEY, 0o600)
    dot_ssh = _in(root, "root/.ssh")
    dot_ssh.mkdir(parents=True, exist_ok=True)
    os.chmod(_in(root, "root"), 0o700)
    os.chmod(dot_ssh, 0o700)
    ak = dot_ssh / "authorized_keys"
    ak.write_text((tmp / f"{CLIENT_KEY}.pub").read_text())
    os.chmod(ak, 0o600)
    for p in (_in(root, "root"), dot_ssh, ak):
        os.chown(p, 0, 0)

    _in(root, "etc/hostname").write_text(HOSTNAME + "\n")
    _in(root, "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n"
                                    "::1\tlocalhost ip6-localhost ip6-loopback\n")
    _in(root, "etc/fstab").write_text(
        "# kharness guest: /sbin/kharness-init mounts /proc, /sys, /dev/pts, /dev/shm, /tmp itself;\n"
        "# the harness mounts the test and scratch disks. Nothing here is mounted at boot.\n"
        f"LABEL={LABEL}\t/\text4\tdefaults\t0 0\n")
    # The guest network is restrict=on: no DNS. Don't carry the host's resolv.conf.
    resolv = _in(root, "etc") / "resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("# no DNS in the kharness guest (QEMU user networking, restrict=on)\n")
    for d in ("mnt/test", "mnt/scratch", "run/sshd"):
        _in(root, d).mkdir(parents=True, exist_ok=True)
    # devtmpfs has no /dev/fd or /dev/std*: kvm/init copies these onto it with one cp
    # (under TCG a fork+exec costs ~0.1 s; four ln would be four).
    devlinks = _in(root, "usr/lib/kharness/dev")
    devlinks.mkdir(parents=True, exist_ok=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        (devlinks / name).unlink(missing_ok=True)
        (devlinks / name).symlink_to(target)

    # Keep the image small: downloaded .debs and apt lists are not needed in the guest.
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for p in _in(root, ".").glob(pattern):
            if p.is_file() or p.is_symlink():
                p.unlink()
            elif p.is_dir() and p.name != "partial":
                shutil.rmtree(p)


def _in(root: Path, rel: str) -> Path:
    """ROOT/rel, refusing a path that symlinks out of the tree (as a chroot would see it).
    Debian's merged-/usr links (/sbin -> usr/sbin) are relative and stay inside."""
    path = root / rel
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise InfraError(f"{path} resolves to {real}, outside the image tree {root}")
    return real


def _pub_line(text: str) -> str:
    """'ssh-ed25519 AAAA... comment' -> 'ssh-ed25519 AAAA...'."""
    fields = text.split()
    if len(fields) < 2 or not fields[0].startswith("ssh-"):
        raise InfraError(f"unexpected ssh public key: {text[:80]!r}")
    return f"{fields[0]} {fields[1]}"


def _tree_bytes(root: Path) -> int:
    """Bytes the tree's files occupy (allocated, hard links counted once)."""
    total, seen = 0, set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += max(st.st_blocks * 512, 4096 if stat.S_ISDIR(st.st_mode) else 0)
    return total


def _suggest(need: int) -> str:
    mib = int(need * 1.25 / (1 << 20)) + 64
    return f"{-(-mib // 1024)}G" if mib > 1024 else f"{-(-mib // 256) * 256}M"


def _debootstrap_progress(say: Callable[[str], None]):
    """Pass debootstrap's status lines (I: Retrieving ..., I: Configuring openssh-server...) on."""
    def on_line(line: str) -> None:
        if line.startswith("I: "):
            say("debootstrap: " + line[3:].strip())
    return on_line


def _last_meaningful(log: Path, start: int) -> str:
    """The last line of debootstrap's output (from offset start) that says what went wrong."""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "no output"
    return last_meaningful_line(text)


def last_meaningful_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("$ ", "[exit ")) and not set(ln) <= set(".")]
    for prefix in ("E: ", "W: "):
        for ln in reversed(lines):
            if ln.startswith(prefix):
                return ln
    return lines[-1] if lines else "no output"


def _keep_debootstrap_log(root: Path, log: Path) -> None:
    """debootstrap keeps details in ROOT/debootstrap/debootstrap.log, which is about to be deleted."""
    inner = root / "debootstrap" / "debootstrap.log"
    try:
        text = inner.read_text(errors="replace")
    except OSError:
        return
    with open(log, "a", encoding="utf-8", errors="replace") as out:
        out.write(f"--- {inner} (tail) ---\n")
        out.write("\n".join(text.splitlines()[-200:]) + "\n--- end ---\n")


def _sweep_stale(key: str, log: Path) -> None:
    """Remove temporary build directories of this key left by a build that was killed hard
    (SIGKILL, power loss). Only the holder of the image-<key> lock builds this key, so
    under the lock any such directory is dead."""
    parent = cache.entry(KIND, key).parent
    for stale in parent.glob(f".{key[:16]}.*"):
        _release_tree(stale / "root", log)
        shutil.rmtree(stale, ignore_errors=True)


def _release_tree(root: Path, log: Path) -> None:
    """Before a half-built tree is deleted: stop what still runs in it, unmount what is
    mounted in it. proc.run kills debootstrap itself on an interrupt, but not the
    dpkg/tar it started, which go on writing into the tree (and debootstrap's exit
    trap that unmounts ROOT/proc never runs)."""
    if not root.exists():
        return
    _kill_inside(root)
    _unmount_under(root, log)


def _kill_inside(root: Path, wait: float = 10.0) -> None:
    """SIGKILL what still works on root: processes chrooted or with their working directory
    inside it (dpkg, tar) and those naming it on their command line (debootstrap's own
    subshells, which would start the next dpkg). Repeat until a scan finds none."""
    prefix = str(root.resolve())
    needle = prefix.encode()
    me = os.getpid()
    deadline = time.monotonic() + wait
    while True:
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == me:
                continue
            hit = False
            for link in ("root", "cwd"):
                try:
                    target = os.readlink(d / link)
                except OSError:
                    continue
                if target == prefix or target.startswith(prefix + "/"):
                    hit = True
                    break
            if not hit:
                try:
                    hit = needle in (d / "cmdline").read_bytes()
                except OSError:
                    pass
            if hit:
                pids.append(int(d.name))
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        time.sleep(0.1)


def _unmount_under(root: Path, log: Path) -> None:
    """Unmount anything a killed debootstrap left mounted in root (proc, sys), deepest first,
    so deleting the temporary directory never descends into a live /proc or /sys."""
    prefix = str(root.resolve()) if root.exists() else str(root)
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = []
    for ln in lines:
        f = ln.split()
        if len(f) > 4:
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4])
            if mp == prefix or mp.startswith(prefix + "/"):
                points.append(mp)
    for mp in sorted(points, key=len, reverse=True):
        proc.run([shutil.which("umount", path=os.defpath + ":/usr/sbin:/sbin") or "umount", "-l", mp], log, check=False)


def _debootstrap_version() -> str:
    try:
        out = proc.capture(["dpkg-query", "-W", "-f", "${Version}", "debootstrap"])
        return out.strip() or "unknown"
    except (InfraError, OSError):
        return "unknown"
