"""Security, for real: guests booted the way the harness boots them (session.Session, the
cached 6.12 kernel and image; built first if the cache is cold, like the other e2e tests).

  * restrict=on: the guest reaches nothing on the host (a listener on 127.0.0.1) and not
    the slirp DNS; control: the same argv with only restrict=off does reach the listener.
  * QEMU listens on 127.0.0.1 only, the QMP socket and the VM directory are the user's
    alone, the client key and the image (which holds the guest's host key) are 0600.
  * A guest presenting another host key is refused; control: the pinned key connects.
  * Shell metacharacters in variant mkfs/mount options reach mkfs/mount as literal
    arguments and run nothing; control: the same text concatenated into a command does.
"""
from __future__ import annotations

import os
import socket
import stat
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kharness import config, image, kernel, session, vm
from kharness.model import Variant
from kharness.errors import InfraError
from kharness.guest import Guest

pytestmark = pytest.mark.e2e

CONFIG = """\
name: e2e-security
kernel:
  tarball: /usr/src/linux-source-6.12.tar.xz
  series: [kharness-id, zero-range-race-window]
  fragments: [virtio-guest, hang-detect]
variants:
  - {name: ext4, fstype: ext4}
tests: [zero-range-basic]
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sec")
    (tmp / "c.yaml").write_text(CONFIG + f"results: {tmp / 'results'}\n")
    cfg = config.load(tmp / "c.yaml")
    k, _ = kernel.build_kernel(cfg.kernel, tmp / "logs")
    img, _ = image.build_image(cfg.image, tmp / "logs" / "image-build.log")
    return cfg, k, img, tmp


def _session(setup, name: str) -> session.Session:
    cfg, k, img, tmp = setup
    run_dir = tmp / name
    run_dir.mkdir()
    return session.Session(cfg, run_dir, k, img, None)


@pytest.fixture(scope="module")
def booted(setup):
    """One guest booted exactly as `harness.py run` boots it (restrict=on)."""
    s = _session(setup, "run")
    s.guest_ready()
    yield s
    s.close()


class Listener:
    """A TCP listener on the host's 127.0.0.1 that records every connection and what it sent."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[bytes] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            c.settimeout(2)
            try:
                data = c.recv(100)
            except OSError:
                data = b""
            self.accepted.append(data)
            c.close()

    def close(self):
        self._stop.set()
        self._t.join(5)
        self.sock.close()


def _reach(guest: Guest, host: str, port: int) -> int:
    """Exit status of a 5 s bash /dev/tcp connect + write from the guest (0: it connected)."""
    out = guest.run(f"timeout 5 bash -c 'echo hi > /dev/tcp/{host}/{port}'", timeout=30)
    assert out.exit_status is not None, out
    return out.exit_status


def test_restrict_on_reaches_nothing_and_restrict_off_control_does(booted, setup, monkeypatch):
    listener = Listener()
    try:
        guest = booted.guest_ready()
        assert guest.run("command -v bash timeout", timeout=30).exit_status == 0   # the probe's own tools
        assert _reach(guest, "10.0.2.2", listener.port) != 0          # the host, via slirp's gateway
        assert _reach(guest, "10.0.2.3", 53) != 0                     # slirp's DNS forwarder
        time.sleep(1)
        assert listener.accepted == []
        argv_on = (booted.run_dir / "qemu.log").read_text()
        assert "restrict=on" in argv_on

        # Control: the same boot, the same argv but for that one token.
        real = vm.qemu_argv
        changed = []

        def restrict_off(spec):
            on = real(spec)
            off = [a.replace("restrict=on,", "restrict=off,") for a in on]
            changed.append([(a, b) for a, b in zip(on, off) if a != b])
            return off
        monkeypatch.setattr(vm, "qemu_argv", restrict_off)
        control = _session(setup, "control")
        try:
            g2 = control.guest_ready()
            for diff in changed:        # one token per boot, and only restrict= in it
                assert len(diff) == 1 and diff[0][0].startswith("user,id=net0,restrict=on,hostfwd=")
            assert "restrict=off" in (control.run_dir / "qemu.log").read_text()
            assert _reach(g2, "10.0.2.2", listener.port) == 0
            deadline = time.monotonic() + 5
            while not listener.accepted and time.monotonic() < deadline:
                time.sleep(0.1)
            assert listener.accepted == [b"hi\n"]
        finally:
            control.close()
    finally:
        listener.close()


# ------------------------------------------------------------------ local-only sockets, private files

def _tcp_listeners(pid: int) -> list[tuple[str, int]]:
    """(address, port) of the TCP sockets process `pid` listens on, from /proc/net/tcp{,6}."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state != "0A" or inode not in inodes:       # 0A: LISTEN
                    continue
                addr, port = local.split(":")
                if len(addr) == 8:
                    ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1])
                else:
                    raw = bytes.fromhex(addr)
                    ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                found.append((ip, int(port, 16)))
    return found


def test_listener_scan_sees_wildcard_and_loopback_binds():
    """Control for the scan below: it finds this process's own listeners with their addresses."""
    wild, loop = socket.socket(), socket.socket()
    try:
        wild.bind(("0.0.0.0", 0))
        loop.bind(("127.0.0.1", 0))
        wild.listen()
        loop.listen()
        got = _tcp_listeners(os.getpid())
        assert ("0.0.0.0", wild.getsockname()[1]) in got
        assert ("127.0.0.1", loop.getsockname()[1]) in got
    finally:
        wild.close()
        loop.close()


def test_qemu_listens_on_loopback_only_and_its_files_are_private(booted, setup):
    _, _, img, _ = setup
    booted.guest_ready()
    qemu = booted.vm
    listeners = _tcp_listeners(qemu.proc.pid)
    assert ("127.0.0.1", qemu.spec.ssh_port) in listeners       # the hostfwd, while the guest runs
    assert all(ip == "127.0.0.1" for ip, _ in listeners), listeners

    qmp = qemu.spec.qmp
    st = os.stat(qmp)
    assert stat.S_ISSOCK(st.st_mode)
    assert st.st_mode & 0o077 == 0, oct(st.st_mode)                # no group/other access to QMP
    assert stat.S_IMODE(os.stat(qmp.parent).st_mode) == 0o700
    assert qemu.qmp("query-status")["status"] == "running"       # it is the live monitor
    assert stat.S_IMODE(os.stat(booted.vm_dir).st_mode) == 0o700  # disks, per-boot console files
    assert stat.S_IMODE(os.stat(qemu.spec.console).st_mode) & 0o077 == 0
    assert stat.S_IMODE(os.stat(img.client_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(img.path).st_mode) == 0o600       # holds the guest's private host key


# ------------------------------------------------------------------ pinned host key

def test_guest_with_another_host_key_is_refused(booted, setup):
    _, _, img, _ = setup
    booted.guest_ready()
    port = booted.vm.spec.ssh_port
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    assert other.split()[0] == img.host_key_pub.split()[0] and other != img.host_key_pub
    wrong = Guest(port, other, img.client_key)
    with pytest.raises(InfraError, match="host key that is not the image's pinned key.*refusing"):
        wrong.connect(time.monotonic() + 60)
    assert wrong.client is None

    # Control: the pinned key, same port, same guest.
    right = Guest(port, img.host_key_pub, img.client_key)
    right.connect(time.monotonic() + 60)
    try:
        assert right.run("true", timeout=30).exit_status == 0
    finally:
        right.close()


# ------------------------------------------------------------------ config values in guest commands

def _exists(guest: Guest, path: str) -> bool:
    out = guest.run(f"test -e {path}", timeout=30)
    assert out.exit_status in (0, 1), out
    return out.exit_status == 0


def test_metacharacters_in_variant_options_run_nothing_in_the_guest(booted, tmp_path):
    guest = booted.guest_ready()
    log = tmp_path / "setup.log"
    guest.run("rm -f /tmp/pwned*", timeout=30)

    # mount: gets '-o' 'noatime;' 'touch' '/tmp/pwned1' as words, a usage error: an error saying so.
    v1 = Variant("m1", "ext4", mount="-o noatime; touch /tmp/pwned1")
    with pytest.raises(InfraError, match="setting up variant m1 failed: mount: bad usage"):
        booted.prepare(guest, v1, log)
    # mount: one word; the kernel itself reports the literal option it was given.
    v2 = Variant("m2", "ext4", mount="-o noatime;touch${IFS}/tmp/pwned2`touch${IFS}/tmp/pwned2b`")
    why = booted.prepare(guest, v2, log)          # the kernel refused it: a skip, in the kernel's words
    assert why and "ext4: Unknown parameter 'noatime;touch${IFS}/tmp/pwned2`touch${IFS}/tmp/pwned2b`" in why, why
    # mkfs: the label takes the text literally (truncated to ext4's 16 bytes), the fs mounts.
    v3 = Variant("k3", "ext4", mkfs="-L x;touch${IFS}/tmp/pwned3")
    assert booted.prepare(guest, v3, log) is None
    label = guest.run("e2label /dev/vdb", timeout=30)
    assert label.exit_status == 0 and label.stdout.strip() == "x;touch${IFS}/tm", label
    for p in ("/tmp/pwned1", "/tmp/pwned2", "/tmp/pwned2b", "/tmp/pwned3"):
        assert not _exists(guest, p), p

    # Control: the same option text concatenated into a shell line does run.
    guest.run(f"umount /mnt/test; mount -t ext4 {v1.mount} /dev/vdb /mnt/test", timeout=60)
    guest.run(f"mkfs.ext4 -F -q {v3.mkfs} /dev/vdc", timeout=120)
    assert _exists(guest, "/tmp/pwned1") and _exists(guest, "/tmp/pwned3")
    guest.run("rm -f /tmp/pwned*; umount /mnt/test", timeout=30)
    booted.mounted = None
