"""The harness's own steps around a job, without a guest: one SFTP session per connection,
the tools disk and its mount, paramiko loaded lazily (and in the background while a guest boots),
run-job's shell script (run on the host with its guest paths moved)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading

import pytest

from conftest import REPO
from kharness import guest as guest_mod
from kharness import lifecycle, session, tools_disk
from kharness.errors import InfraError
from kharness.guest import Guest
from kharness.model import Variant


class _Channel:
    closed = False


class _FakeSFTP:
    """A guest filesystem, as paramiko's SFTPClient answers (the calls the harness makes)."""

    def __init__(self, fs: dict[str, str]):
        self.fs = fs                 # path -> "file"
        self.chan = _Channel()
        self.calls: list[tuple] = []
        self.closed = False

    def get_channel(self):
        return self.chan

    def open(self, remote, mode):
        self.calls.append(("open", remote))
        self.fs[remote] = "file"
        sftp = self

        class F:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def write(self, text):
                sftp.calls.append(("write", remote, text))
        return F()

    def chmod(self, path, mode):
        self.calls.append(("chmod", path, mode))

    def close(self):
        self.closed = True


class _FakeClient:
    def __init__(self, fs):
        self.fs, self.opened, self.closed = fs, [], False

    def open_sftp(self):
        self.opened.append(_FakeSFTP(self.fs))
        return self.opened[-1]

    def close(self):
        self.closed = True


def _guest(fs=None) -> tuple[Guest, _FakeClient]:
    g = Guest.__new__(Guest)            # no keys, no connection: only the SFTP side
    g.client = _FakeClient(fs if fs is not None else {"/": "dir", "/opt": "dir"})
    g._sftp = None
    return g, g.client


def test_one_sftp_session_serves_every_copy_of_a_connection():
    g, client = _guest()
    g.put_text("#!/bin/sh\n", "/opt/run-job")
    g.put_text("[x]\n", "/opt/local.config", mode=0o644)
    assert len(client.opened) == 1
    assert ("chmod", "/opt/run-job", 0o755) in client.opened[0].calls
    assert ("chmod", "/opt/local.config", 0o644) in client.opened[0].calls
    # Its channel went away (the guest's sftp-server died): the next copy opens a new one.
    client.opened[0].chan.closed = True
    g.put_text("x", "/opt/y", mode=0o644)
    assert len(client.opened) == 2 and ("chmod", "/opt/y", 0o644) in client.opened[1].calls
    g.close()
    assert client.opened[1].closed and client.closed and g.client is None and g._sftp is None


def test_a_failed_copy_is_an_infrastructure_error_naming_the_file():
    g, client = _guest({"/": "dir"})
    client.open_sftp()
    sftp = client.opened[0]
    g._sftp = sftp

    def refuse(remote, mode):
        raise PermissionError(13, "Permission denied")
    sftp.open = refuse
    with pytest.raises(InfraError, match=r"cannot write /opt/x in the guest: .*Permission denied"):
        g.put_text("x", "/opt/x")
    sftp.open = lambda remote, mode: (_ for _ in ()).throw(EOFError())      # the connection went away
    with pytest.raises(InfraError, match="cannot write /opt/x in the guest: EOFError"):
        g.put_text("x", "/opt/x")


# ------------------------------------------------------------------ the tools disk

def _debugfs(img, request: str) -> str:
    out = subprocess.run(["/sbin/debugfs", "-R", request, str(img)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_tools_disk_holds_run_job_and_the_binaries_and_is_cached_by_content(tmp_path, tmp_cache):
    (tmp_path / "zr").write_bytes(b"\x7fELF" + bytes(range(256)) * 4000)      # ~1 MiB, as a static binary
    (tmp_path / "t.sh").write_text("#!/bin/sh\nexit 0\n")
    bins = {"zero-range-basic": tmp_path / "zr", "script-test": tmp_path / "t.sh"}
    img = tools_disk.disk(session.RUN_JOB, bins, tmp_path / "setup.log")
    assert img.is_relative_to(tmp_cache) and img.name == tools_disk.NAME
    assert _debugfs(img, "cat /run-job") == session.RUN_JOB
    assert _debugfs(img, "cat /bin/script-test") == "#!/bin/sh\nexit 0\n"
    dump = tmp_path / "dumped"
    _debugfs(img, f"dump /bin/zero-range-basic {dump}")
    assert dump.read_bytes() == (tmp_path / "zr").read_bytes()
    for name in ("/run-job", "/bin/zero-range-basic", "/bin/script-test"):
        assert "Mode:  0755" in _debugfs(img, f"stat {name}"), name
    assert "has_journal" not in subprocess.run(["/sbin/dumpe2fs", "-h", str(img)], capture_output=True,
                                               text=True).stdout.split("Filesystem features:")[1].splitlines()[0]
    # The same content again: the cached file, not a new one; another binary: another disk.
    made = img.stat().st_mtime_ns
    assert tools_disk.disk(session.RUN_JOB, dict(bins), tmp_path / "setup.log") == img
    assert img.stat().st_mtime_ns == made
    (tmp_path / "t.sh").write_text("#!/bin/sh\nexit 1\n")
    other = tools_disk.disk(session.RUN_JOB, bins, tmp_path / "setup.log")
    assert other != img and _debugfs(other, "cat /bin/script-test") == "#!/bin/sh\nexit 1\n"


class _PrepareGuest:
    """Answers Session.prepare's one command with a given exit status."""

    def __init__(self, status=0, stderr=""):
        self.commands: list[str] = []
        self.status, self.stderr = status, stderr

    def run(self, command, timeout, stdout_path=None, stderr_path=None, check_abort=None):
        self.commands.append(command)
        return lifecycle.Outcome(exit_status=self.status, duration=0.0, stderr=self.stderr)


def _bare_session() -> session.Session:
    s = session.Session.__new__(session.Session)      # only prepare()'s state, no VM
    s.mounted, s.cannot_mount, s.tools_mounted = None, {}, False
    return s


def test_prepare_mounts_the_tools_disk_once_per_boot_in_the_same_command(tmp_path):
    s, g = _bare_session(), _PrepareGuest()
    ext4, xfs = Variant("ext4", "ext4"), Variant("xfs", "xfs")
    mount_tools = f"mount -t ext4 -o ro,X-mount.mkdir {session.TOOLS_DEV} {session.GUEST_DIR}"
    assert s.prepare(g, ext4, tmp_path / "setup.log") is None
    assert len(g.commands) == 1 and g.commands[0].startswith("{ " + mount_tools + " ||")
    assert "mkfs.ext4" in g.commands[0]
    s.prepare(g, xfs, tmp_path / "setup.log")             # the same boot, another variant: mkfs only
    assert len(g.commands) == 2 and mount_tools not in g.commands[1] and "mkfs.xfs" in g.commands[1]
    s.tools_mounted = False                               # what a fresh boot resets (_try_boot)
    s.prepare(g, ext4, tmp_path / "setup.log")
    assert mount_tools in g.commands[2]


def test_a_tools_disk_that_will_not_mount_is_an_infrastructure_error(tmp_path):
    s = _bare_session()
    g = _PrepareGuest(session.TOOLS_MOUNT_FAILED, "mount: /opt/kharness: wrong fs type, bad option\n")
    with pytest.raises(InfraError, match=r"cannot mount the tools disk \(/dev/vdd\) at /opt/kharness.*wrong fs type"):
        s.prepare(g, Variant("ext4", "ext4"), tmp_path / "setup.log")
    assert not s.tools_mounted and s.mounted is None
    # The exit status is the mount's own in the shell: run the command's first part for real.
    cmd = _PrepareGuest()
    _bare_session().prepare(cmd, Variant("ext4", "ext4"), tmp_path / "setup.log")
    first = cmd.commands[0].split(" && ", 1)[0].replace("mount ", "false ", 1)
    assert subprocess.run(["sh", "-c", first]).returncode == session.TOOLS_MOUNT_FAILED


def test_importing_guest_code_loads_no_paramiko_until_it_is_used():
    probe = ("import sys; sys.path.insert(0, %r); import kharness.guest, kharness.session, kharness.lifecycle; "
             "print('paramiko' in sys.modules); kharness.guest._paramiko(); print('paramiko' in sys.modules)"
             ) % str(REPO)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr


def test_warm_up_runs_once_in_the_background(monkeypatch):
    monkeypatch.setattr(guest_mod, "_warm", None)
    monkeypatch.setattr(guest_mod, "_paramiko_tried", threading.Event())
    ran: list[str] = []
    gate = threading.Event()

    def also():
        gate.wait(10)
        ran.append(threading.current_thread().name)
    guest_mod.warm_up(also)
    guest_mod.warm_up(also)               # a second boot (another slot, a reboot): nothing new
    first = guest_mod._warm
    assert first is not None and first.daemon
    assert guest_mod._paramiko().SSHClient    # paramiko's part is done; `also` may still run
    gate.set()
    first.join(10)
    assert ran == ["warm-up"] and guest_mod._warm is first


def test_a_failing_warm_up_leaves_the_error_to_the_first_use(monkeypatch):
    monkeypatch.setattr(guest_mod, "_warm", None)
    monkeypatch.setattr(guest_mod, "_paramiko_tried", threading.Event())
    guest_mod.warm_up(lambda: 1 / 0)
    guest_mod._warm.join(10)
    assert guest_mod._paramiko().SSHClient      # the warm-up's failure changed nothing


def test_session_warm_up_preloads_the_reports(monkeypatch):
    seen = {}
    monkeypatch.setattr(guest_mod, "warm_up", lambda also=None: seen.setdefault("also", also))
    session.warm_up()
    seen["also"]()              # what the background thread runs: imports and compiled templates
    from kharness.report import html
    assert "rich.table" in sys.modules and "kharness.report.render" in sys.modules
    assert html._env.cache and any("report.html.j2" in str(k) for k in html._env.cache._mapping)


# ------------------------------------------------------------------ run-job, on the host

def _run_job(tmp_path, *args):
    """session.RUN_JOB with its guest paths moved into tmp_path, run by /bin/sh."""
    script = tmp_path / "run-job"
    script.write_text(session.RUN_JOB.replace(session.JOB_SID, str(tmp_path / "job.sid"))
                      .replace("> /dev/kmsg", f">> {tmp_path / 'kmsg'}"))     # a device there: appends
    script.chmod(0o755)
    (tmp_path / "kmsg").touch()
    return subprocess.run(["setsid", str(script), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_run_job_records_the_session_times_the_command_and_passes_its_status(tmp_path):
    out = _run_job(tmp_path, "ext4.x", "-", "sh", "-c", "cat /proc/$$/stat; exit 3")
    assert out.returncode == 3
    # the job's session id, as ps sees it: field 6 of the command's own stat line
    sid = out.stdout.rsplit(")", 1)[1].split()[3]
    assert (tmp_path / "job.sid").read_text() == f"{sid}\n"
    assert (tmp_path / "kmsg").read_text() == "<5>kharness: job-start ext4.x\n<5>kharness: job-end ext4.x rc=3\n"
    last = out.stderr.strip().splitlines()[-1]
    m = re.fullmatch(r"kharness-time (\d+\.\d+) (\d+\.\d+)", last)
    assert m and float(m.group(2)) >= float(m.group(1)), last
    w = lifecycle.Watched(lifecycle.Outcome(3, 0.1, stderr=out.stderr), [], (1, 1), None)
    assert w.guest_seconds is not None and 0 <= w.guest_seconds < 30


def test_run_job_gives_the_command_a_fresh_directory(tmp_path):
    work = tmp_path / "w"
    (work / "old").mkdir(parents=True)
    out = _run_job(tmp_path, "j1", str(work), "sh", "-c", "pwd; ls -A")
    assert out.returncode == 0 and out.stdout.split() == [str(work)]
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    out = _run_job(tmp_path, "j2", str(link), "pwd")
    assert out.returncode == 0 and out.stdout.strip() == str(link) and link.is_dir() and not link.is_symlink()
    out = _run_job(tmp_path, "j3", "/proc/no/such", "true")      # cannot be made: 2, before the command
    assert out.returncode == 2 and "job-start j3" in (tmp_path / "kmsg").read_text()


def test_run_job_starts_no_process_but_mkdir_and_rm():
    """Under TCG each fork+exec in the guest costs tens of milliseconds: run-job uses shell
    builtins, except mkdir for the job's directory (and rm when it exists)."""
    body = [ln.split("#")[0] for ln in session.RUN_JOB.splitlines()[1:]]
    words = {w for ln in body for w in re.findall(r"[A-Za-z_][\w.-]*", ln)}
    external = {"sed", "cut", "date", "cat", "awk", "grep", "ps", "head", "tail", "tr"}
    assert not words & external, words & external
    assert "mkdir" in words and "rm" in words
