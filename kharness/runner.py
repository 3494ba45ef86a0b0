"""run / repro / list / shell: plan the jobs with every suite, boot guests, run, write results.

    suites.SUITES -> plan(cfg) -> [Job]     each suite plans its own jobs (variants x tests x iterations)
    suite.prepare(...)                      the image and guest binaries a suite's jobs need (fstests: built in;
                                            reproducers: a read-only tools disk, tools_disk.disk)
    Session                                 boots VMs (accel choice, fresh disks, console per boot); one per guest slot
    guests.run_slots                        -j N: each slot's share (shard.by_guest) in a thread of its own
    prepared.run(session, jobs)             each job through lifecycle.watched, judged by verdict.judge
    results.write_job / write_run           verdict.json as each job ends; summary.json, reports
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from . import config, guests, image, kernel, reproducers, results, suites, tools_disk, ui
from . import series as series_mod
from .config import RunConfig
from .errors import InfraError, UserError
from .lifecycle import disk_full_error
from .model import Job, JobResult
from .report import record
from . import shard as sharding
from .session import RUN_JOB, Accel, Session

RESERVE_BYTES = 8 << 20       # kept allocated in the run directory until junit.xml/summary.json are written


def plan(cfg: RunConfig, only: list[str] | None = None, variants: list[str] | None = None,
         repeat: int | None = None, duration: int | None = None) -> tuple[list[Job], list]:
    """Every suite's jobs, in suite order, and the (variant, test, reason) pairs that do not apply.
    only: names from --only / repro (None: what the config lists)."""
    jobs, skipped = [], []
    for suite, names in ((s, suites.split_only(only)[s.name]) for s in suites.SUITES):
        j, sk = suite.plan(cfg, names, variants=variants, repeat=repeat, duration=duration)
        jobs += j
        skipped += sk
    config.check_job_count(cfg, len(jobs), "every suite's jobs together")
    return jobs, skipped


def preflight(cfg: RunConfig) -> Path:
    """What every command that boots (run, repro, shell, nightly, bisect) checks before anything
    exists: the build's inputs (kernel.preflight, the baseline's series too; the image's), the cache, the results
    directory and room there for the disks. Bad input is one line, and nothing has been created
    (results/ itself may be made, empty, to be checked). Returns the results directory."""
    kernel.preflight(cfg.kernel)
    if cfg.baseline:
        kernel.preflight(cfg.kernel, cfg.baseline.series)
    image.preflight(cfg.image)
    root = results.results_root(cfg)
    _check_disk_room(cfg, root)
    return root


def _prepare_artifacts(cfg: RunConfig, run_dir: Path):
    k = cfg.kernel
    ui.stage(f"kernel ({k.tarball or k.git or f'Debian {k.debian.suite} {k.debian.package}'})")
    k, hit = kernel.build_kernel(cfg.kernel, run_dir)
    ui.info(f"{'cache hit' if hit else 'built'}: {k.release} ({k.dir})")
    ui.stage("guest image")
    with ui.progress("root filesystem") as p:
        img, ihit = image.build_image(cfg.image, run_dir / "image-build.log", progress=p.update)
        p.update("cache hit" if ihit else "built")
    return k, img


def start_session(cfg: RunConfig, run_dir: Path, kernel_art, image_art, jobs: list[Job], accel: str | None,
                  slots: int = 1):
    """Each suite prepares what its jobs need; the sessions (one per guest slot, sharing the
    accelerator choice) boot the image one of them built (fstests: the base image with
    fstests in it, a superset), else the base image."""
    prepared = []
    for suite in suites.SUITES:
        mine = [j for j in jobs if j.suite == suite.name]
        if mine:
            prepared.append((suite.prepare(cfg, run_dir, mine), mine))
    img = next((p.image for p, _ in prepared if p.image), image_art)
    shared = Accel(accel or cfg.vm.accel)
    tools = tools_disk.disk(RUN_JOB, {n: f for p, _ in prepared for n, f in p.tools.items()}, run_dir / "setup.log")
    sessions = [Session(cfg, run_dir, kernel_art, img, shared, guest=i, tools=tools) for i in range(1, slots + 1)]
    return (sessions[0] if slots == 1 else sessions), prepared


def _execute_all(sessions: list[Session], prepared, job_results: list[JobResult],
                 recorded: dict[str, float] | None = None) -> str | None:
    """Run the jobs on the sessions' guests (each slot its share, suite by suite); each result
    is appended and written as it finishes (kept on interrupt). Returns why the run must stop
    early (the results disk is full), else None."""
    n = len(sessions)
    shares = [[] for _ in sessions]
    for p, jobs in prepared:
        split = sharding.by_guest(jobs, n, recorded or {}, suites.guest_unit) if n > 1 else [jobs]
        for share, mine in zip(shares, split):
            share.append((p, mine))
    if n > 1:
        for i, share in enumerate(shares):
            ids = [j.id for _, jobs in share for j in jobs]
            ui.info(f"guest {i + 1}: {len(ids)} job(s): {', '.join(ids) or 'none'}")
    sink = guests.Collector(sessions[0].run_dir, job_results)
    try:
        guests.run_slots(sessions, shares, sink)
    finally:
        order = {j.id: i for i, j in enumerate(j for _, jobs in prepared for j in jobs)}
        job_results.sort(key=lambda r: order.get(r.job.id, len(order)))   # plan order, as a serial run has them
    return sink.stop_reason


def _start_sessions(cfg, run_dir, kernel_art, image_art, jobs, accel, slots) -> tuple[list[Session], list]:
    sessions, prepared = start_session(cfg, run_dir, kernel_art, image_art, jobs, accel, slots)
    return (sessions if isinstance(sessions, list) else [sessions]), prepared


def _run_baseline(cfg: RunConfig, run_dir: Path, image_art, jobs: list[Job], skipped, accel: str | None,
                  slots: int = 1, recorded: dict[str, float] | None = None) -> None:
    """The same jobs on the same base without the series (config `baseline:`), in run_dir/baseline."""
    base_dir = run_dir / "baseline"
    base_dir.mkdir()
    series = cfg.baseline.series
    ui.stage(f"baseline: the same {len(jobs)} job(s) on the base with series "
             f"{', '.join(series_mod.series_label(e) for e in series) or 'none'}")
    started = time.time()
    kernel_art, sessions, job_results, interrupted = None, [], [], False
    try:
        kernel_art, hit = kernel.build_kernel(cfg.kernel, base_dir, series_override=series)
        ui.info(f"{'cache hit' if hit else 'built'}: {kernel_art.release} ({kernel_art.dir})")
        sessions, prepared = _start_sessions(cfg, base_dir, kernel_art, image_art, jobs, accel, slots)
        _execute_all(sessions, prepared, job_results, recorded)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        for s in sessions:
            s.close()
        results.write_run(base_dir, cfg, kernel_art, sessions, jobs, job_results, skipped, started,
                          interrupted=interrupted, kind="baseline",
                          setup_error=None if kernel_art else "baseline kernel build did not finish")


def run_jobs(cfg: RunConfig, jobs: list[Job], skipped, accel: str | None, label: str, kind: str = "run",
             shard: tuple[int, int] | None = None, run_dir: Path | None = None, parallel: int | None = None) -> int:
    """Run jobs (this shard's, with --shard) on `parallel` guests at once (-j; None: vm.parallel,
    else auto) and write the run directory; exit status as `run`."""
    root = preflight(cfg)                        # bad input: one line before anything is created
    plan_ids = [j.id for j in jobs]
    recorded = _recorded_durations(cfg, root)   # shards and guests balance by them
    if shard:
        jobs, skipped = sharding.select(jobs, skipped, shard, recorded)
        label, kind = f"{label}-shard{shard[0]}of{shard[1]}", "shard"
    slots, why = guests.count(cfg, parallel, len({suites.guest_unit(j) for j in jobs}))
    guests.check_room(cfg, slots, root)
    run_dir = run_dir or results.new_run_dir(cfg, label)
    reserve = _reserve(run_dir)
    ui.stage(f"run {run_dir}" + (f" (shard {shard[0]}/{shard[1]}: {len(jobs)} of {len(plan_ids)} jobs)" if shard else ""))
    started = time.time()
    sessions: list[Session] = []
    job_results: list[JobResult] = []
    kernel_art = None
    interrupted = False
    disk_full = None
    try:
        kernel_art, image_art = _prepare_artifacts(cfg, run_dir)
        ui.stage(f"{len(jobs)} job(s)" + (f" on {slots} guests at once ({why})" if slots > 1 else ""))
        sessions, prepared = _start_sessions(cfg, run_dir, kernel_art, image_art, jobs, accel, slots)
        disk_full = _execute_all(sessions, prepared, job_results, recorded)
        for s in sessions:
            s.close()
        if cfg.baseline and jobs and not disk_full:
            _run_baseline(cfg, run_dir, image_art, jobs, skipped, accel, slots, recorded)
    except KeyboardInterrupt:
        interrupted = True
    except OSError as e:
        if not disk_full_error(e):
            raise
        disk_full = f"results disk full: {e.filename or run_dir}: {e.strerror}"
    finally:
        for s in sessions:
            s.close()
        reserve.unlink(missing_ok=True)
        setup_error = None
        if disk_full:
            ui.warn(f"{disk_full}; stopping the run")
            setup_error = f"not run: {disk_full}"
        elif kernel_art is None and not interrupted:
            setup_error = "kernel or image build did not finish"
        try:
            for r in job_results:       # a verdict.json that the full disk cut short
                if not record.is_job_written(r.dir):
                    results.write_job(r, run_dir)
            results.write_run(run_dir, cfg, kernel_art, sessions, jobs, job_results, skipped, started,
                              interrupted=interrupted, setup_error=setup_error, kind=kind,
                              shard=f"{shard[0]}/{shard[1]}" if shard else None, plan=plan_ids)
        except OSError as e:
            if not disk_full_error(e):
                raise
            raise InfraError(f"results disk full: could not write the results in {run_dir} even after releasing "
                             f"the {RESERVE_BYTES >> 20} MiB reserve ({e.strerror})")
    if interrupted:
        raise KeyboardInterrupt
    if disk_full:
        return 2
    return results.exit_status(job_results, jobs)


def _recorded_durations(cfg: RunConfig, root: Path) -> dict[str, float]:
    """Mean seconds per job from results/history.sqlite (none yet: {}; nothing is created)."""
    from .report.history import DB_NAME, History
    if not (root / DB_NAME).exists():
        return {}
    with History(root) as h:
        return h.mean_durations(cfg.name)


def cmd_run(cfg: RunConfig, only=None, accel=None, repeat=None, duration=None, shard=None, kind="run",
            run_dir: Path | None = None, parallel: int | None = None) -> int:
    jobs, skipped = plan(cfg, only, repeat=repeat, duration=duration)
    if not (jobs or skipped):
        if not (cfg.tests or only):
            raise UserError(f"{cfg.path}: tests: the config lists no tests")
        raise UserError(f"{cfg.path}: tests: nothing to run (no tests, no fstests.tests, or --only matched none)")
    return run_jobs(cfg, jobs, skipped, accel, cfg.name, kind=kind, shard=shard, run_dir=run_dir, parallel=parallel)


def cmd_repro(cfg: RunConfig, name: str, fs=None, repeat=None, accel=None, duration=None,
              parallel: int | None = None) -> int:
    """One test by name (a reproducer, or an fstests test like generic/363), on the chosen variants."""
    suite = suites.owner(name)
    jobs, skipped = suite.plan(cfg, [name], variants=fs, repeat=repeat, duration=duration)
    if not jobs:
        reasons = "; ".join(r for _, _, r in skipped)
        raise UserError(f"{name} applies to none of the chosen variants: {reasons}")
    return run_jobs(cfg, jobs, skipped, accel, f"{cfg.name}-{jobs[0].test.name.replace('/', '-')}", kind="repro",
                    parallel=parallel)


def cmd_list(cfg: RunConfig) -> int:
    for suite in suites.SUITES:
        jobs, skipped = suite.plan(cfg)
        if not (jobs or skipped):
            continue
        ui.out(f"{cfg.name} {suite.name}: {len(jobs)} job(s)")
        for j in jobs:
            ui.out(f"  {j.variant.name:12} {j.name:40} timeout {j.timeout}s expect {j.test.expect}")
        for v, t, why in skipped:
            ui.out(f"  {v.name:12} {t.name:40} not applicable: {why}")
    ui.out("")
    ui.out("reproducers (./harness.py repro NAME):")
    for line in reproducers.describe(suites.BY_NAME[reproducers.NAME].catalogue):
        ui.out(line)
    return 0


def cmd_shell(cfg: RunConfig, accel=None) -> int:
    preflight(cfg)                               # bad input: one line before anything is created
    run_dir = results.new_run_dir(cfg, f"{cfg.name}-shell")
    k, img = _prepare_artifacts(cfg, run_dir)
    session = Session(cfg, run_dir, k, img, accel)
    try:
        guest = session.guest_ready()
        ui.stage(f"shell in {k.release} (console: {run_dir / 'console.log'}; exit the shell to stop the VM)")
        from .interactive import shell
        shell(guest)
    finally:
        session.close()
    return 0



def _check_disk_room(cfg: RunConfig, where: Path) -> None:
    """The test and scratch disks are sparse, but a job may fill them: the host must be able to hold both."""
    need = 2 * config.size_bytes(cfg.vm.disk_size)
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if need > free:
        raise UserError(f"{cfg.path}: vm.disk_size: two disks of {cfg.vm.disk_size} need {need >> 30} GiB but "
                        f"{where} has {free >> 30} GiB free; lower vm.disk_size or point `results:` elsewhere")


def _reserve(run_dir: Path) -> Path:
    """Hold RESERVE_BYTES in the run directory, so that junit.xml and summary.json can still be
    written when the disk fills up during the run (released by run_jobs before writing them)."""
    path = run_dir / ".reserve"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)
    except OSError as e:
        path.unlink(missing_ok=True)
        run_dir.rmdir()
        raise UserError(f"results: cannot set aside {RESERVE_BYTES >> 20} MiB in {run_dir.parent} for the run's "
                        f"results ({e.strerror}); free some space or point `results:` elsewhere")
    return path


