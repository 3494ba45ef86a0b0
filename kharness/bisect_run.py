"""`harness.py bisect`: build "base + first k patches", boot it, run the job, record, repeat.

    bisect.next_action(state)                    which k next (pure: kharness/bisect.py)
    kernel.build_kernel(..., take=fixed + k)     an incremental build in the source's one build tree
    runner.start_session + suite.run             the job, through the same lifecycle as `run`
    results/<UTC>-<config>-bisect/
        bisect.json                              written after every run: resumable (--resume DIR)
        steps/<visit>-k<k>/                      each visit to a candidate is a run directory
        report.html, junit.xml, summary.txt      report/bisect_report.py, from bisect.json alone
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import bisect, config, files, image, kernel, results, runner, ui
from .config import RunConfig
from .errors import UserError
from .model import VERDICTS, Job, JobResult
from .report import bisect_report, record
from .series import Patch, read_series

FORMAT = 1
RUN_REPEAT = 1000          # a bisection job is one run of many: names carry its iteration (test#i)


@dataclass
class Candidates:
    fixed: int                  # patches always applied (the baseline's series), not bisected
    patches: list[Patch]        # the bisected ones: candidate k applies the first k
    series: list                # the config's kernel.series entries


def candidates(cfg: RunConfig) -> Candidates:
    """Every patch the config's series apply, in order; the baseline's series (when the config
    has `baseline:` and it is the start of kernel.series) is the good end and is not bisected."""
    entries = list(cfg.kernel.series)
    fixed_entries = cfg.baseline.series if cfg.baseline else []
    fixed = 0
    if fixed_entries and entries[:len(fixed_entries)] == list(fixed_entries):
        fixed = sum(len(read_series(e).patches) for e in fixed_entries)
    every = [p for e in entries for p in read_series(e).patches]
    return Candidates(fixed, every[fixed:], entries)


def find_job(cfg: RunConfig, job_id: str) -> Job:
    """VARIANT.TEST (as in junit.xml and `list`) -> the planned job; one line if not in the plan."""
    variant, dot, test = job_id.partition(".")
    if not dot or not test:
        raise UserError(f"--job {job_id!r}: give VARIANT.TEST, e.g. --job ext4.zero-range-vs-sync-range "
                        f"(`./harness.py list -c {cfg.path}` shows the plan)")
    if variant not in {v.name for v in cfg.variants}:
        raise UserError(f"--job {job_id}: no variant {variant!r} in {cfg.path} "
                        f"(variants: {', '.join(v.name for v in cfg.variants)})")
    jobs, skipped = runner.plan(cfg, [test], variants=[variant])
    if not jobs:
        why = "; ".join(r for _, _, r in skipped) or "it is not in the config's tests"
        raise UserError(f"--job {job_id}: not in the plan of {cfg.path}: {why}")
    return jobs[0]


def _job_run(job: Job, i: int) -> Job:
    return Job(job.suite, job.variant, job.test, iteration=i, repeat=RUN_REPEAT, duration=job.duration)


@dataclass
class Bisection:
    dir: Path
    cfg: RunConfig
    job: Job
    cands: Candidates
    state: bisect.State
    signature_given: bool
    started: float
    steps: list[dict]           # one per visit: k, dir, kernel release, build and run seconds, cache hit
    prior_seconds: float = 0.0

    def to_json(self, outcome: bisect.Action | None, interrupted: bool = False) -> dict:
        s = self.state
        out = {"format": FORMAT, "config": str(self.cfg.path), "config_name": self.cfg.name,
               "job": self.job.id, "signature": s.signature, "signature_given": self.signature_given,
               "confidence": s.confidence, "n": s.n, "fixed_patches": self.cands.fixed,
               "patches": [{"k": i + 1, "series": p.series, "file": p.file, "subject": p.subject,
                            "message_id": p.message_id, "author": p.author, "sha256": p.sha256}
                           for i, p in enumerate(self.cands.patches)],
               "failure_rate": round(s.rate(), 4) if s.signature else None,
               "runs_per_good_step": (bisect.runs_needed(s.rate(), s.confidence)
                                      if s.signature and s.rate() > 0 else None),
               "runs": [r.to_json() for r in s.runs],
               "decisions": [d.__dict__ for d in bisect.decisions(s)],
               "visits": self.steps,
               "seconds": round(self.prior_seconds + time.time() - self.started, 1),
               "interrupted": interrupted}
        if outcome and outcome.kind != "run":
            out["outcome"] = {"kind": outcome.kind, "k": outcome.k, "why": outcome.why}
            if outcome.kind == "done":
                out["culprit"] = out["patches"][outcome.k - 1]
                out["confidence_reached"] = bisect.overall_confidence(s)
        return out

    def save(self, outcome: bisect.Action | None = None, interrupted: bool = False) -> None:
        data = self.to_json(outcome, interrupted)
        tmp = self.dir / f".bisect.json.{os.getpid()}"
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, self.dir / "bisect.json")


MAX_SIGNATURE = 500        # titles are one line of at most a few hundred characters


def _check_args(confidence: float, signature: str | None) -> None:
    if not 0.5 <= confidence <= 0.9999:
        raise UserError(f"--confidence {confidence}: give a value from 0.5 to 0.9999, e.g. 0.95")
    if signature is not None and not signature.strip():
        raise UserError("--signature: empty; give part of the failure's title, e.g. 'MISMATCH' or "
                        "'INFO: task hung in'")
    if signature is not None and (len(signature) > MAX_SIGNATURE or any(ord(c) < 0x20 for c in signature)):
        raise UserError(f"--signature: {signature[:60]!r}{'...' if len(signature) > 60 else ''} can never match: a "
                        f"failure's title is one line of at most {MAX_SIGNATURE} characters; give part of it")


MAX_RECORD_BYTES = 64 << 20
_NUM = (int, float)
# bisect.json as to_json() writes it (report/record.py's notation); what resume reads is checked first.
_RECORD = {"format?": int, "config": str, "job": str, "n": int, "confidence": _NUM, "signature": (str, None),
           "signature_given?": bool, "patches?": [{"sha256": str, "*": object}],
           "runs": [{"k": int, "status": str, "message": str, "dir?": str, "seconds?": _NUM, "titles?": [str]}],
           "visits?": [{"k": int, "build_seconds?": (_NUM, None), "run_seconds?": _NUM, "cache_hit?": bool,
                        "runs?": int, "*": object}],
           "seconds?": _NUM, "*": object}


def _read_record(path: Path) -> dict:
    """bisect.json, bounded and regular, of the shape this harness writes; one line if not."""
    raw = files.read_bytes(path, "bisection record", MAX_RECORD_BYTES)
    try:
        data = record.parse_json(raw)
    except (ValueError, RecursionError) as e:
        why = str(e).splitlines()[0][:200]
    else:
        why = (record.shape_problem(data, _RECORD) if isinstance(data, dict)
               else f"a JSON {type(data).__name__}, not an object")
    if why is None:
        bad = next((i for i, r in enumerate(data["runs"]) if not 0 <= r["k"] <= data["n"]
                    or r["status"] not in VERDICTS), None)
        why = (f"format {data['format']} is newer than this kharness reads (format {FORMAT})"
               if data.get("format", 0) > FORMAT else
               f"n is {data['n']}, not a number of patches" if data["n"] < 1 else
               f"confidence {data['confidence']} is not from 0.5 to 0.9999" if not 0.5 <= data["confidence"] <= 0.9999
               else f"runs[{bad}] is not a run of candidate 0..{data['n']} with a verdict" if bad is not None else None)
    if why is None and data["signature"] is not None:
        try:
            _check_args(data["confidence"], data["signature"])
        except UserError as e:
            why = f"signature: {str(e).removeprefix('--signature: ')}"
    if why:
        raise UserError(f"{path}: not a bisection record this harness wrote ({why}); start a new bisection")
    return data


def start(cfg: RunConfig, job_id: str, signature: str | None, confidence: float, accel: str | None) -> int:
    _check_args(confidence, signature)
    job = find_job(cfg, job_id)
    runner.preflight(cfg)                          # bad input: one line before anything is created
    cands = candidates(cfg)
    if len(cands.patches) < 1:
        raise UserError(f"{cfg.path}: kernel.series: {len(cands.patches) + 1} candidate(s) only; a bisection "
                        "needs at least one patch beyond the good end (the baseline's series, if any)")
    d = results.new_run_dir(cfg, f"{cfg.name}-bisect")
    b = Bisection(d, cfg, job, cands, bisect.State(len(cands.patches), confidence, signature),
                  signature is not None, time.time(), [])
    b.save()
    return _loop(b, accel)


def resume(run_dir: Path, accel: str | None) -> int:
    path = run_dir / "bisect.json"
    if not os.path.lexists(path):
        raise UserError(f"--resume {run_dir}: no bisect.json there; give a directory `bisect` made")
    data = _read_record(path)
    runs = [bisect.Run(r["k"], r["status"], r["message"], r.get("dir", ""), r.get("seconds", 0.0),
                       tuple(r.get("titles", ())))
            for r in data["runs"]]
    cfg_path, job_id, n = data["config"], data["job"], data["n"]
    from . import suites    # noqa: F401  registers the suites' config sections
    cfg = config.load(cfg_path)
    job = find_job(cfg, job_id)
    runner.preflight(cfg)
    cands = candidates(cfg)
    if [p["sha256"] for p in data.get("patches", [])] != [p.sha256 for p in cands.patches] or n != len(cands.patches):
        raise UserError(f"--resume {run_dir}: the series of {cfg_path} changed since this bisection started "
                        "(other patches); start a new bisection")
    state = bisect.State(n, data["confidence"], data["signature"], runs)
    b = Bisection(run_dir, cfg, job, cands, state, data.get("signature_given", False), time.time(),
                  data.get("visits", []), data.get("seconds", 0.0))
    ui.stage(f"resuming {run_dir}: {len(runs)} run(s) recorded")
    return _loop(b, accel)


class _Visit:
    """One candidate's kernel booted: its run directory, session and job results."""

    def __init__(self, b: Bisection, k: int, image_art, accel: str | None):
        self.b, self.k, self.started = b, k, time.time()
        self.dir = b.dir / "steps" / f"{len(b.steps) + 1:02d}-k{k:02d}"
        self.dir.mkdir(parents=True)
        self.results: list[JobResult] = []
        self.jobs: list[Job] = []
        self.session = None
        self.kernel_art = None
        t0 = time.monotonic()
        ui.stage(f"k={k} of {b.state.n}: " + (f"up to {b.cands.patches[k - 1].subject!r}" if k else "no patch of the series"))
        self.kernel_art, hit = kernel.build_kernel(b.cfg.kernel, self.dir, series_override=b.cands.series,
                                                   take=b.cands.fixed + k)
        build = round(time.monotonic() - t0, 1)
        ui.info(f"{'cache hit' if hit else f'built in {build:.0f} s'}: {self.kernel_art.release}")
        self.meta = {"k": k, "dir": os.path.relpath(self.dir, b.dir), "kernel_key": self.kernel_art.key,
                     "cache_hit": hit, "build_seconds": build,
                     "objects_compiled": 0 if hit else self.kernel_art.meta.get("objects_compiled"),
                     "runs": 0, "run_seconds": 0.0}
        b.steps.append(self.meta)
        self.session, self.prepared = runner.start_session(b.cfg, self.dir, self.kernel_art, image_art,
                                                            [b.job], accel)

    def run_once(self) -> bisect.Run:
        b = self.b
        job = _job_run(b.job, len(b.state.at(self.k)) + 1)
        self.jobs.append(job)
        t0 = time.monotonic()
        (p, _), = self.prepared
        r, = list(p.run(self.session, [job]))
        self.results.append(r)
        results.write_job(r, self.dir)
        self.meta["runs"] += 1
        self.meta["run_seconds"] = round(self.meta["run_seconds"] + time.monotonic() - t0, 1)
        run = bisect.Run(self.k, r.verdict.status, r.verdict.message, os.path.relpath(r.dir, b.dir),
                         round(r.outcome.duration, 1) if r.outcome else 0.0,
                         tuple(dict.fromkeys(f.title for f in r.verdict.findings)))
        ui.info(results.one_line(r))
        return run

    def close(self, interrupted: bool = False) -> None:
        if self.session:
            self.session.close()
        results.write_run(self.dir, self.b.cfg, self.kernel_art, [self.session] if self.session else [], self.jobs, self.results, [],
                          self.started, interrupted=interrupted, kind="bisect-step", quiet=True)


def _loop(b: Bisection, accel: str | None) -> int:
    cfg, state = b.cfg, b.state
    ui.stage(f"bisect {b.job.id} over {state.n} patch(es) in {b.dir}")
    visit: _Visit | None = None
    action = None
    interrupted = False
    try:
        with ui.progress("root filesystem") as p:
            image_art, _ = image.build_image(cfg.image, b.dir / "image-build.log", progress=p.update)
        while True:
            action = bisect.next_action(state)
            if action.kind != "run":
                break
            if visit is None or visit.k != action.k:
                if visit:
                    visit.close()
                visit = _Visit(b, action.k, image_art, accel)
            state.runs.append(visit.run_once())
            b.save()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if visit:
            visit.close(interrupted)
        b.save(action if not interrupted else None, interrupted)
        bisect_report.render(b.dir)
    if interrupted:
        ui.warn(f"bisection interrupted; continue it with: ./harness.py bisect --resume {b.dir}")
        raise KeyboardInterrupt
    ui.out((b.dir / "summary.txt").read_text().rstrip("\n"))
    if action.kind == "done":
        return 0
    raise UserError(f"bisect: {action.why} (evidence: {b.dir / 'report.html'})")


def job_from_run(run_dir: Path) -> tuple[str, str]:
    """--from RUN: (config file, VARIANT.TEST) of the run's first new failure, else its first failure."""
    from .report.history import DB_NAME, History
    from .report.runview import view
    rec = record.load(run_dir)
    if not rec.config_file:
        raise UserError(f"--from {run_dir}: the run does not record its config file; use -c and --job")
    hist = History(rec.dir.parent) if (rec.dir.parent / DB_NAME).exists() else None
    try:
        v = view(rec, hist)
    finally:
        if hist:
            hist.close()
    groups = v.new_failures or [g for g in v.groups if g.tally.any_failed]
    if not groups:
        raise UserError(f"--from {run_dir}: no job failed in that run; nothing to bisect")
    return rec.config_file, groups[0].key
