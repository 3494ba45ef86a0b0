"""Outcome + console findings + expectation -> Verdict. Pure: the one place a verdict is decided.

Order of precedence (the first that applies wins):
  harness trouble before the job could run          -> error
  the job reported "not applicable" (exit 77)       -> skip
  a crash finding in the job's window               -> crash
  a hang finding, or the job ran past its timeout   -> hang
  the harness stopped waiting: guest unresponsive   -> hang
                              QEMU died             -> crash
  the SSH connection was lost                       -> error
  the variant's path proof did not hold             -> error   (kharness/proof.py)
  a non-zero exit status                            -> fail
  a warn finding (if warnings count as failures)    -> warn
  otherwise                                         -> pass
A job that expects a hang (the canary) passes when it got one and fails when it
did not: the expectation itself is what is being tested.
"""
from __future__ import annotations

from .model import Finding, Outcome, Verdict

SKIP_STATUS = 77   # the automake/fstests convention for "not applicable here"
def _first(findings: list[Finding], kind: str) -> Finding | None:
    return next((f for f in findings if f.kind == kind), None)


def judge(outcome: Outcome | None, findings: list[Finding], *, expect: str = "pass",
          warn_is_failure: bool = True, error: str | None = None, timeout: float | None = None,
          unproven: str | None = None) -> Verdict:
    raw = _raw(outcome, findings, warn_is_failure, error, timeout, unproven)
    if expect == "pass" or raw.status in ("error", "skip"):
        raw.expected = expect
        return raw
    if raw.status == expect:
        return Verdict("pass", f"expected {expect} happened: {raw.message}", expect, findings)
    detail = f": {raw.message}" if raw.message else ""
    return Verdict("fail", f"expected {expect}, got {raw.status}{detail}", expect, findings)


def _raw(outcome, findings, warn_is_failure, error, timeout, unproven=None) -> Verdict:
    if error:
        return Verdict("error", error, findings=findings)
    assert outcome is not None
    if outcome.exit_status == SKIP_STATUS:
        reason = _last_line(outcome.stdout + "\n" + outcome.stderr, prefer="SKIP") or "not applicable"
        return Verdict("skip", reason, findings=findings)
    if f := _first(findings, "crash"):
        return Verdict("crash", f.title, findings=findings)
    if f := _first(findings, "hang"):
        return Verdict("hang", f.title, findings=findings)
    if outcome.timed_out:
        return Verdict("hang", f"job timed out after {timeout or outcome.duration:.0f} s with no kernel report",
                       findings=findings)
    if outcome.aborted:
        # The runner names the kind of trouble it stopped for: "hang: ...", "crash: ...".
        kind, _, why = outcome.aborted.partition(": ")
        return Verdict(kind if kind in ("hang", "crash") else "error", why or outcome.aborted, findings=findings)
    if outcome.lost:
        return Verdict("error", outcome.lost, findings=findings)
    if unproven:
        also = f" (the job itself exited {outcome.exit_status})" if outcome.exit_status else ""
        return Verdict("error", unproven + also, findings=findings)
    if outcome.exit_status != 0:
        detail = _last_line(outcome.stderr, prefer="MISMATCH") or _last_line(outcome.stdout)
        msg = f"exit status {outcome.exit_status}" + (f": {detail}" if detail else "")
        return Verdict("fail", msg, findings=findings)
    if (f := _first(findings, "warn")) and warn_is_failure:
        return Verdict("warn", f.title, findings=findings)
    return Verdict("pass", "", findings=findings)


def _last_line(text: str, prefer: str | None = None) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if prefer:
        for ln in lines:
            if ln.startswith(prefer):
                return ln[:300]
    return lines[-1][:300] if lines else ""
