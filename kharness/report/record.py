"""The run record: the only code that reads or writes summary.json and verdict.json.

    jobs/<variant>/<job>/verdict.json   one job's verdict, written as the job finishes
    summary.json                        the run: metadata, every job's verdict, what did not
                                        apply or did not run, kernel findings outside any job,
                                        and how the run judged (warn_is_failure)

Reports (junit.xml, report.html, summary.txt) are always rendered from these records,
never from live objects or the config, so `harness.py report RUN` re-renders exactly what
the run itself wrote, and a merge of shards is just a merge of records.

Both files carry "format": FORMAT. A record without it (written before it existed) is
format 0 and reads with the defaults of then (warn_is_failure true); a record newer than
FORMAT is one clear line, never a guess. kernel.json (kharness/kernel.py) and the
baseline's own run directory (RUN/baseline) are read into the record, never written here.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .. import files
from ..errors import UserError
from ..model import VERDICTS, Finding, JobResult
from .labels import tallies

FORMAT = 1
SUMMARY = "summary.json"
VERDICT = "verdict.json"
OK = ("pass", "skip")
KINDS = ("run", "nightly", "shard", "merged", "baseline", "repro", "bisect-step")
NO_HISTORY = ("baseline", "bisect-step")   # part of another run: that run is the one history keeps
MAX_SUMMARY_BYTES = 256 << 20       # a run's record (every job, every finding's report)
MAX_VERDICT_BYTES = 64 << 20
MAX_KERNEL_BYTES = 16 << 20


@dataclass
class JobRecord:
    id: str                     # ext4.zero-range-basic(.2 with repeats)
    variant: str
    test: str
    iteration: int
    status: str                 # model.VERDICTS
    message: str
    expected: str
    duration: float | None
    exit_status: int | None
    findings: list[Finding]     # the kernel findings in the job's console window
    console_lines: list[int] | None
    detail: str                 # fstests: .out.bad diff head
    dir: str                    # relative to the run directory
    console_file: str = "console.log"   # relative to the run directory (shards: shards/<run>/console.log)
    repeat: int = 1
    guest_seconds: float | None = None  # the command's own time inside the guest
    timed_out: bool = False

    @property
    def key(self) -> str:
        """The job without its iteration: what history and shards group by."""
        return f"{self.variant}.{self.test}"

    @property
    def name(self) -> str:
        return self.test if self.repeat == 1 else f"{self.test}#{self.iteration}"

    @property
    def ok(self) -> bool:
        return self.status in OK

    def to_json(self) -> dict:
        return {"job": self.id, "variant": self.variant, "test": self.test, "iteration": self.iteration,
                "repeat": self.repeat, "dir": self.dir, "status": self.status, "message": self.message,
                "expected": self.expected, "exit_status": self.exit_status, "duration": self.duration,
                "guest_seconds": self.guest_seconds, "timed_out": self.timed_out,
                "console_lines": self.console_lines, "console_file": self.console_file,
                "findings": [f.to_json() for f in self.findings], "detail": self.detail}


@dataclass
class NotRun:
    id: str
    variant: str
    name: str
    reason: str = ""            # merged runs: each shard's own reason (else the run's not_run_reason)

    def to_json(self) -> dict:
        return {"job": self.id, "variant": self.variant, "name": self.name, "reason": self.reason}


@dataclass
class NotApplicable:
    variant: str
    test: str
    reason: str

    def to_json(self) -> dict:
        return {"variant": self.variant, "test": self.test, "reason": self.reason}


@dataclass
class RunRecord:
    dir: Path
    name: str
    config: str                 # config name (history is kept per config name); properties["config"]
    started: str
    seconds: float
    interrupted: bool
    properties: dict[str, str]
    boots: int
    boot_seconds: list[float]
    jobs: list[JobRecord]
    not_run: list[NotRun]
    not_run_reason: str
    not_applicable: list[NotApplicable]
    findings_outside: list[Finding]
    kind: str = "run"           # one of KINDS
    shard: str | None = None    # "2/4"
    plan: list[str] = field(default_factory=list)   # every job id of the unsharded plan
    kernel: dict = field(default_factory=dict)      # kernel.json (read only)
    baseline: "RunRecord | None" = None             # RUN/baseline: the same jobs on the baseline kernel (read only)
    merged_from: list[str] = field(default_factory=list)
    config_file: str = ""       # the config file the run was started with
    warn_is_failure: bool = True    # how the run judged warnings (a finding outside any job, too)
    format: int = FORMAT        # of the summary.json read (0: written before the field existed)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in self.jobs:
            out[j.status] = out.get(j.status, 0) + 1
        if self.not_run:
            out["error"] = out.get("error", 0) + len(self.not_run)
        return out

    @property
    def failed(self) -> bool:
        return any(not j.ok for j in self.jobs) or bool(self.not_run)


# --- writing -----------------------------------------------------------------------------

def job_from_result(r: JobResult, run_dir: Path) -> JobRecord:
    """A finished job as its record (what verdict.json and summary.json hold)."""
    o = r.outcome
    return JobRecord(
        id=r.job.id, variant=r.job.variant.name, test=r.job.test.name, iteration=r.job.iteration,
        repeat=r.job.repeat, dir=str(Path(r.dir).relative_to(run_dir)),
        status=r.verdict.status, message=r.verdict.message, expected=r.verdict.expected,
        exit_status=o.exit_status if o else None, duration=round(o.duration, 3) if o else None,
        guest_seconds=round(r.guest_seconds, 3) if r.guest_seconds is not None else None,
        timed_out=o.timed_out if o else False,
        console_lines=list(r.console_lines) if r.console_lines else None,
        findings=[finding_from_json(f.to_json()) for f in r.verdict.findings],
        detail=r.detail, console_file=r.console_file)


def write_job_record(r: JobResult, run_dir: Path) -> JobRecord:
    """jobs/<variant>/<job>/verdict.json for a finished job; returns what it wrote."""
    rec = job_from_result(r, run_dir)
    _write_json(Path(r.dir) / VERDICT, {"format": FORMAT, **rec.to_json()})
    return rec


def run_to_json(rec: RunRecord) -> dict:
    props = dict(rec.properties)
    if rec.config:
        props["config"] = rec.config
    data = {
        "format": FORMAT, "run": rec.name, "kind": rec.kind, "config": rec.config_file,
        "started": rec.started, "seconds": rec.seconds, "interrupted": rec.interrupted,
        "warn_is_failure": rec.warn_is_failure, "properties": props,
        "shard": rec.shard, "plan": rec.plan, "boots": rec.boots, "boot_seconds": rec.boot_seconds,
        "jobs": [j.to_json() for j in rec.jobs],
        "not_run": [n.to_json() for n in rec.not_run], "not_run_reason": rec.not_run_reason,
        "not_applicable": [n.to_json() for n in rec.not_applicable],
        "findings_outside_jobs": [f.to_json() for f in rec.findings_outside],
        # Derived, for readers other than kharness (CI scripts); never read back.
        "counts": _job_counts(rec.jobs), "repeats": repeat_tallies(rec.jobs),
    }
    if rec.merged_from:
        data["merged_from"] = rec.merged_from
    return data


def write_run_record(rec: RunRecord) -> Path:
    """rec.dir/summary.json, replaced atomically (a reader never sees half a record)."""
    path = Path(rec.dir) / SUMMARY
    _write_json(path, run_to_json(rec))
    return path


def repeat_tallies(jobs: list[JobRecord]) -> dict[str, dict]:
    """For jobs run more than once: "<variant>.<test>" -> {"failed": k, "runs": N, "label": ...}."""
    ts = tallies([j for j in jobs if j.repeat > 1])
    return {k: {"failed": t.failed, "runs": t.runs, "label": t.label} for k, t in ts.items() if t.runs}


def _job_counts(jobs: list[JobRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for j in jobs:
        out[j.status] = out.get(j.status, 0) + 1
    return out


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


# --- reading -----------------------------------------------------------------------------

def is_run(d: Path) -> bool:
    """Does d look like a run directory (it has a record)?"""
    return (Path(d) / SUMMARY).is_file()


class RecordError(ValueError):
    """A record that does not have the shape this code writes (the message names the field)."""


# The shape of what this module writes: a type, a tuple of alternatives, [item], or a dict of
# fields ("key?": optional, "*": any other key). Records are checked against it before use, so a
# hand-edited or crafted file is one line naming the field, never a crash in a report.
_NUM = (int, float)
_FINDING = {"kind": str, "type?": str, "title": str, "line": int, "report?": str, "count?": int, "console?": str}
_JOB = {"job": str, "variant": str, "test": str, "iteration?": int, "repeat?": (int, None), "dir?": (str, None),
        "status": str, "message?": str, "expected?": str, "duration?": (_NUM, None), "exit_status?": (int, None),
        "findings?": [_FINDING], "console_lines?": (None, [int]), "detail?": str, "console_file?": str,
        "guest_seconds?": (_NUM, None), "timed_out?": bool, "format?": int}
_PROPS = {**{f"{k}?": str for k in ("config", "accel", "kernel_release", "base_commit", "head_commit", "series",
                                     "patches", "kernel_key", "fuzzed_hunks")}, "*": (str, int, float, bool)}
_RUN = {"format?": int, "run?": str, "kind?": str, "config?": (str, None), "started?": str, "seconds?": _NUM,
        "interrupted?": bool, "warn_is_failure?": bool, "properties?": _PROPS, "shard?": (str, None),
        "plan?": [str], "boots?": int, "boot_seconds?": [_NUM], "jobs?": [_JOB],
        "not_run?": [(str, {"job": str, "variant": str, "name": str, "reason?": str})], "not_run_reason?": str,
        "not_applicable?": [{"variant": str, "test": str, "reason?": str}], "findings_outside_jobs?": [_FINDING],
        "merged_from?": [str], "counts?": dict, "repeats?": dict}
_THREAD = {"message_id": str, "revision": int, "source": str, "apply": str, "fuzz": int, "total": int,
           "skipped": [{"number": int, "subject": str, "reason": str}]}
_KERNEL = {"series?": [{"name": str, "patches": [{"subject": str, "message_id?": (str, None)}], "thread?": _THREAD}],
           "applied?": [{"label": str, "hunks": [{"file": str, "hunk": int, "line": int, "offset": int, "fuzz": int}]}],
           "*": object}


def _show(v) -> str:
    if isinstance(v, (dict, list)):
        return "an object" if isinstance(v, dict) else "a list"
    return repr(v)[:60]


def _expected(spec) -> str:
    if isinstance(spec, (list, dict)):
        return "a list" if isinstance(spec, list) else "an object"
    if spec == _NUM:
        return "a number"
    if isinstance(spec, tuple):
        return " or ".join(_expected(s) for s in spec)
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false", None: "null",
            dict: "an object"}.get(spec, "a list" if isinstance(spec, list) else "an object")


def _matches(v, spec) -> bool:
    if spec is None:
        return v is None
    if spec is object:
        return True
    if isinstance(spec, type):
        return isinstance(v, spec) and not (isinstance(v, bool) and spec is not bool)
    if isinstance(spec, tuple):
        return any(_matches(v, s) for s in spec)
    return isinstance(v, list if isinstance(spec, list) else dict)


def _shape(v, spec, where: str) -> None:
    """Raise RecordError naming the first field of v that does not fit spec."""
    if isinstance(spec, tuple):
        fits = [s for s in spec if _matches(v, s)]
        if not fits:
            raise RecordError(f"{where or 'the record'} is {_show(v)}, not {_expected(spec)}")
        spec = fits[0]
    elif not _matches(v, spec):
        raise RecordError(f"{where or 'the record'} is {_show(v)}, not {_expected(spec)}")
    if isinstance(spec, list):
        for i, x in enumerate(v):
            _shape(x, spec[0], f"{where}[{i}]")
    elif isinstance(spec, dict):
        for key, sub in spec.items():
            k = key.rstrip("?")
            if key == "*":
                continue
            if k in v:
                _shape(v[k], sub, f"{where}.{k}" if where else k)
            elif not key.endswith("?"):
                raise RecordError(f"{where + '.' if where else ''}{k} is missing")
        if "*" in spec:
            known = {key.rstrip("?") for key in spec}
            for k, x in v.items():
                if k not in known:
                    _shape(x, spec["*"], f"{where}.{k}" if where else k)


def shape_problem(data, spec) -> str | None:
    """Why `data` does not fit `spec` (the notation above), or None: for kharness's other records
    (a bisection's bisect.json), read through the same rules as these."""
    try:
        _shape(data, spec, "")
    except RecordError as e:
        return str(e)
    return None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number a record holds")


def parse_json(raw: bytes | str):
    """json.loads without NaN and Infinity (Python's json reads them; no kharness record holds one,
    and a report cannot format them): a ValueError naming it."""
    return json.loads(raw, parse_constant=_no_constant)


def _inside(rel: str, where: str) -> str:
    """A path from a record, which must stay inside the run directory."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or "\0" in rel or "\\" in rel:
        raise RecordError(f"{where} {rel[:100]!r} is not a path inside the run directory")
    return rel


def _check_job(d: dict, where: str) -> None:
    if d["status"] not in VERDICTS:
        raise RecordError(f"{where}.status {d['status'][:40]!r} is not a verdict ({', '.join(VERDICTS)})")
    for k in ("dir", "console_file"):
        if d.get(k):
            _inside(d[k], f"{where}.{k}")
    for k in ("variant", "test"):   # the default job directory is made of them
        _inside(d[k], f"{where}.{k}")
    if d.get("console_lines") is not None and len(d["console_lines"]) != 2:
        raise RecordError(f"{where}.console_lines is not [first, last]")


def _check_run(data: dict) -> None:
    _shape(data, _RUN, "")
    name = data.get("run")
    if name is not None and (not name or "/" in name or name in (".", "..") or "\0" in name):
        raise RecordError(f"run {name[:100]!r} is not the name of a run directory")
    if data.get("kind", "run") not in KINDS:
        raise RecordError(f"kind {data['kind'][:40]!r} is not a kind of run ({', '.join(KINDS)})")
    shard = data.get("shard")
    if shard is not None and not ((m := re.fullmatch(r"(\d{1,4})/(\d{1,4})", shard))
                                  and 1 <= int(m.group(1)) <= int(m.group(2))):
        raise RecordError(f"shard {shard[:40]!r} is not I/N")
    for i, j in enumerate(data.get("jobs", [])):
        _check_job(j, f"jobs[{i}]")


def finding_from_json(d: dict) -> Finding:
    return Finding(kind=d["kind"], type=d.get("type", ""), title=d["title"], line=d["line"],
                   report=d.get("report", ""), count=d.get("count", 1), console=d.get("console", ""))


def job_record(d: dict) -> JobRecord:
    """One verdict.json (an entry of summary.json "jobs") as a value."""
    variant, test = d["variant"], d["test"]
    iteration = d.get("iteration", 1)
    job_id = d["job"]
    # Records written before "repeat" was kept: an id longer than variant.test carries an iteration.
    repeat = d.get("repeat") or (1 if job_id == f"{variant}.{test}" else 2)
    name = test if repeat == 1 else f"{test}#{iteration}"
    rel = d.get("dir") or f"jobs/{variant}/{name.replace('#', '.')}"
    return JobRecord(id=job_id, variant=variant, test=test, iteration=iteration, status=d["status"],
                     message=d.get("message", ""), expected=d.get("expected", "pass"),
                     duration=d.get("duration"), exit_status=d.get("exit_status"),
                     findings=[finding_from_json(f) for f in d.get("findings", [])],
                     console_lines=d.get("console_lines"),
                     detail=d.get("detail", ""), dir=rel, console_file=d.get("console_file", "console.log"),
                     repeat=repeat, guest_seconds=d.get("guest_seconds"), timed_out=d.get("timed_out", False))


def _not_run(x) -> NotRun:
    if isinstance(x, str):          # runs written before the record carried variant and name
        variant, _, rest = x.partition(".")
        return NotRun(x, variant, rest)
    return NotRun(x["job"], x["variant"], x["name"], x.get("reason", ""))


def _read_json(path: Path, what: str, limit: int = MAX_SUMMARY_BYTES) -> dict:
    """A record file as a dict of a format this code reads; one clear line if not."""
    raw = files.read_bytes(path, what, limit)       # a regular file, bounded (never a FIFO or /dev/zero)
    try:
        data = parse_json(raw)
    except (ValueError, RecursionError) as e:
        raise UserError(f"{path}: unreadable {what} ({str(e).splitlines()[0][:200]}); the run may have been cut short")
    if not isinstance(data, dict):
        raise UserError(f"{path}: unreadable {what} (a JSON {type(data).__name__}, not an object)")
    n = data.get("format", 0)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise UserError(f"{path}: unreadable {what} (format {n!r} is not a record format number)")
    if n > FORMAT:
        raise UserError(f"{path}: {what} format {n} is newer than this kharness reads (format {FORMAT}); "
                        f"update kharness to read it")
    return data


def is_job_written(job_dir: Path) -> bool:
    """Does the job directory hold a complete, readable verdict.json? (A full disk can cut one short.)"""
    try:
        read_job(job_dir)
        return True
    except UserError:
        return False


def read_job(path: Path) -> JobRecord:
    """A job's verdict.json (or the job directory holding it) as a value."""
    path = Path(path)
    if path.is_dir():
        path = path / VERDICT
    data = _read_json(path, "job record", MAX_VERDICT_BYTES)
    try:
        _shape(data, _JOB, "")
        _check_job(data, "job")
        return job_record(data)
    except RecordError as e:
        raise UserError(f"{path}: unreadable job record ({e}); the run may have been cut short or edited")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{path}: unreadable job record ({type(e).__name__}: {e})")


def run_from_json(data: dict, run_dir: Path) -> RunRecord:
    props = data.get("properties", {})
    wif = data.get("warn_is_failure", True)       # format 0 records: the default of then
    if not isinstance(wif, bool):
        raise ValueError(f"warn_is_failure is {wif!r}, not true or false")
    return RunRecord(
        dir=run_dir, name=data.get("run", run_dir.name), config=props.get("config", ""),
        started=data.get("started", ""), seconds=data.get("seconds", 0.0),
        interrupted=data.get("interrupted", False), properties=props,
        boots=data.get("boots", 0), boot_seconds=data.get("boot_seconds", []),
        jobs=[job_record(j) for j in data.get("jobs", [])],
        not_run=[_not_run(x) for x in data.get("not_run", [])],
        not_run_reason=data.get("not_run_reason", "not run"),
        not_applicable=[NotApplicable(x["variant"], x["test"], x.get("reason", ""))
                        for x in data.get("not_applicable", [])],
        findings_outside=[finding_from_json(f) for f in data.get("findings_outside_jobs", [])],
        kind=data.get("kind", "run"), shard=data.get("shard"), plan=data.get("plan", []),
        merged_from=data.get("merged_from", []), config_file=data.get("config") or "",
        warn_is_failure=wif, format=data.get("format", 0))


def read_run(run_dir: Path) -> RunRecord:
    """Read a run directory (and its baseline/); one clear line if it is not one."""
    run_dir = Path(run_dir)
    path = run_dir / SUMMARY
    if not path.exists():
        raise UserError(f"{run_dir}: not a kharness run directory (no {SUMMARY}); "
                        f"give a directory under results/, e.g. results/latest")
    data = _read_json(path, "run record")
    try:
        _check_run(data)
        rec = run_from_json(data, run_dir)
    except RecordError as e:
        raise UserError(f"{path}: unreadable run record ({e}); the run may have been cut short or edited")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{path}: unreadable run record ({type(e).__name__}: {e})")
    rec.kernel = _read_kernel(run_dir / "kernel.json")
    if is_run(run_dir / "baseline"):
        rec.baseline = read_run(run_dir / "baseline")
    return rec


def _read_kernel(path: Path) -> dict:
    """kernel.json (kharness/kernel.py writes it); {} when there is none (the kernel never built)."""
    if not path.exists() and not path.is_symlink():
        return {}
    data = _read_json(path, "kernel record", MAX_KERNEL_BYTES)
    try:
        _shape(data, _KERNEL, "")
    except RecordError as e:
        raise UserError(f"{path}: unreadable kernel record ({e}); the run may have been cut short or edited")
    return data


load = read_run     # the name callers used before the record had a writer
