"""Outcome + console findings + expectation -> Verdict. Pure: the one place a verdict is decided.

Order of precedence (the first that applies wins):
  harness trouble before the job could run          -> error
  the job reported "not applicable" (exit 77)       -> skip
  the suite reported "not run" (fstests' notrun)    -> skip, unless the kernel crashed or hung
  a crash finding in the job's window               -> crash
  a hang finding                                    -> hang
  the harness stopped waiting (model.Trouble):      -> its kind, with its why:
      guest unresponsive, no progress, livelock     -> hang
      QEMU died                                     -> crash
      a WARNING ended the job early (warn_action)   -> warn
  the job ran past its timeout                      -> hang
  the SSH connection was lost                       -> error
  the variant's path proof did not hold             -> error   (kharness/proof.py)
  a non-zero exit status                            -> fail
  a warn finding (if warnings count as failures)    -> warn
  otherwise                                         -> pass
A job that expects a hang (the canary) passes when it got one and fails when it
did not: the expectation itself is what is being tested.

The facts come from the lifecycle (Outcome: exit status, timeout, the harness's
Trouble, a lost connection; the window's Findings) and from the suite's own reading
of its result (a Reported: fstests' result.xml status), never a verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import Finding, Outcome, Verdict

SKIP_STATUS = 77   # the automake/fstests convention for "not applicable here"
@dataclass(frozen=True)
class Reported:
    """How the suite's own runner says a test ended (fstests: result.xml, else check's output)."""
    status: str          # pass | fail | notrun
    message: str = ""    # one line, prefixed with the suite's name ("fstests: ...")


def skipped(reason: str, expect: str = "pass") -> Verdict:
    """The job cannot run here (the variant's mount is not supported by this kernel)."""
    return Verdict("skip", reason, expect)


def errored(message: str, expect: str = "pass", findings: list[Finding] | None = None) -> Verdict:
    """The harness could not run or judge the job (set-up failed, no result reported)."""
    return Verdict("error", message, expect, findings or [])


def timeout_message(seconds: float) -> str:
    return f"job timed out after {seconds:.0f} s with no kernel report"


def _first(findings: list[Finding], kind: str) -> Finding | None:
    return next((f for f in findings if f.kind == kind), None)


def judge(outcome: Outcome | None, findings: list[Finding], *, expect: str = "pass",
          warn_is_failure: bool = True, error: str | None = None, timeout: float | None = None,
          unproven: str | None = None, reported: Reported | None = None) -> Verdict:
    if reported:
        raw = _reported(reported, outcome, findings, warn_is_failure)
    else:
        raw = _raw(outcome, findings, warn_is_failure, error, timeout, unproven)
    if expect == "pass" or raw.status in ("error", "skip"):
        raw.expected = expect
        return raw
    if raw.status == expect:
        return Verdict("pass", f"expected {expect} happened: {raw.message}", expect, findings)
    detail = f": {raw.message}" if raw.message else ""
    return Verdict("fail", f"expected {expect}, got {raw.status}{detail}", expect, findings)


def _reported(rep: Reported, outcome: Outcome | None, findings: list[Finding], warn_is_failure: bool) -> Verdict:
    seconds = outcome.duration if outcome else 0.0
    if rep.status == "notrun" and not any(f.kind in ("crash", "hang") for f in findings):
        return Verdict("skip", rep.message, findings=findings)
    if rep.status in ("pass", "notrun"):
        return _raw(Outcome(0, seconds), findings, warn_is_failure, None, None)
    v = _raw(Outcome(1, seconds, stderr=rep.message), findings, warn_is_failure, None, None)
    if v.status == "fail":
        v.message = rep.message
        if (w := _first(findings, "warn")):
            v.message += f"; kernel: {w.title}"
    return v


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
    if outcome.aborted:          # the lifecycle stopped waiting, and says what kind of trouble it saw
        return Verdict(outcome.aborted.kind, outcome.aborted.why, findings=findings)
    if outcome.timed_out:
        return Verdict("hang", timeout_message(timeout or outcome.duration), findings=findings)
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
