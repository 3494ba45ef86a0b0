"""`harness.py report --merge SHARD_DIR... -o OUT`: shards of one run -> one run directory.

Checks before writing anything: every directory is a shard of the same plan, with the
same kernel, judged the same way (warn_is_failure), shard numbers 1..N each exactly once,
and no job in two shards. The merged record holds every job of the plan exactly once: a
job no shard reports (a shard cut short) is listed as not run, never dropped. Job
directories are copied; each shard's console log goes to shards/<shard run>/, and
findings point there. The merged summary.json is written by report/record.py, like a run's.
"""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

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
        for name in _SHARD_FILES:
            if (r.dir / name).exists():
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
        outside += [replace(f, title=f"{f.title} (shard {r.shard})") for f in r.findings_outside]
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


def merge(dirs: list[Path], out: Path) -> Path:
    recs = [record.read_run(d) for d in dirs]
    check(recs)
    if out.exists():
        raise UserError(f"-o {out}: already exists; give a new directory for the merged run")
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: {out.parent} does not exist")
    merge_into(recs, out, "merged")
    bases = [r.baseline for r in recs if r.baseline]
    if bases:
        for b, r in zip(bases, recs):
            b.shard = r.shard
        merge_into(bases, out / "baseline", "baseline")
    return out
