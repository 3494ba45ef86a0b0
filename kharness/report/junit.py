"""junit.xml with the junit-xml library: one testsuite per variant.

testcase classname = variant, name = job; verdicts map to
  fail/hang/crash/warn -> <failure type="..."> with the evidence title as message,
  error -> <error>, skip -> <skipped>.
Properties on every suite: kernel release, commits, series, accel.
"""
from __future__ import annotations

from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

MAX_OUTPUT = 64 << 10


def _read(path: Path, limit: int = MAX_OUTPUT) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            data = f.read(limit + 1)
    except OSError:
        return ""
    return data if len(data) <= limit else data[:limit] + "\n[... truncated; see the run directory]\n"


def _case(r) -> TestCase:
    v = r.verdict
    tc = TestCase(r.job.name, classname=r.job.variant.name,
                  elapsed_sec=r.outcome.duration if r.outcome else None,
                  stdout=_read(r.dir / "stdout"), stderr=_read(r.dir / "stderr"))
    evidence = "\n\n".join(f"{f.title} (console.log line {f.line}, seen {f.count}x)\n{f.report}" for f in v.findings)
    detail = getattr(r, "detail", "")     # fstests: .out.bad diff head and finding titles
    if v.status in ("fail", "hang", "crash", "warn"):
        tc.add_failure_info(message=v.message, output="\n\n".join(x for x in (detail, evidence) if x) or v.message,
                            failure_type=v.status)
    elif v.status == "error":
        tc.add_error_info(message=v.message.splitlines()[0] if v.message else "error", output=v.message)
    elif v.status == "skip":
        tc.add_skipped_info(message=v.message)
    if evidence and v.status not in ("fail", "hang", "crash", "warn"):
        tc.stdout = (tc.stdout or "") + "\n--- kernel findings in this job's window ---\n" + evidence
    return tc


def write(path: Path, props: dict, job_results, not_run, why_not: str, skipped, outside, warn_is_failure: bool) -> None:
    suites: dict[str, list[TestCase]] = {}
    for r in job_results:
        suites.setdefault(r.job.variant.name, []).append(_case(r))
    for j in not_run:
        tc = TestCase(j.name, classname=j.variant.name)
        tc.add_error_info(message=why_not)
        suites.setdefault(j.variant.name, []).append(tc)
    for v, t, why in skipped:
        tc = TestCase(t.name, classname=v.name)
        tc.add_skipped_info(message=f"not applicable: {why}")
        suites.setdefault(v.name, []).append(tc)
    if outside:
        # A kernel problem during boot or between jobs belongs to no job, but must not vanish.
        tc = TestCase("outside-jobs", classname="kernel")
        serious = [f for f in outside if f.kind in ("crash", "hang") or (f.kind == "warn" and warn_is_failure)]
        text = "\n\n".join(f"{f.title} (console.log line {f.line})\n{f.report}" for f in outside)
        if serious:
            tc.add_failure_info(message=serious[0].title, output=text, failure_type=serious[0].kind)
        else:
            tc.stdout = text
        suites.setdefault("kernel", []).append(tc)
    ts = [TestSuite(name, cases, properties=dict(props)) for name, cases in suites.items()]
    if not ts:
        ts = [TestSuite("kharness", [], properties=dict(props))]
    tmp = path.with_suffix(".xml.tmp")
    tmp.write_text(to_xml_report_string(ts, prettyprint=True))
    tmp.replace(path)
