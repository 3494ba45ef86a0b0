"""The harness's own steps around a job, without a guest: one SFTP session per connection,
`mkdir -p` over SFTP, paramiko loaded lazily (and in the background while a guest boots),
run-job's shell script (run on the host with its guest paths moved)."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading

import pytest

from conftest import REPO
from kharness import guest as guest_mod
from kharness import lifecycle, session
from kharness.guest import Guest


class _Channel:
    closed = False


class _FakeSFTP:
    """A guest filesystem of directories and files, as paramiko's SFTPClient answers."""

    def __init__(self, fs: dict[str, str]):
        self.fs = fs                 # path -> "dir" | "file"
        self.chan = _Channel()
        self.calls: list[tuple] = []
        self.closed = False

    def get_channel(self):
        return self.chan

    def stat(self, path):
        self.calls.append(("stat", path))
        if path not in self.fs:
            raise FileNotFoundError(2, "No such file")
        return os.stat_result(((stat.S_IFDIR if self.fs[path] == "dir" else stat.S_IFREG) | 0o755,) + (0,) * 9)

    def mkdir(self, path, mode):
        self.calls.append(("mkdir", path, mode))
        parent = path.rpartition("/")[0] or "/"
        if path in self.fs or self.fs.get(parent) != "dir":
            raise OSError("Failure")
        self.fs[path] = "dir"

    def put(self, local, remote):
        self.calls.append(("put", remote))
        self.fs[remote] = "file"

    def get(self, remote, local):
        self.calls.append(("get", remote))

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


def test_one_sftp_session_serves_every_copy_of_a_connection(tmp_path):
    g, client = _guest()
    g.put_text("#!/bin/sh\n", "/opt/run-job")
    g.put(tmp_path / "bin", "/opt/bin")
    g.get("/opt/run-job", tmp_path / "x")
    assert len(client.opened) == 1
    assert ("chmod", "/opt/run-job", 0o755) in client.opened[0].calls
    assert ("chmod", "/opt/bin", 0o755) in client.opened[0].calls
    # Its channel went away (the guest's sftp-server died): the next copy opens a new one.
    client.opened[0].chan.closed = True
    g.put_text("x", "/opt/y", mode=0o644)
    assert len(client.opened) == 2 and ("chmod", "/opt/y", 0o644) in client.opened[1].calls
    g.close()
    assert client.opened[1].closed and client.closed and g.client is None and g._sftp is None


def test_makedirs_makes_only_the_missing_directories():
    fs = {"/": "dir", "/opt": "dir"}
    g, client = _guest(fs)
    g.makedirs("/opt/kharness/bin")
    assert fs["/opt/kharness"] == fs["/opt/kharness/bin"] == "dir"
    made = [c for c in client.opened[0].calls if c[0] == "mkdir"]
    assert made == [("mkdir", "/opt/kharness", 0o755), ("mkdir", "/opt/kharness/bin", 0o755)]
    client.opened[0].calls.clear()
    g.makedirs("/opt/kharness/bin")                 # there already: one stat, nothing made
    assert client.opened[0].calls == [("stat", "/opt/kharness/bin")]
    fs["/opt/file"] = "file"
    with pytest.raises(OSError, match="not a directory"):
        g.makedirs("/opt/file/bin")


def test_session_prepares_the_job_directory_without_a_command():
    fs = {"/": "dir", "/opt": "dir"}
    g, client = _guest(fs)
    g.run = lambda *a, **kw: pytest.fail("no command: the SFTP session does it")
    s = session.Session.__new__(session.Session)
    s._mkdir(g)
    assert fs[f"{session.GUEST_DIR}/bin"] == "dir"
    writes = [c for c in client.opened[0].calls if c[0] == "write"]
    assert writes == [("write", f"{session.GUEST_DIR}/run-job", session.RUN_JOB)]
    # A guest whose /opt cannot hold it: the infrastructure error names the directory.
    g2, _ = _guest({"/": "dir", "/opt": "file"})
    with pytest.raises(session.InfraError, match=f"cannot prepare {session.GUEST_DIR} in the guest"):
        s._mkdir(g2)


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
