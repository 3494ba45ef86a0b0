"""junit.xml from a run record: one testsuite per variant, valid against junit-10.xsd.

testcase classname = variant, name = job (test#iteration with repeats); verdicts map to
  fail/hang/crash/warn -> <failure type="..."> with the evidence title as message,
  error (and jobs that never ran) -> <error>, skip / not applicable -> <skipped>.
Properties on every suite: kernel release, commits, series, accel, plus one
`label.<variant>.<test>` per job with a label (flaky k/N, regression, new failure).
A kernel finding outside any job is an `outside-jobs` testcase in suite `kernel`: a
failure for a crash or hang, and for a warning as the run judged them (the record's
warn_is_failure), else its text only.

Written with ElementTree rather than junit-xml: junit-xml always emits a `disabled`
attribute and unrounded times, both rejected by the schema Jenkins' xunit plugin
validates against (tests/data/schema/junit-10.xsd).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .. import files
from ..errors import UserError
from ..model import Finding
from .record import JobRecord, RunRecord

MAX_OUTPUT = 64 << 10
FAILURES = ("fail", "hang", "crash", "warn")


def _read(path: Path, limit: int = MAX_OUTPUT) -> str:
    try:
        with files.open_text(path, "job output") as f:
            data = f.read(limit + 1)
    except (OSError, UserError):            # missing, or a FIFO / device: nothing to show
        return ""
    return data if len(data) <= limit else data[:limit] + "\n[... truncated; see the run directory]\n"


def _xml_text(s: str) -> str:
    """Guest output may hold bytes XML 1.0 cannot carry (NUL, escape codes): drop them."""
    return "".join(c for c in s if c in "\t\n\r" or c >= " ")


def _seconds(x: float | None) -> str:
    return f"{x or 0:.3f}"


def evidence_text(findings: list[Finding], console_file: str = "console.log") -> str:
    return "\n\n".join(f"{f.title} ({console_file} line {f.line}, seen {f.count}x)\n{f.report}" for f in findings)


def _case(parent: ET.Element, rec: RunRecord, j: JobRecord) -> None:
    tc = ET.SubElement(parent, "testcase", name=j.name, classname=j.variant, time=_seconds(j.duration))
    evidence = evidence_text(j.findings, j.console_file)
    if j.status in FAILURES:
        el = ET.SubElement(tc, "failure", message=_xml_text(j.message or j.status), type=j.status)
        el.text = _xml_text("\n\n".join(x for x in (j.detail, evidence) if x) or j.message)
    elif j.status == "error":
        el = ET.SubElement(tc, "error", message=_xml_text(j.message.splitlines()[0] if j.message else "error"),
                           type="error")
        el.text = _xml_text(j.message)
    elif j.status == "skip":
        ET.SubElement(tc, "skipped", message=_xml_text(j.message))
    out = _read(rec.dir / j.dir / "stdout")
    if evidence and j.status not in FAILURES:
        out += "\n--- kernel findings in this job's window ---\n" + evidence
    if out:
        ET.SubElement(tc, "system-out").text = _xml_text(out)
    err = _read(rec.dir / j.dir / "stderr")
    if err:
        ET.SubElement(tc, "system-err").text = _xml_text(err)


def render(rec: RunRecord, labels: dict[str, str]) -> str:
    """labels: variant.test -> "flaky 2/3; regression; new failure" (only jobs that have one)."""
    suites: dict[str, list] = {}
    for j in rec.jobs:
        suites.setdefault(j.variant, []).append(("job", j))
    for n in rec.not_run:
        suites.setdefault(n.variant, []).append(("not_run", n))
    for s in rec.not_applicable:
        suites.setdefault(s.variant, []).append(("n/a", s))
    if rec.findings_outside:
        suites.setdefault("kernel", []).append(("outside", rec.findings_outside))

    props = {k: str(v) for k, v in rec.properties.items()}
    props.update({f"label.{k}": v for k, v in sorted(labels.items())})
    root = ET.Element("testsuites")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for name, items in suites.items() or [("kharness", [])]:
        suite = ET.SubElement(root, "testsuite", name=name)
        pe = ET.SubElement(suite, "properties")
        for k, v in props.items():
            ET.SubElement(pe, "property", name=k, value=_xml_text(v))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        time = 0.0
        for kind, item in items:
            counts["tests"] += 1
            if kind == "job":
                _case(suite, rec, item)
                time += item.duration or 0
                counts["failures"] += item.status in FAILURES
                counts["errors"] += item.status == "error"
                counts["skipped"] += item.status == "skip"
            elif kind == "not_run":
                tc = ET.SubElement(suite, "testcase", name=item.name, classname=item.variant, time="0.000")
                ET.SubElement(tc, "error", message=_xml_text(rec.not_run_reason), type="not-run")
                counts["errors"] += 1
            elif kind == "n/a":
                tc = ET.SubElement(suite, "testcase", name=item.test, classname=item.variant, time="0.000")
                ET.SubElement(tc, "skipped", message=_xml_text(f"not applicable: {item.reason}"))
                counts["skipped"] += 1
            else:
                # A kernel problem during boot or between jobs belongs to no job, but must not vanish.
                tc = ET.SubElement(suite, "testcase", name="outside-jobs", classname="kernel", time="0.000")
                serious = [f for f in item if f.kind in ("crash", "hang") or (f.kind == "warn" and rec.warn_is_failure)]
                text = "\n\n".join(f"{f.title} ({f.console or 'console.log'} line {f.line})\n{f.report}" for f in item)
                if serious:
                    el = ET.SubElement(tc, "failure", message=_xml_text(serious[0].title), type=serious[0].kind)
                    el.text = _xml_text(text)
                    counts["failures"] += 1
                else:
                    ET.SubElement(tc, "system-out").text = _xml_text(text)
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
        suite.set("time", _seconds(time))
        if rec.started:
            suite.set("timestamp", rec.started.rstrip("Z"))
        total_time += time
    for k in ("tests", "failures", "errors"):
        root.set(k, str(totals[k]))
    root.set("time", _seconds(total_time))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write(path: Path, rec: RunRecord, labels: dict[str, str]) -> None:
    tmp = path.with_suffix(".xml.tmp")
    tmp.write_text(render(rec, labels))
    tmp.replace(path)
