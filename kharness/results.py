"""The run directory: results/<UTC timestamp>-<label>/ and everything written into it.

    junit.xml       one testsuite per variant; testcase classname = variant, name = job
    summary.json    run metadata and every verdict (the machine-readable record)
    kernel.json     which kernel and patches produced these results
    console.log     the serial console of every boot, line numbers stable for the run
                    (-j N: guest 1's; guest k writes console-k.log)
    jobs/<variant>/<job>/{stdout,stderr,console.txt,evidence.txt,verdict.json}
results/latest points at the newest run. summary.json and verdict.json are written
(and read) only by kharness/report/record.py; this module says what goes into them.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from . import ui
from .config import RunConfig, repo_path
from .errors import UserError
from .report import record
from .report.history import DB_NAME, History


def results_root(cfg: RunConfig) -> Path:
    """The results directory, created and checked writable (one clear line if not)."""
    root = repo_path(cfg.results)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"results: cannot write to {root} ({e.strerror}); set `results:` in the config to a writable directory")
    if (root / DB_NAME).exists() or (root / DB_NAME).is_symlink():
        History(root).close()           # a broken history is one line now, not a lost report after the run
    return root


def new_run_dir(cfg: RunConfig, label: str) -> Path:
    root = results_root(cfg)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(100):
        d = root / (f"{stamp}-{label}" + (f"-{n}" if n else ""))
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise UserError(f"results: too many runs named {stamp}-{label} in {root}")


def one_line(r) -> str:
    v = r.verdict
    color = {"pass": "green", "skip": "dim", "fail": "red", "hang": "magenta", "crash": "red",
             "warn": "yellow", "error": "red"}[v.status]
    took = f" {r.outcome.duration:.1f}s" if r.outcome else ""
    msg = f"  {v.message}" if v.message else ""
    return f"[{color}]{v.status.upper():5}[/{color}] {r.job.id}{took}{msg}"


def write_job(r, run_dir: Path) -> None:
    """The job's verdict.json, as soon as it finished (kept if the run is cut short)."""
    record.write_job_record(r, run_dir)


def exit_status(job_results, jobs) -> int:
    statuses = {r.verdict.status for r in job_results}
    if "error" in statuses or len(job_results) < len(jobs):
        return 2
    if statuses - {"pass", "skip"}:
        return 1
    return 0


def run_properties(cfg: RunConfig, kernel_art, sessions) -> dict:
    props = {"config": cfg.name, "accel": sessions[0].accel_note if sessions else ""}
    if len(sessions) > 1:
        props["guests"] = str(len(sessions))
    if kernel_art:
        m = kernel_art.meta
        props.update({"kernel_release": m["release"], "base_commit": m["base_commit"],
                      "head_commit": m["head_commit"],
                      "series": ",".join(s["name"] for s in m["series"]) or "none",
                      "patches": " | ".join(p["subject"] for s in m["series"] for p in s["patches"]) or "none",
                      "kernel_key": kernel_art.key})
        for t in (s for s in m["series"] if s.get("thread")):
            th, pre = t["thread"], f"thread.{t['name']}"
            props.update({f"{pre}.message_id": th["message_id"], f"{pre}.revision": th["revision"],
                          f"{pre}.apply": th["apply"] + (f" -F{th['fuzz']}" if th["apply"] == "fuzzy" else ""),
                          f"{pre}.skipped": " | ".join(f"{s['number']}/{th['total']} ({s['reason']})"
                                                       for s in th["skipped"]) or "none"})
        fuzzed = [f"{a['label']} {h['file']} hunk #{h['hunk']} offset {h['offset']:+d} fuzz {h['fuzz']}"
                  for a in m.get("applied", []) for h in a["hunks"]]
        if fuzzed:
            props["fuzzed_hunks"] = " | ".join(fuzzed)
    return props


def write_run(run_dir: Path, cfg: RunConfig, kernel_art, sessions, jobs, job_results, skipped, started: float,
              interrupted: bool = False, setup_error: str | None = None, kind: str = "run",
              shard: str | None = None, plan: list[str] | None = None, quiet: bool = False) -> None:
    """Write summary.json (the run's record) for whatever finished, then render junit.xml,
    report.html and summary.txt from it; called on every exit path. sessions: the run's guest
    slots (none when it never booted)."""
    # Jobs that never ran (interrupted, or the kernel/image never came) still appear: as errors.
    done = {r.job.id for r in job_results}
    not_run = [j for j in jobs if j.id not in done]
    why_not = "run interrupted before this job finished" if interrupted else (setup_error or "not run")
    outside = []
    for s in sessions:       # each guest's console: the windows of the jobs that ran on it
        windows = [r.console_lines for r in job_results if r.console_lines and r.console_file == s.console_file]
        outside += [dataclasses.replace(f, console=s.console_file if s.console_file != "console.log" else "")
                    for f in s.analyzer.findings if not any(a <= f.line <= b for a, b in windows)]
    props = run_properties(cfg, kernel_art, sessions)
    if kernel_art:
        shutil.copyfile(kernel_art.dir / "kernel.json", run_dir / "kernel.json")
    jobs_done = [record.job_from_result(r, run_dir) for r in job_results]
    repeats = record.repeat_tallies(jobs_done)
    for name, t in repeats.items():
        props[f"repeat.{name}"] = f"{t['failed']} of {t['runs']} failed ({t['label']})"
    rec = record.RunRecord(
        dir=run_dir, name=run_dir.name, kind=kind, config=cfg.name, config_file=str(cfg.path) if cfg.path else "",
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        seconds=round(time.time() - started, 1), interrupted=interrupted, properties=props,
        warn_is_failure=cfg.warn_is_failure,
        shard=shard, plan=plan if plan is not None else [j.id for j in jobs],
        boots=sum(s.boots for s in sessions),
        boot_seconds=[round(x, 2) for s in sessions for x in s.boot_seconds],
        jobs=jobs_done,
        not_run=[record.NotRun(j.id, j.variant.name, j.name, why_not) for j in not_run],
        not_run_reason=why_not,
        not_applicable=[record.NotApplicable(v.name, t.name, why) for v, t, why in skipped],
        findings_outside=[record.finding_from_json(f.to_json()) for f in outside])
    record.write_run_record(rec)
    render_reports(run_dir)
    if kind in record.NO_HISTORY:
        return
    latest = run_dir.parent / "latest"
    tmp_link = run_dir.parent / f".latest.{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(run_dir.name)
    os.replace(tmp_link, latest)
    if not quiet:
        _print_table(job_results, not_run, outside, repeats, run_dir)


def render_reports(run_dir: Path):
    """junit.xml, report.html, summary.txt from summary.json (how the run judged is in it).
    A rendering bug must not cost the run its record: summary.json is already written; say
    how to re-render."""
    try:
        from .report import render
        return render.render_run(run_dir)
    except Exception as e:
        ui.warn(f"rendering the reports of {run_dir} failed ({type(e).__name__}: {e}); summary.json and "
                f"the job files are intact: re-render with `./harness.py report {run_dir}`")
        return None


def _counts(job_results) -> dict:
    out: dict[str, int] = {}
    for r in job_results:
        out[r.verdict.status] = out.get(r.verdict.status, 0) + 1
    return out


def _print_table(job_results, not_run, outside, repeats: dict[str, dict], run_dir: Path) -> None:
    from rich.table import Table
    t = Table(title=f"results: {run_dir}", show_lines=False)
    for col in ("variant", "job", "verdict", "time", "message"):
        t.add_column(col)
    for r in job_results:
        t.add_row(r.job.variant.name, r.job.name, r.verdict.status,
                  f"{r.outcome.duration:.1f}s" if r.outcome else "", r.verdict.message[:100])
    for j in not_run:
        t.add_row(j.variant.name, j.name, "error", "", "not run")
    for f in outside:
        t.add_row("-", f"(outside jobs{', ' + f.console if f.console else ''})", f.kind, "", f.title)
    ui.console.print(t)
    counts = _counts(job_results)
    ui.console.print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no jobs ran")
    for name, t in repeats.items():
        ui.console.print(f"  {name}: {t['failed']} of {t['runs']} failed ({t['label']})")
    if (run_dir / "report.html").exists():
        ui.console.print(f"report: {run_dir / 'report.html'}  (summary: {run_dir / 'summary.txt'})")
