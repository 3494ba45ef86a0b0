"""Nightly: the lock that keeps two nightlies apart, and retention (recorded runs as fixtures)."""
import fcntl
import json
import os
import shutil
from pathlib import Path

from conftest import harness
from kharness import nightly

RUN = Path(__file__).parent / "data" / "runs" / "20261126T121654Z-default"


def test_second_nightly_refuses_while_the_lock_is_held(tmp_path):
    cfg = tmp_path / "n.yaml"
    cfg.write_text(f"name: n\nkernel: {{tarball: /usr/src/linux-source-6.12.tar.xz}}\n"
                   f"variants: [{{name: ext4, fstype: ext4}}]\ntests: [zero-range-basic]\nresults: {tmp_path}/results\n")
    (tmp_path / "results").mkdir()
    with nightly.nightly_lock(tmp_path / "results"):          # a nightly in progress
        out = harness("nightly", "-c", str(cfg), timeout=120)
    assert out.returncode == 2
    line, = out.stderr.strip().splitlines()
    assert line.startswith(f"harness.py: error: another nightly holds {tmp_path}/results/.nightly.lock (pid {os.getpid()} since ")
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [".nightly.lock"]   # nothing started


def test_lock_is_released_when_its_holder_dies(tmp_path):
    pid = os.fork()
    if pid == 0:       # child: take the lock and die without cleaning up
        cm = nightly.nightly_lock(tmp_path)
        cm.__enter__()
        os._exit(0)
    os.waitpid(pid, 0)
    with nightly.nightly_lock(tmp_path):
        fd = os.open(tmp_path / nightly.LOCK_NAME, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                raise AssertionError("the lock should be held by us")
            except BlockingIOError:
                pass
        finally:
            os.close(fd)


def copy(root: Path, name: str, kind: str, config: str = "default") -> Path:
    d = root / name
    shutil.copytree(RUN, d)
    s = json.loads((d / "summary.json").read_text())
    s.update(run=name, kind=kind, started=f"2026-11-{name[6:8]}T00:00:00Z")
    s["properties"]["config"] = config
    (d / "summary.json").write_text(json.dumps(s))
    return d


def test_retention_prunes_only_old_nightlies_of_the_config(tmp_path):
    nights = [copy(tmp_path, f"202611{d:02d}T000000Z-default-nightly", "nightly") for d in range(1, 6)]
    manual = copy(tmp_path, "20261102T000000Z-default", "run")
    other = copy(tmp_path, "20261101T000000Z-other-nightly", "nightly", config="other")
    (tmp_path / "latest").symlink_to(nights[-1].name)
    gone = nightly.prune(tmp_path, "default", keep=2)
    assert sorted(gone) == nights[:3]
    assert [d.exists() for d in nights] == [False, False, False, True, True]
    assert manual.exists() and other.exists()


def test_fetch_moves_the_configured_ref(tmp_path):
    """nightly.fetch: `git fetch` in kernel.git, so kernel.ref (origin/master) follows upstream."""
    import subprocess
    from kharness.config import load

    def git(*args, cwd):
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                              env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                   "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout.strip()
    up, tree = tmp_path / "upstream", tmp_path / "linux"
    up.mkdir()
    git("init", "-q", "-b", "master", cwd=up)
    git("commit", "-q", "--allow-empty", "-m", "one", cwd=up)
    git("clone", "-q", str(up), str(tree), cwd=tmp_path)
    git("commit", "-q", "--allow-empty", "-m", "two", cwd=up)
    new = git("rev-parse", "HEAD", cwd=up)
    assert git("rev-parse", "origin/master", cwd=tree) != new
    cfg = tmp_path / "n.yaml"
    cfg.write_text(f"name: n\nkernel: {{git: {tree}, ref: origin/master}}\nnightly: {{fetch: true}}\n")
    nightly.fetch(load(cfg), tmp_path / "fetch.log")
    assert git("rev-parse", "origin/master", cwd=tree) == new
    assert git("status", "--porcelain", cwd=tree) == ""          # the work tree is not touched
