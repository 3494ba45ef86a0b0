"""summary.txt: the plain-text mail a person would send to the list after a night's run."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runview import JobGroup, RunView


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _first_failure(g: "JobGroup") -> str:
    j = g.failed[0] if g.failed else g.jobs[0]
    text = f"{j.status}: {j.message}" if j.message else j.status
    return text if len(text) <= 120 else text[:117] + "..."


def _line(g: "JobGroup", extra: str = "") -> str:
    labels = ", ".join(g.labels)
    return f"  {g.key:50} {_first_failure(g)}" + (f"  [{labels}]" if labels else "") + extra


def summary(v: "RunView") -> str:
    rec = v.rec
    p = rec.properties
    k = rec.kernel
    out = [f"kharness {rec.kind} {rec.name}: config {rec.config}" + (f", shard {rec.shard}" if rec.shard else "")]
    if p.get("kernel_release"):
        out.append(f"kernel:  {p['kernel_release']} (base {p.get('base_commit', '?')[:12]}, "
                   f"head {p.get('head_commit', '?')[:12]})")
    for s in k.get("series", []):
        out.append(f"series:  {s['name']} ({len(s['patches'])} patch{'es' if len(s['patches']) != 1 else ''})")
        if th := s.get("thread"):
            out.append(f"           thread {th['message_id']} v{th['revision']} ({th['source']}), "
                       f"apply {th['apply']}" + (f" -F{th['fuzz']}" if th["apply"] == "fuzzy" else ""))
            for sk in th["skipped"]:
                out.append(f"           skipped {sk['number']}/{th['total']} {sk['subject']}: {sk['reason']}")
        for patch in s["patches"]:
            out.append(f"           {patch['subject']}")
    fuzzed = [(a, h) for a in k.get("applied", []) for h in a["hunks"]]
    if fuzzed:
        out.append(f"fuzz:    {len(fuzzed)} hunk(s) applied with an offset or fuzz:")
        for a, h in fuzzed:
            out.append(f"           {a['label']} {h['file']} hunk #{h['hunk']} at {h['line']} "
                       f"offset {h['offset']:+d} fuzz {h['fuzz']}")
    if not k.get("series") and p.get("kernel_release"):
        out.append("series:  none")
    out.append(f"accel:   {p.get('accel', '?')}")
    counts = rec.counts
    out.append(f"jobs:    {sum(counts.values())} in {_duration(rec.seconds)}: " +
               ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda x: -x[1])) +
               (" (INTERRUPTED)" if rec.interrupted else ""))
    if rec.baseline:
        bp = rec.baseline.properties
        out.append(f"baseline: {bp.get('kernel_release', '?')} (series: {bp.get('series', 'none')})")
    out.append("")
    if v.previous_run:
        out.append(f"New failures since {v.previous_run}: {len(v.new_failures) or 'none'}")
        out += [_line(g) for g in v.new_failures]
    else:
        out.append("New failures: no earlier run of this config to compare with")
    if rec.baseline:
        out.append(f"Regressions against the baseline (fail only with the series): {len(v.regressions) or 'none'}")
        out += [_line(g) for g in v.regressions]
    still = v.still_failing
    if still:
        out.append(f"Failing: {len(still)}")
        for g in still:
            h = g.history
            since = f"  (failing since {h.failing_since}, {h.streak} run(s))" if h and h.streak > 1 else ""
            out.append(_line(g, since))
    if rec.not_run:
        out.append(f"Not run: {len(rec.not_run)} ({rec.not_run_reason})")
        out += [f"  {n.id}" for n in rec.not_run]
    for f in rec.findings_outside:
        out.append(f"Outside any job: {f.title} ({f.console or 'console.log'} line {f.line})"
                   + (" (recorded only: warn_is_failure is false)" if f.kind == "warn" and not rec.warn_is_failure else ""))
    if not (v.new_failures or still or rec.not_run or rec.findings_outside):
        out.append("Everything passed.")
    out.append("")
    out.append(f"Report: {rec.dir / 'report.html'}")
    return "\n".join(out) + "\n"
