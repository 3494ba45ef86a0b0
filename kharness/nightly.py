"""`harness.py nightly`: one unattended run, as a timer or cron starts it.

    lock        results/.nightly.lock (flock): a second nightly on the same results
                directory says who holds it and exits 2, it never waits or overlaps
    fetch       nightly.fetch: `git fetch` in kernel.git (remote-tracking refs only), so
                kernel.ref: origin/for-next moves; an unchanged commit + series + config
                is a kernel cache hit, nothing rebuilds
    run         the config's jobs, exactly as `run` (series files are read fresh each time)
    retention   nightly.keep newest nightly run directories; older ones are deleted
                (history.sqlite keeps their verdicts; runs made by hand are never pruned)
    summary     summary.txt printed (and in the run directory), exit status as `run`
"""
from __future__ import annotations

import fcntl
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from . import config, files, proc, results, runner, ui
from .config import RunConfig
from .errors import InfraError, UserError
from .report import html, record
from .report.history import History

LOCK_NAME = ".nightly.lock"


@contextmanager
def nightly_lock(root: Path):
    path = root / LOCK_NAME
    if os.path.lexists(path) and not path.is_file():
        raise UserError(f"{path}: the nightly lock is {files.describe_mode(os.lstat(path).st_mode)}, not a file; "
                        f"remove it (only `nightly` makes it)")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise UserError(f"{path}: cannot open the nightly lock ({e.strerror}); remove it (only `nightly` makes it)")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"another nightly holds {path} ({holder}); not starting a second one "
                            f"(the lock is released when that run exits)")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)    # closing the descriptor releases the flock, even after kill -9


def fetch(cfg: RunConfig, log: Path) -> None:
    tree = Path(cfg.kernel.git).expanduser()
    with ui.progress(f"git fetch in {tree}") as p:
        p.update("fetching")
        proc.run(["git", "-C", tree, "fetch", "--quiet"], log)
        p.update(f"{cfg.kernel.ref} is now " +
                 proc.capture(["git", "-C", tree, "rev-parse", "--short", f"{cfg.kernel.ref}^{{commit}}"]).strip())


def prune(root: Path, config: str, keep: int) -> list[Path]:
    """Delete all but the `keep` newest nightly run directories of this config."""
    nightlies = []
    for d in root.iterdir():
        if d.is_symlink() or not d.is_dir():
            continue
        try:
            rec = record.read_run(d)
        except UserError:           # not a run, or a record this version cannot read: kept
            continue
        if rec.kind == "nightly" and rec.config == config:
            nightlies.append((rec.started, d.name, d))
    nightlies.sort(reverse=True)
    gone = [d for _, _, d in nightlies[keep:]]
    latest = (root / "latest").resolve() if (root / "latest").exists() else None
    for d in gone:
        if d.resolve() != latest:
            shutil.rmtree(d)
    return gone


def preflight(cfg: RunConfig) -> None:
    """What `run` checks before it creates anything, checked before the lock and the run
    directory: bad input leaves no lock file, run directory or history row behind."""
    jobs, skipped = runner.plan(cfg)
    if not (jobs or skipped):
        raise UserError(f"{cfg.path}: tests: nothing to run (no tests, no fstests.tests)")
    runner.preflight(cfg)
    if cfg.nightly.fetch:
        tree = Path(cfg.kernel.git).expanduser()
        try:
            remotes = proc.capture(["git", "-C", tree, "remote"]).split()
        except (InfraError, OSError):
            remotes = []
        if not remotes:
            raise UserError(f"{config.at(cfg, 'nightly.fetch')}: nightly.fetch: {tree} has no git remote to fetch "
                            f"from; add one (git remote add) or remove nightly.fetch")


def cmd_nightly(cfg: RunConfig, accel: str | None = None) -> int:
    preflight(cfg)
    root = results.results_root(cfg)
    with nightly_lock(root):
        run_dir = results.new_run_dir(cfg, f"{cfg.name}-nightly")
        if cfg.nightly.fetch:
            fetch(cfg, run_dir / "fetch.log")
        try:
            status = runner.cmd_run(cfg, accel=accel, kind="nightly", run_dir=run_dir)
        finally:
            if not any(run_dir.iterdir()):      # refused before it started (bad input): leave nothing
                run_dir.rmdir()
        gone = prune(root, cfg.name, cfg.nightly.keep)
        if gone:
            ui.info(f"retention: deleted {len(gone)} nightly run(s) older than the newest {cfg.nightly.keep}: "
                    f"{', '.join(d.name for d in gone)}")
            with History(root) as h:            # the index links only what is still there
                html.write_index(root / "index.html", h)
        summary = run_dir / "summary.txt"
        if summary.exists():
            ui.out(summary.read_text().rstrip("\n"))
    return status
