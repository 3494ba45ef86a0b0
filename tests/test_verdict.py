"""verdict.judge: every path to every verdict, and expectations."""
import pytest

from kharness.model import Finding, Outcome, Trouble
from kharness.verdict import judge

HANG = Finding(kind="hang", type="HANG", title="INFO: task hung in ext4_writepages", line=10, report="...")
WARN = Finding(kind="warn", type="WARNING", title="WARNING in iomap_zero_iter", line=11, report="...")
CRASH = Finding(kind="crash", type="OOPS", title="general protection fault in iomap_zero_range", line=12, report="...")


def ok(**kw):
    return Outcome(exit_status=0, duration=1.0, **kw)


@pytest.mark.parametrize("outcome, findings, status, message", [
    (ok(), [], "pass", ""),
    (Outcome(1, 1.0, stderr="x\nMISMATCH file=f0 offset=4096 expected=zero found=stale\nbye\n"), [], "fail",
     "exit status 1: MISMATCH file=f0 offset=4096 expected=zero found=stale"),
    (Outcome(77, 1.0, stdout="SKIP: FICLONE not supported\n"), [], "skip", "SKIP: FICLONE not supported"),
    (ok(), [WARN], "warn", "WARNING in iomap_zero_iter"),
    (ok(), [WARN, HANG], "hang", "INFO: task hung in ext4_writepages"),
    (ok(), [HANG, CRASH], "crash", "general protection fault in iomap_zero_range"),   # crash outranks hang
    (Outcome(1, 1.0), [CRASH], "crash", "general protection fault in iomap_zero_range"),  # and a plain failure
    (Outcome(None, 30.0, timed_out=True), [], "hang", "job timed out after 30 s with no kernel report"),
    (Outcome(None, 5.0, aborted=Trouble("hang", "guest stopped answering")), [], "hang", "guest stopped answering"),
    (Outcome(None, 5.0, aborted=Trouble("crash", "QEMU exited during the job")), [], "crash", "QEMU exited during the job"),
    (Outcome(None, 5.0, lost="ssh connection to the guest was lost"), [], "error", "ssh connection to the guest was lost"),
])
def test_verdicts(outcome, findings, status, message):
    v = judge(outcome, findings, timeout=30)
    assert (v.status, v.message) == (status, message)
    assert v.findings == findings


def test_warnings_can_be_downgraded():
    v = judge(ok(), [WARN], warn_is_failure=False)
    assert v.status == "pass" and v.findings == [WARN]


def test_harness_error_wins():
    v = judge(None, [HANG], error="boot failed: no kernel banner")
    assert (v.status, v.message) == ("error", "boot failed: no kernel banner")


def test_expected_hang_passes_and_missing_hang_fails():
    got = judge(Outcome(None, 12.0, aborted=Trouble("hang", "INFO: task hung in x")), [HANG], expect="hang")
    assert got.status == "pass" and got.message == "expected hang happened: INFO: task hung in ext4_writepages"
    missed = judge(ok(), [], expect="hang")
    assert missed.status == "fail" and missed.message == "expected hang, got pass"
    crashed = judge(ok(), [CRASH], expect="hang")
    assert crashed.status == "fail" and "got crash" in crashed.message
