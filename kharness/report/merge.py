"""`harness.py report --merge SHARD_DIR... -o OUT`: shards of one run -> one run directory.

Checks before writing anything: every directory is a shard of the same plan, with the
same kernel, judged the same way (warn_is_failure), shard numbers 1..N each exactly once,
and no job in two shards. The merged record holds every job of the plan exactly once: a
job no shard reports (a shard cut short) is listed as not run, never dropped. Job
directories are copied; each shard's console log goes to shards/<shard run>/, and
findings point there. The merged summary.json is written by report/record.py, like a run's.
The merge is written into a directory beside OUT and renamed into place, so a merge cut short
(a full disk) leaves no partial OUT.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import replace
from pathlib import Path

from .. import files
from ..errors import UserError
from . import record

_SHARD_FILES = ("console.log", "setup.log", "qemu.log", "summary.txt", "report.html", "junit.xml")


def check(recs: list[record.RunRecord]) -> int:
    """The shard count N, or one line on why these directories are not one sharded run."""
    for r in recs:
        if r.kind != "shard" or not r.shard:
            raise UserError(f"{r.dir}: not a shard (run with --shard I/N); --merge takes the shard directories of one run")
    ns = {r.shard.split("/")[1] for r in recs}
    if len(ns) != 1:
        raise UserError(f"--merge: shards of different splits ({', '.join(sorted(r.shard for r in recs))}); "
                        f"give the shards of one run")
    n = int(ns.pop())
    seen: dict[int, Path] = {}
    for r in recs:
        i = int(r.shard.split("/")[0])
        if i in seen:
            raise UserError(f"--merge: shard {i}/{n} given twice ({seen[i]} and {r.dir})")
        seen[i] = r.dir
    missing = [f"{i}/{n}" for i in range(1, n + 1) if i not in seen]
    if missing:
        raise UserError(f"--merge: shard(s) {', '.join(missing)} missing; give all {n} shard directories")
    for key in ("config", "kernel_key"):
        values = {r.properties.get(key) for r in recs}
        if len(values) > 1:
            raise UserError(f"--merge: the shards ran different {key.replace('_', ' ')}s ({', '.join(map(str, values))})")
    judged = {r.warn_is_failure for r in recs}
    if len(judged) > 1:
        raise UserError("--merge: the shards judged warnings differently (warn_is_failure " +
                        ", ".join(f"{str(r.warn_is_failure).lower()} in shard {r.shard}"
                                  for r in sorted(recs, key=lambda r: int(r.shard.split("/")[0]))) +
                        "); give the shards of one run")
    plans = {tuple(sorted(r.plan)) for r in recs}
    if len(plans) > 1:
        raise UserError("--merge: the shards planned different job lists (different configs or options?)")
    owner: dict[str, Path] = {}
    for r in recs:
        for j in r.jobs:
            if j.id in owner:
                raise UserError(f"--merge: job {j.id} is in two shards ({owner[j.id]} and {r.dir})")
            owner[j.id] = r.dir
    return n


def merge_into(recs: list[record.RunRecord], out: Path, kind: str) -> record.RunRecord:
    """Copy the shards' job files into out and write its summary.json; returns the record."""
    out.mkdir(parents=True)
    recs = sorted(recs, key=lambda r: int(r.shard.split("/")[0]) if r.shard else 0)
    jobs: list[record.JobRecord] = []
    not_run: list[record.NotRun] = []
    not_applicable: list[record.NotApplicable] = []
    outside, boot_seconds = [], []
    seen_na = set()
    for r in recs:
        shard_dir = Path("shards") / r.name
        (out / shard_dir).mkdir(parents=True)
        for name in _SHARD_FILES + tuple(sorted({j.console_file for j in r.jobs} - {"console.log"})):
            if (r.dir / name).is_file():        # -j N: guest k's console-k.log too
                shutil.copy2(r.dir / name, out / shard_dir / name)
        for j in r.jobs:
            if (r.dir / j.dir).is_dir():
                shutil.copytree(r.dir / j.dir, out / j.dir)
            jobs.append(replace(j, console_file=str(shard_dir / j.console_file)))
        not_run += [replace(n, reason=n.reason or r.not_run_reason) for n in r.not_run]
        for na in r.not_applicable:
            if (na.variant, na.test) not in seen_na:
                seen_na.add((na.variant, na.test))
                not_applicable.append(na)
        outside += [replace(f, title=f"{f.title} (shard {r.shard})", console=str(shard_dir / (f.console or "console.log")))
                    for f in r.findings_outside]
        boot_seconds += r.boot_seconds
    plan = recs[0].plan
    reported = {j.id for j in jobs} | {n.id for n in not_run}
    for i in plan:          # a shard cut short before it could even list the job: still one entry
        if i not in reported:
            variant, _, rest = i.partition(".")
            not_run.append(record.NotRun(i, variant, rest, "in no shard's results"))
    reasons = sorted({n.reason for n in not_run})
    first = recs[0]
    # Repeats of a job stay in one shard: its "k of N failed" is recomputed over the merged jobs.
    props = {k: v for k, v in first.properties.items() if not k.startswith("repeat.")}
    accels = sorted({r.properties.get("accel", "") for r in recs})
    props["accel"] = accels[0] if len(accels) == 1 else " | ".join(accels)
    for name, t in record.repeat_tallies(jobs).items():
        props[f"repeat.{name}"] = f"{t['failed']} of {t['runs']} failed ({t['label']})"
    merged = record.RunRecord(
        dir=out, name=out.name, kind=kind, config=first.config, config_file=first.config_file,
        started=min(r.started for r in recs), seconds=max(r.seconds for r in recs),
        interrupted=any(r.interrupted for r in recs), properties=props,
        warn_is_failure=first.warn_is_failure, shard=None, plan=plan, merged_from=[r.name for r in recs],
        boots=sum(r.boots for r in recs), boot_seconds=boot_seconds, jobs=jobs,
        not_run=not_run, not_run_reason="; ".join(reasons) or "not run",
        not_applicable=not_applicable, findings_outside=outside)
    if (first.dir / "kernel.json").exists():
        shutil.copy2(first.dir / "kernel.json", out / "kernel.json")
    record.write_run_record(merged)
    return merged


def _distinct(recs: list[record.RunRecord]) -> None:
    """Each shard's files go to shards/<its run name>/: two shards of one name would collide."""
    seen: dict[str, Path] = {}
    for r in recs:
        if r.name in seen:
            raise UserError(f"--merge: {seen[r.name]} and {r.dir} are both run {r.name!r} (summary.json \"run\"); "
                            f"give the shard directories of one run, each once")
        seen[r.name] = r.dir


def _copyable(r: record.RunRecord) -> None:
    """Everything merge_into copies from a shard is a regular file in a real directory (a FIFO would
    block the copy, a symlink would copy what it points to): one line before -o exists."""
    def refuse(p: Path, mode: int) -> None:
        what = "a symbolic link" if stat.S_ISLNK(mode) else files.describe_mode(mode)
        raise UserError(f"{p}: {what} in a shard directory; --merge copies regular files only (remove it, or "
                        f"replace it by the file itself)")
    for name in _SHARD_FILES:
        p = r.dir / name
        if os.path.lexists(p) and not stat.S_ISREG(m := os.lstat(p).st_mode):
            refuse(p, m)
    for j in r.jobs:
        top = r.dir / j.dir
        if not os.path.lexists(top):
            continue
        if not stat.S_ISDIR(m := os.lstat(top).st_mode):
            refuse(top, m)
        for dirpath, dirnames, filenames in os.walk(top):
            for n in dirnames + filenames:
                m = os.lstat(os.path.join(dirpath, n)).st_mode
                if not (stat.S_ISREG(m) or stat.S_ISDIR(m)):
                    refuse(Path(dirpath) / n, m)


def merge(dirs: list[Path], out: Path) -> Path:
    """Shards -> out, all or nothing: checked first, then written into a directory beside out and
    renamed to out when complete (a failed copy leaves no partly-written -o)."""
    recs = [record.read_run(d) for d in dirs]
    check(recs)
    bases = [r.baseline for r in recs if r.baseline]
    if os.path.lexists(out):
        raise UserError(f"-o {out}: already exists; give a new directory for the merged run")
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: {out.parent} does not exist")
    _distinct(recs)
    _distinct(bases)
    for r in recs + bases:
        _copyable(r)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.merging.", dir=out.parent))
    except OSError as e:
        raise UserError(f"-o {out}: cannot write in {out.parent} ({e.strerror})") from None
    try:
        staged = work / out.name
        merge_into(recs, staged, "merged")
        if bases:
            for b, r in zip(bases, recs):
                b.shard = r.shard
            merge_into(bases, staged / "baseline", "baseline")
        os.rename(staged, out)
    except (OSError, shutil.Error) as e:
        shutil.rmtree(work, ignore_errors=True)
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0][:200]
        raise UserError(f"-o {out}: merging the shards failed ({why}); nothing was written, -o does not exist")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    os.rmdir(work)
    return out
