"""Path proofs (kharness/proof.py) and how the verdict uses them: an ext4_iomap job whose I/O did
not move the buffered-iomap counters is an error saying so, never a pass."""
from pathlib import Path

from kharness import proof, verdict
from kharness.model import Outcome

P = proof.PROOFS["ext4-buffered-iomap"]
DATA = Path(__file__).parent / "data" / "proof"        # read from a real guest (README there)
BEFORE = (DATA / "ext4_buffered_iomap_ops.before").read_text()
AFTER = (DATA / "ext4_buffered_iomap_ops.after").read_text()


def outcome(rc=0, stderr=""):
    return Outcome(exit_status=rc, stdout="", stderr=stderr, duration=1.0)


def test_moved_counters_prove_the_path():
    assert proof.delta(BEFORE, AFTER) == {"read": 4217, "write": 5106, "writeback": 12778, "zero": 8627,
                                          "mmap": 4516}
    assert proof.describe(proof.delta(BEFORE, AFTER)) == "read +4217, write +5106, writeback +12778, zero +8627, mmap +4516"
    assert proof.describe({"read": 0, "write": 3}) == "write +3"
    assert proof.unproven(P, BEFORE, AFTER) is None
    assert verdict.judge(outcome(), [], unproven=proof.unproven(P, BEFORE, AFTER)).status == "pass"


def test_unmoved_counters_are_an_error_never_a_pass():
    why = proof.unproven(P, BEFORE, BEFORE)
    assert why.startswith("the job's I/O did not go through ext4's buffered iomap path: no counter in "
                          "/sys/kernel/debug/ext4_buffered_iomap_ops moved (read 12156, write 11618")
    v = verdict.judge(outcome(), [], unproven=why)
    assert (v.status, v.message) == ("error", why)
    # a data mismatch on the wrong path says both
    v = verdict.judge(outcome(1, "MISMATCH file=f0 offset=0"), [], unproven=why)
    assert v.status == "error" and v.message.endswith("(the job itself exited 1)")


def test_a_kernel_without_the_counters_is_named():
    for before in (None, "", "garbage\n"):
        why = proof.unproven(P, before, AFTER)
        assert why == ("cannot prove the job used ext4's buffered iomap path: no counters in "
                       "/sys/kernel/debug/ext4_buffered_iomap_ops (the kernel needs the ext4-iomap-proof series)")
    assert "could not be read after the job" in proof.unproven(P, BEFORE, None)


def test_skip_and_hang_still_win():
    why = proof.unproven(P, BEFORE, BEFORE)
    assert verdict.judge(outcome(77, "SKIP no reflink"), [], unproven=why).status == "skip"
    timed_out = Outcome(exit_status=None, stdout="", stderr="", duration=9.0, timed_out=True)
    assert verdict.judge(timed_out, [], unproven=why).status == "hang"
