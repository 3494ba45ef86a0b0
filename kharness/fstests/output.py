"""fstests' own output read back (pure): result.xml, check's stdout, check.time, the
`run fstests TEST at ...` console lines that split a ./check run into per-test windows."""
from __future__ import annotations

import difflib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..model import Finding, Outcome, Trouble, Verdict
from ..verdict import Reported, judge

WATCHDOG_FACTOR, WATCHDOG_SLACK = 3, 300      # history t -> max(3t, t + 300) seconds
DIFF_HEAD = 30                                # lines of the .out.bad diff in the JUnit failure text
_MARK_RE = re.compile(r"run fstests (\S+) at \d{4}-\d\d-\d\d")

# ====================================================================== fstests output (pure)

@dataclass
class CaseResult:
    """One <testcase> of fstests' result.xml (or a line of check's output when that is all there is)."""
    name: str                       # generic/363
    status: str                     # pass | fail | notrun
    seconds: float | None = None
    message: str = ""               # failure message or notrun reason
    system_err: str = ""            # fstests: diff of the golden output and .out.bad


def parse_xunit(text: str) -> list[CaseResult]:
    """fstests' result.xml -> CaseResults. fstests writes failure messages into attributes without
    escaping them, so a document ElementTree rejects is read case by case with a tolerant scan."""
    try:
        root = ET.fromstring(text)
        return [_case_from_element(tc) for tc in root.iter("testcase")]
    except ET.ParseError:
        return _parse_xunit_tolerant(text)


def _case_from_element(tc: ET.Element) -> CaseResult:
    name = tc.get("name", "")
    secs = _float(tc.get("time"))
    err = _trim(tc.findtext("system-err") or "")
    if (f := tc.find("failure")) is not None or (f := tc.find("error")) is not None:
        return CaseResult(name, "fail", secs, f.get("message") or "failed", err)
    if (s := tc.find("skipped")) is not None:
        return CaseResult(name, "notrun", secs, (s.get("message") or "").strip())
    return CaseResult(name, "pass", secs)


_TC_RE = re.compile(r"<testcase\b([^>]*?)(/>|>(.*?)</testcase>)", re.S)
_ATTR_RE = re.compile(r'(\w[\w:-]*)="([^"]*)"')


def _parse_xunit_tolerant(text: str) -> list[CaseResult]:
    out = []
    for m in _TC_RE.finditer(text):
        attrs = dict(_ATTR_RE.findall(m.group(1)))
        body = m.group(3) or ""
        secs = _float(attrs.get("time"))
        name = attrs.get("name", "")
        fm = re.search(r'<(failure|error)\b', body)
        if fm:
            # fstests writes <failure message="$_err_msg" type="TestFail" />: the message ends at ' type="'
            msg = (re.search(r'message="(.*?)"\s+type="[^"]*"\s*/?>', body[fm.start():], re.S)
                   or re.search(r'message="([^"]*)"', body[fm.start():]))
            out.append(CaseResult(name, "fail", secs, _unescape(msg.group(1)) if msg else "failed",
                                  _cdata(body, "system-err")))
        elif re.search(r"<skipped\b", body):
            sm = re.search(r'<skipped\s+message="(.*?)"\s*/>', body, re.S)
            out.append(CaseResult(name, "notrun", secs, _unescape(sm.group(1)).strip() if sm else ""))
        else:
            out.append(CaseResult(name, "pass", secs))
    return out


def _cdata(body: str, tag: str) -> str:
    m = re.search(rf"<{tag}>\s*<!\[CDATA\[(.*?)\]\]>\s*</{tag}>", body, re.S)
    return _trim(m.group(1).replace("]]]]><![CDATA[>", "]]>")) if m else ""


def _trim(text: str) -> str:
    """Drop the blank lines and indentation around a CDATA block, keep the first line's own indent."""
    return text.lstrip("\n").rstrip()


def _unescape(s: str) -> str:
    return (s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))


def _float(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def parse_check_output(text: str, tests: list[str]) -> dict[str, CaseResult]:
    """Statuses from check's own stdout: the fallback when result.xml could not be pulled."""
    known = set(tests)
    out: dict[str, CaseResult] = {}
    for line in text.splitlines():
        first = line.split(None, 1)
        if not first or first[0] not in known:
            continue
        name, rest = first[0], (first[1] if len(first) > 1 else "")
        if "[not run]" in rest:
            out[name] = CaseResult(name, "notrun", None, rest.split("[not run]", 1)[1].strip())
        elif "[failed" in rest or "- output mismatch" in rest or "_check_" in rest or "[expunged]" in rest:
            out[name] = CaseResult(name, "fail", None, rest.strip())
        elif m := re.search(r"(\d+)s\s*$", rest):
            out[name] = CaseResult(name, "pass", float(m.group(1)))
    return out


def check_output_of(text: str, test: str, tests: list[str]) -> str:
    """The lines check printed for one test (its status line and the diff head under it)."""
    lines, keep = [], False
    for line in text.splitlines():
        head = line.split(None, 1)[0] if line.strip() else ""
        if head in tests or line.startswith(("Ran:", "Not run:", "Failures:", "Passed all", "Failed ", "SECTION")):
            keep = head == test
        if keep:
            lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def parse_check_time(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2 and "/" in f[0]:
            try:
                out[f[0]] = float(f[1])
            except ValueError:
                pass
    return out


def format_check_time(times: dict[str, float]) -> str:
    return "".join(f"{k} {int(round(v))}\n" for k, v in sorted(times.items()))


def watchdog_for(test: str, history: dict[str, float], bound: int, fixed: dict[str, int] | None = None) -> int:
    """Seconds a test may run: fstests.timeouts when it names the test; else 3x its last passing
    time (at least that + 300 s) when fstests' check.time knows it; else fstests.test_timeout."""
    if fixed and test in fixed:
        return fixed[test]
    t = history.get(test)
    if t is None:
        return bound
    return int(max(WATCHDOG_FACTOR * t, t + WATCHDOG_SLACK))


def test_starts(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """console (line number, text) -> [(line, test)] for each `run fstests TEST at ...`."""
    out = []
    for no, text in lines:
        if m := _MARK_RE.search(text):
            out.append((no, m.group(1)))
    return out


def windows(starts: list[tuple[int, str]], first: int, last: int) -> dict[str, tuple[int, int]]:
    """Per-test console windows [a, b] (line numbers) from the start markers; the first test's window
    opens at `first` (check's set-up belongs to it), the last closes at `last`. A test started twice
    (check restarted) keeps its last window."""
    out: dict[str, tuple[int, int]] = {}
    for i, (line, test) in enumerate(starts):
        a = first if i == 0 else line
        b = starts[i + 1][0] - 1 if i + 1 < len(starts) else last
        out[test] = (a, max(a, b))
    return out


def findings_in(findings: list[Finding], window: tuple[int, int] | None) -> list[Finding]:
    if not window:
        return []
    a, b = window
    return [f for f in findings if a <= f.line <= b]


EXIT_CODES = {"pass": 0, "fail": 1, "notrun": 77}


def reported(c: CaseResult) -> Reported:
    """fstests' own word on a test, as verdict.judge takes it."""
    message = {"pass": "", "fail": f"fstests: {c.message or 'failed'}",
               "notrun": f"fstests: not run: {c.message or 'no reason given'}"}[c.status]
    return Reported(c.status, message)


def case_outcome(c: CaseResult) -> Outcome:
    """A test fstests reported on, as the job's Outcome (exit status by fstests' convention)."""
    return Outcome(EXIT_CODES[c.status], c.seconds or 0.0, stdout=c.message)


def stopped_outcome(aborted: Trouble | None, seconds: float, *, timed_out: bool = False,
                    lost: str | None = None) -> Outcome:
    """A test the harness stopped, as the job's Outcome (no exit status)."""
    return Outcome(None, seconds, timed_out=timed_out, aborted=aborted, lost=lost)


def judge_reported(c: CaseResult, findings: list[Finding], warn_is_failure: bool = True) -> Verdict:
    """A test fstests reported on: its status, overruled by its window's crash/hang/warn findings."""
    return judge(case_outcome(c), findings, reported=reported(c), warn_is_failure=warn_is_failure)


def judge_stopped(findings: list[Finding], aborted: Trouble | None, seconds: float, *, timed_out: bool = False,
                  lost: str | None = None, watchdog: float | None = None, warn_is_failure: bool = True) -> Verdict:
    """The test the harness stopped: a hang or crash finding, QEMU's death, the watchdog, lost ssh."""
    return judge(stopped_outcome(aborted, seconds, timed_out=timed_out, lost=lost), findings,
                 warn_is_failure=warn_is_failure, timeout=watchdog)


def failure_detail(case: CaseResult | None, verdict: Verdict, golden: str | None = None,
                   out_bad: str | None = None, check_lines: str = "") -> str:
    """The JUnit failure text of an fstests test: fstests' message, the .out.bad diff head, the finding titles."""
    parts = []
    if case and case.status == "fail":
        parts.append(f"fstests: {case.message}")
        diff = case.system_err
        if not diff and golden is not None and out_bad is not None:
            diff = "".join(difflib.unified_diff(golden.splitlines(True), out_bad.splitlines(True),
                                                "golden .out", ".out.bad"))
        if diff:
            lines = diff.splitlines()
            more = f"\n[... {len(lines) - DIFF_HEAD} more lines; see the .out.bad in the job directory]" \
                if len(lines) > DIFF_HEAD else ""
            parts.append("--- .out.bad diff (head) ---\n" + "\n".join(lines[:DIFF_HEAD]) + more)
        elif check_lines.strip():
            parts.append("--- check output ---\n" + check_lines.rstrip())
    titles = [f"{f.title} (console.log line {f.line})" for f in verdict.findings]
    if titles:
        parts.append("kernel: " + "\n        ".join(titles))
    return "\n\n".join(parts)


