"""Console analyzer over real console logs (tests/data/console/*.log, see its README)."""

import io
import json
import random
import re
from pathlib import Path

import pytest

from kharness import console_cli
from kharness.console import KIND, ConsoleAnalyzer, analyze
from kharness.console_formats import FORMATS, match_header, split_line
from kharness.model import Finding
from kharness.errors import UserError

DATA = Path(__file__).parent / "data" / "console"
LOGS = sorted(DATA.glob("*.log"))
NOISE = DATA / "noise.log"


def read(p: Path) -> str:
    return p.read_bytes().decode("utf-8", "replace")


def expected(p: Path) -> list[dict]:
    return json.loads(Path(str(p) + ".expected.json").read_text())


def summary(findings: list[Finding], with_count: bool = True) -> list[tuple]:
    return [(f.kind, f.type, f.title, f.line) + ((f.count,) if with_count else ()) for f in findings]


def feed_in_chunks(text: str, sizes) -> ConsoleAnalyzer:
    a = ConsoleAnalyzer()
    pos = 0
    while pos < len(text):
        n = next(sizes)
        a.feed(text[pos:pos + n])
        pos += n
    a.finish()
    return a


def test_fixtures_present():
    names = {p.name for p in LOGS}
    assert len(LOGS) >= 10
    for p in LOGS:
        assert Path(str(p) + ".expected.json").exists(), p
        assert p.stat().st_size < 200_000, p
    assert {"clean-boot.log", "noise.log", "hung-task.log", "fsfreeze-hung.log"} <= names


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_fixture_findings(log):
    got = analyze(read(log))
    want = expected(log)
    assert [(f.kind, f.type, f.title, f.line) for f in got] == \
        [(w["kind"], w["type"], w["title"], w["line"]) for w in want]
    for f, w in zip(got, want):
        if "count" in w:
            assert f.count == w["count"], f.title
        if "corrupted" in w:
            assert f.corrupted == w["corrupted"], f.title
        assert f.report.strip(), f.title
        assert f.kind == KIND[f.type]
        assert f.kind in ("hang", "crash", "warn")


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_random_chunks_same_as_whole(log):
    text = read(log)
    whole = ConsoleAnalyzer()
    whole.feed(text)
    whole.finish()
    rnd = random.Random(log.name)
    chunked = feed_in_chunks(text, iter(lambda: rnd.choice([1, 2, 7, 64, 333, 4096, 65536]), None))
    assert summary(chunked.findings) == summary(whole.findings)
    assert [f.report for f in chunked.findings] == [f.report for f in whole.findings]
    assert chunked.line_count == whole.line_count == text.count("\n") + (not text.endswith("\n"))


@pytest.mark.parametrize("name", ["hung-task.log", "fsfreeze-hung.log", "run-6.12-hang-canary.log"])
def test_hang_returned_when_task_stack_ends(name):
    """The harness acts on a HANG as soon as feed() returns it: that must be the feed()
    that brings the </TASK> closing the hung task's stack, not a later one."""
    lines = read(DATA / name).splitlines(keepends=True)
    header = next(i for i, ln in enumerate(lines) if "blocked for more than" in ln)
    end = next(i for i in range(header, len(lines)) if lines[i].strip().endswith("</TASK>"))
    a = ConsoleAnalyzer()
    for i, ln in enumerate(lines):
        got = [f for f in a.feed(ln) if f.type == "HANG"]
        if got:
            assert i == end, (i, end)
            assert got[0].line == header + 1
            assert got[0].title.startswith("INFO: task hung in ")
            break
    else:
        pytest.fail("no HANG finding returned by feed()")


def test_panic_returned_when_its_stack_ends():
    """With panic=-1 the VM resets before "---[ end Kernel panic": the stack's end is the end."""
    lines = read(DATA / "panic-init.log").splitlines(keepends=True)
    header = next(i for i, ln in enumerate(lines) if "Kernel panic - not syncing" in ln)
    end = next(i for i in range(header, len(lines)) if "</TASK>" in lines[i])
    a = ConsoleAnalyzer()
    got = [(i, f) for i, ln in enumerate(lines) for f in a.feed(ln)]
    assert [(i, f.title) for i, f in got] == [(end, "kernel panic: Attempted to kill init!")]


def test_hang_followed_by_silence_is_flushed_by_finish():
    lines = read(DATA / "hung-task.log").splitlines(keepends=True)
    header = next(i for i, ln in enumerate(lines) if "blocked for more than" in ln)
    end = next(i for i in range(header, len(lines)) if "</TASK>" in lines[i])
    a = ConsoleAnalyzer()
    a.feed("".join(lines[:end]))          # the stack never ends: the guest went silent
    assert [f.type for f in a.finish()] == ["HANG"]


def test_reset_in_the_middle_of_a_report():
    """The run's console.log holds boot after boot: a report cut off by a reset is complete
    when the next boot starts, and the new boot's lines do not join it."""
    warn = read(DATA / "lkdtm-warn.log").splitlines(keepends=True)
    cut = next(i for i, ln in enumerate(warn) if "Call Trace:" in ln) + 3
    boot = read(DATA / "clean-boot.log")
    a = ConsoleAnalyzer()
    a.feed("".join(warn[:cut]))
    got = a.feed(boot[:boot.index("\n") + 1])
    assert [(f.title, f.line) for f in got] == [("WARNING in lkdtm_WARNING", 257)]
    a.feed(boot[boot.index("\n") + 1:])
    a.finish()
    assert len(a.findings) == 1 and "Linux version" not in a.findings[0].report


def test_repeated_hung_task_is_one_finding_with_count():
    text = read(DATA / "hung-task.log")
    reports = len(re.findall(r"INFO: task \S+ blocked for more than", text))
    assert reports >= 2
    hangs = [f for f in analyze(text) if f.type == "HANG"]
    assert len(hangs) == 1
    assert hangs[0].count == reports
    assert len(hangs[0].lines) == reports


def test_clean_boot_and_noise_have_no_findings():
    assert analyze(read(DATA / "clean-boot.log")) == []
    noise = read(NOISE)
    assert "WARNING: CPU: 0 PID: 1 at fake.c:1" in noise       # a user-space look-alike
    assert "kharness: job-start" in noise and "Modules linked in:" in noise
    assert analyze(noise) == []


def test_lookalike_lines_alone():
    text = "\n".join([
        "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
        "Modules linked in:",
        "Modules linked in: ext4 xfs",
        "[   10.000000] kharness: job-start generic-363",
        "[   11.000000] kharness: job-end generic-363",
        "[   12.000000] WARNING: Flushing system-wide workqueues will be prohibited in near future.",
        "[   12.500000] WARNING: this test wrote a warning",
        "[   13.000000] INFO: lockdep is turned off.",
        "[   14.000000] sysrq: Show Blocked State",
        "[   15.000000] Call Trace:",
        "BUG: a test printed this on the console",
        "Kernel panic - not syncing: a test printed this too",
    ]) + "\n"
    assert analyze(text) == []


def test_prefix_variants_do_not_change_findings():
    """Real logs with their line prefixes rewritten: CRLF, syslog levels, no timestamps."""
    for name in ("lkdtm-oops.log", "hung-task.log", "fsfreeze-hung.log", "lkdtm-warn.log"):
        text = read(DATA / name)
        base = summary(analyze(text))
        crlf = text.replace("\n", "\r\n")
        assert summary(analyze(crlf)) == base, name
        leveled = re.sub(r"(?m)^(?=\[)", "<4>", text)
        assert summary(analyze(leveled)) == base, name
        bare = re.sub(r"(?m)^\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?", "", text)
        assert [x[:3] for x in summary(analyze(bare))] == [x[:3] for x in base], name


def test_newer_hung_task_formats():
    """7.1+ "blocked in I/O wait", and the 6.15+ blocker dump that follows the stack."""
    text = read(DATA / "hung-task.log").replace("blocked for more than", "blocked in I/O wait for more than")
    assert [f.title for f in analyze(text) if f.type == "HANG"] == \
        [f.title for f in analyze(read(DATA / "hung-task.log")) if f.type == "HANG"]
    # As posted to LKML (6.15-rc3, lore "hugetlb ABBA"), prefixes stripped there.
    paste = """\
INFO: task repro_20250402_:13229 blocked for more than 64 seconds.
      Not tainted 6.15.0-rc3+ #24
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:repro_20250402_ state:D stack:25856 pid:13229 tgid:13228 ppid:3513   task_flags:0x400040 flags:0x00004006
Call Trace:
 <TASK>
 __schedule+0x1755/0x4f50
 schedule+0x158/0x330
 schedule_preempt_disabled+0x15/0x30
 __mutex_lock+0x75f/0xeb0
 hugetlb_wp+0xf88/0x3440
 hugetlb_fault+0x14c8/0x2c30
 trace_clock_x86_tsc+0x20/0x20
 do_user_addr_fault+0x61d/0x1490
 exc_page_fault+0x64/0x100
 asm_exc_page_fault+0x26/0x30
RIP: 0010:__put_user_4+0xd/0x20
 copy_process+0x1f4a/0x3d60
 kernel_clone+0x210/0x8f0
 __x64_sys_clone+0x18d/0x1f0
 do_syscall_64+0x6a/0x120
 entry_SYSCALL_64_after_hwframe+0x76/0x7e
RIP: 0033:0x41b26d
 </TASK>
INFO: task repro_20250402_:13229 is blocked on a mutex likely owned by task repro_20250402_:13250.
task:repro_20250402_ state:D stack:28288 pid:13250 tgid:13228 ppid:3513   task_flags:0x400040 flags:0x00000006
Call Trace:
 <TASK>
 __schedule+0x1755/0x4f50
 schedule+0x158/0x330
 io_schedule+0x92/0x110
 folio_wait_bit_common+0x69a/0xba0
 __filemap_get_folio+0x154/0xb70
 hugetlb_fault+0xa50/0x2c30
 </TASK>
"""
    a = ConsoleAnalyzer()
    lines = paste.splitlines(keepends=True)
    end = next(i for i, ln in enumerate(lines) if "</TASK>" in ln)
    got = []
    for i, ln in enumerate(lines):
        new = a.feed(ln)
        if new:
            assert i == end
            got += new
    a.finish()
    assert [(f.type, f.title) for f in got] == [("HANG", "INFO: task hung in hugetlb_wp")]
    assert "is blocked on a mutex likely owned by task repro_20250402_:13250" in got[0].report
    assert "__filemap_get_folio" in got[0].report
    assert a.findings == got


def test_interleaved_contexts_kept_apart():
    """Two real reports from different tasks, interleaved line by line (CONFIG_PRINTK_CALLER)."""
    def report(name, start_type, end):
        lines = read(DATA / name).splitlines()
        f = next(f for f in analyze(read(DATA / name)) if f.type == start_type)
        ctx = re.match(r"\[[\d. ]+\](\[\s*[TC]\d+\])", lines[f.line - 1]).group(1)
        body = [ln for ln in lines[f.line - 1:] if ctx in ln]
        return f, body[:next(i for i, ln in enumerate(body) if end in ln) + 1]
    hang, a = report("hung-task.log", "HANG", "</TASK>")
    warn, b = report("lkdtm-warn.log", "WARNING", "---[ end trace")
    mixed = []
    for i in range(max(len(a), len(b))):
        mixed += a[i:i + 1] + b[i:i + 1]
    got = analyze("\n".join(mixed) + "\n")
    assert sorted((f.type, f.title) for f in got) == sorted([(hang.type, hang.title), (warn.type, warn.title)])


def test_finding_to_json():
    f = analyze(read(DATA / "hung-task.log"))[0]
    j = f.to_json()
    assert set(j) == {"kind", "type", "title", "line", "count", "report"}
    assert json.loads(json.dumps(j)) == j


# -- CLI ---------------------------------------------------------------------------------------

def test_cli_text_and_json(monkeypatch):
    monkeypatch.setattr(console_cli, "CHUNK", 4096)       # stream in many small chunks
    logs = [str(DATA / "hung-task.log"), str(DATA / "clean-boot.log"), str(DATA / "lkdtm-warn.log")]
    out = io.StringIO()
    assert console_cli.main(logs, as_json=True, out=out) == 0
    objs = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert [o["file"] for o in objs] == logs
    assert objs[1]["findings"] == []
    for o in objs:
        assert [(f["kind"], f["type"], f["title"], f["line"]) for f in o["findings"]] == \
            [(w["kind"], w["type"], w["title"], w["line"]) for w in expected(Path(o["file"]))]
    out = io.StringIO()
    assert console_cli.main(logs, as_json=False, out=out) == 0
    lines = out.getvalue().splitlines()
    hang = next(f for f in analyze(read(DATA / "hung-task.log")) if f.type == "HANG")
    assert f"{logs[0]}:{hang.line}: hang HANG {hang.title} (x{hang.count})" in lines
    assert not any(ln.startswith(logs[1]) for ln in lines)


def test_cli_missing_file(tmp_path):
    with pytest.raises(UserError) as e:
        console_cli.main([str(DATA / "clean-boot.log"), str(tmp_path / "nope.log")], as_json=False,
                         out=io.StringIO())
    assert "nope.log" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError):
        console_cli.main([str(tmp_path)], as_json=True, out=io.StringIO())


def test_cli_invalid_utf8(tmp_path):
    p = tmp_path / "bin.log"
    p.write_bytes(read(DATA / "lkdtm-warn.log").encode() + b"\xff\xfe garbage\n")
    out = io.StringIO()
    console_cli.main([str(p)], as_json=True, out=out)
    assert len(json.loads(out.getvalue())["findings"]) == len(expected(DATA / "lkdtm-warn.log"))


# -- the format table, row by row ------------------------------------------------------------
#
# One report per row of console_formats.FORMATS, composed here in the shape the kernel prints
# (header, a few body lines, the stack).  The real logs in tests/data/console cover the rows
# this project's kernels produce; these cover the table itself.

def _report(header, body=(), frames=("guilty_func", "caller_func"), rip=None, trace="Call Trace:"):
    lines = [header, *body, "CPU: 1 PID: 42 Comm: t Not tainted 6.12.117 #1"]
    if rip:
        lines.append(f"RIP: 0010:{rip}+0x10/0x20")
    if frames:
        lines += [trace, " <TASK>"] + [f" {f}+0x1c/0x40" for f in frames] + [" </TASK>"]
    return "".join(f"[  100.{i:06d}] {ln}\n" for i, ln in enumerate(lines))


_WARN = "WARNING: CPU: 1 PID: 42 at {} {}+0x1/0x2"
_LOCK_AT = "ffff888000a163f0 (&lock){{+.+.}}-{{3:3}}, at: {}+0x1c/0x34"
ROW_SAMPLES = [
    # (header, body, frames, rip, expected type, expected title)
    ("INFO: task t:42 blocked for more than 120 seconds.", (), ("__schedule", "schedule", "io_schedule",
     "folio_wait_bit_common", "do_read_cache_folio", "read_cache_folio", "read_part_sector"), None,
     "HANG", "INFO: task hung in read_cache_folio"),
    ("INFO: task t:42 can't die for more than 120 seconds.", (), ("__schedule", "schedule", "p9_client_rpc"),
     None, "HANG", "INFO: task can't die in p9_client_rpc"),
    ("INFO: task \ufffd\ufffd", (" \ufffd!:42 blocked for more than 143 seconds.",), ("__schedule", "schedule",
     "__flush_work", "p9_fd_close"), None, "HANG", "INFO: task hung in p9_fd_close"),
    ("rcu: INFO: rcu_preempt self-detected stall on CPU", (), ("snd_pcm_oss_write", "vfs_write", "ksys_write",
     "__x64_sys_write", "do_syscall_64"), "mulaw_decode", "RCU_STALL", "INFO: rcu detected stall in snd_pcm_oss_write"),
    ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [t:42]", (), ("d_walk", "shrink_dcache_parent",
     "do_rmdir", "__x64_sys_rmdir", "do_syscall_64"), "d_walk", "SOFTLOCKUP", "BUG: soft lockup in sys_rmdir"),
    ("watchdog: Watchdog detected hard LOCKUP on cpu 1", (), ("busy_loop_fn", "process_one_work",
     "worker_thread", "kthread"), "busy_loop_fn", "HARDLOCKUP", "BUG: hard lockup in busy_loop_fn"),
    ("BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 32s!", (), (), None,
     "WQ_LOCKUP", "BUG: workqueue lockup"),
    ("unregister_netdevice: waiting for lo to become free. Usage count = 6", (), (), None,
     "NETDEV_WAIT", "unregister_netdevice: waiting for DEV to become free"),
    ("BUG: KASAN: double-free in kfree+0x1/0x2", (), ("kasan_report_invalid_free", "kfree", "xt_free_table_info"),
     None, "KASAN", "KASAN: invalid-free in xt_free_table_info"),
    ("BUG: KASAN: slab-use-after-free in __list_del_entry_valid+0x1/0x2", ("Read of size 8 at addr ffff8880 by task t/42",),
     ("dump_stack_lvl", "__list_del_entry_valid", "binder_release_work"), None,
     "KASAN", "KASAN: slab-use-after-free Read in binder_release_work"),
    ("BUG: KASAN: null-ptr-deref on address 0000000000000000", ("Read of size 4 by task t/42",), (), None,
     "KASAN", "KASAN: null-ptr-deref Read"),
    ("BUG: KFENCE: use-after-free read in memcmp+0x57/0x150", (), ("memcmp", "find_uprobe"), None,
     "KFENCE", "KFENCE: use-after-free read in find_uprobe"),
    ("BUG: KMSAN: uninit-value in crc32_le_base+0x1/0x2", (), ("crc32_le_base", "nilfs_add_checksums_on_logs"), None,
     "KMSAN", "KMSAN: uninit-value in nilfs_add_checksums_on_logs"),
    ("BUG: KCSAN: data-race in netlink_recvmsg / netlink_recvmsg", (), (), None,
     "KCSAN", "KCSAN: data-race in netlink_recvmsg / netlink_recvmsg"),
    ("BUG: KCSAN: assert: race in dequeue_entities+0x1/0x2", (), (), None,
     "KCSAN", "KCSAN: assert: race in dequeue_entities"),
    ("UBSAN: Undefined behaviour in net/ipv4/route.c:504:8", ("signed integer overflow:",),
     ("dump_stack", "ubsan_epilogue", "handle_overflow", "ip_idents_reserve"), None,
     "UBSAN", "UBSAN: undefined-behaviour in ip_idents_reserve"),
    ("UBSAN: array-index-out-of-bounds in drivers/misc/lkdtm/bugs.c:391:26", (),
     ("dump_stack_lvl", "__ubsan_handle_out_of_bounds", "lkdtm_ARRAY_BOUNDS"), None,
     "UBSAN", "UBSAN: array-index-out-of-bounds in lkdtm_ARRAY_BOUNDS"),
    ("unreferenced object 0xffff888005f5a000 (size 64):", (), ("kmalloc_trace", "__kernfs_new_node"), None,
     "MEMLEAK", "memory leak in __kernfs_new_node"),
    ("WARNING: possible circular locking dependency detected", ("t/42 is trying to acquire lock:",
     _LOCK_AT.format("serial8250_console_write")), (), None, "LOCKDEP", "possible deadlock in serial8250_console_write"),
    ("WARNING: possible recursive locking detected", ("t/42 is trying to acquire lock:", _LOCK_AT.format("tun_queue_purge")),
     (), None, "LOCKDEP", "possible deadlock in tun_queue_purge"),
    ("WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", ("t/42 [HC0[0]:SC0[0]:HE0:SE1] is trying to acquire:",
     _LOCK_AT.format("tun_device_event")), (), None, "LOCKDEP", "possible deadlock in tun_device_event"),
    ("WARNING: possible irq lock inversion dependency detected", ("t/42 just changed the state of lock:",
     _LOCK_AT.format("input_event")), (), None, "LOCKDEP", "possible deadlock in input_event"),
    ("WARNING: inconsistent lock state", ("t/42 [HC0[0]:SC0[0]:HE1:SE1] takes:", _LOCK_AT.format("inet_ehash_insert")),
     (), None, "LOCKDEP", "inconsistent lock state in inet_ehash_insert"),
    ("WARNING: suspicious RCU usage", ("net/tipc/bearer.c:177 suspicious rcu_dereference_check() usage!",),
     ("dump_stack", "lockdep_rcu_suspicious", "tipc_bearer_find"), None,
     "LOCKDEP", "WARNING: suspicious RCU usage in tipc_bearer_find"),
    ("WARNING: bad unlock balance detected!", ("t/42 is trying to release lock (&mrt->lock) at:",
     "[<ffffffff81234567>] ipmr_mfc_seq_stop+0x1/0x2"), (), None, "LOCKDEP", "WARNING: bad unlock balance in ipmr_mfc_seq_stop"),
    ("[ BUG: held lock freed! ]", ("t/42 is freeing memory ffff8800-ffff8801, with a lock still held there!",
     _LOCK_AT.format("sk_clone_lock")), (), None, "LOCKDEP", "BUG: held lock freed in sk_clone_lock"),
    ("WARNING: lock held when returning to user space!", ("t/42 is leaving the kernel with locks still held!",
     "1 lock held by t/42:", " #0: " + _LOCK_AT.format("fuse_lock_inode")), (), None,
     "LOCKDEP", "WARNING: lock held when returning to user space in fuse_lock_inode"),
    ("WARNING: t/42 still has locks held!", ("1 lock held by t/42:", " #0: " + _LOCK_AT.format("prepare_bprm_creds")),
     (), None, "LOCKDEP", "WARNING: still has locks held in prepare_bprm_creds"),
    ("WARNING: Nested lock was not taken", ("t/42 is trying to lock:", _LOCK_AT.format("evict")), (), None,
     "LOCKDEP", "WARNING: nested lock was not taken in evict"),
    ("WARNING: bad contention detected!", (), ("dump_stack", "lock_contended", "ext4_fill_super"), None,
     "LOCKDEP", "WARNING: bad contention in ext4_fill_super"),
    ("WARNING: chain_key collision", (), ("dump_stack", "__lock_acquire", "lock_acquire", "xfs_ilock"), None,
     "LOCKDEP", "WARNING: chain_key collision in xfs_ilock"),
    ("[ BUG: Invalid wait context ]", (), ("dump_stack", "__lock_acquire", "lock_acquire", "__might_fault",
     "do_ipv6_setsockopt"), None, "LOCKDEP", "WARNING: locking bug in do_ipv6_setsockopt"),
    ("INFO: trying to register non-static key.", (), ("dump_stack", "register_lock_class", "__lock_acquire",
     "lock_acquire", "del_timer_sync", "tun_flow_cleanup"), None,
     "LOCKDEP", "INFO: trying to register non-static key in tun_flow_cleanup"),
    ("BUG: MAX_STACK_TRACE_ENTRIES too low!", (), (), None, "LOCKDEP", "BUG: MAX_STACK_TRACE_ENTRIES too low!"),
    ("BUG: spinlock bad magic on CPU#1, t/42", (), ("dump_stack", "spin_bug", "do_raw_spin_lock", "_raw_spin_lock",
     "tcp_nuke_addr"), None, "LOCKDEP", "BUG: spinlock bad magic in tcp_nuke_addr"),
    ("BUG: using __this_cpu_read() in preemptible [00000000] code: t/42", ("caller is __this_cpu_preempt_check+0x1c/0x20",),
     ("dump_stack", "check_preemption_disabled", "__this_cpu_preempt_check", "ipcomp_init_state"), None,
     "LOCKDEP", "BUG: using __this_cpu_read() in preemptible code in ipcomp_init_state"),
    ("BUG: workqueue leaked lock or atomic: kworker/0:1/0x00000000/353", ("     last function: addrconf_dad_work",),
     ("dump_stack", "process_one_work"), None, "LOCKDEP", "BUG: workqueue leaked lock or atomic in addrconf_dad_work"),
    ("BUG: scheduling while atomic: t/42/0x00000201", (), ("dump_stack", "__schedule_bug", "__schedule", "schedule",
     "exit_to_usermode_loop"), None, "ATOMIC_SLEEP", "BUG: scheduling while atomic in exit_to_usermode_loop"),
    (_WARN.format("lib/debugobjects.c:505", "debug_print_object"),
     ("ODEBUG: free active (active state 0) object type: timer_list hint: delayed_work_timer_fn+0x0/0x90",),
     ("debug_check_no_obj_freed", "kvfree", "netdev_freemem"), "debug_print_object",
     "WARNING", "WARNING: ODEBUG bug in netdev_freemem"),
    (_WARN.format("lib/refcount.c:28", "refcount_warn_saturate"), (), ("__refcount_sub_and_test", "sctp_wfree"),
     "refcount_warn_saturate", "REFCOUNT", "WARNING: refcount bug in sctp_wfree"),
    (_WARN.format("kernel/locking/lockdep.c:3676", "lock_release"), ("DEBUG_LOCKS_WARN_ON(depth <= 0)",),
     ("lock_release", "up_write", "destroy_unused_super"), "lock_release", "WARNING", "WARNING: locking bug in destroy_unused_super"),
    (_WARN.format("mm/slab_common.c:971", "kmalloc_slab"), (), ("__kmalloc", "relay_open_buf"), "kmalloc_slab",
     "WARNING", "WARNING: kmalloc bug in relay_open_buf"),
    (_WARN.format("fs/proc/generic.c:330", "proc_register"), (), ("proc_create_data", "clusterip_tg_check"),
     "proc_register", "WARNING", "WARNING: proc registration bug in clusterip_tg_check"),
    (_WARN.format("lib/kobject.c:244", "kobject_add_internal"), (), ("kobject_add", "br_add_if"),
     "kobject_add_internal", "WARNING", "WARNING: kobject bug in br_add_if"),
    (_WARN.format("mm/vmalloc.c:3108", "__vmalloc_node_range"), (), ("vmalloc", "dvb_dmx_init"),
     "__vmalloc_node_range", "WARNING", "WARNING: zero-size vmalloc in dvb_dmx_init"),
    (_WARN.format("mm/usercopy.c:81", "usercopy_warn"), (), ("__check_object_size", "put_cmsg"), "usercopy_warn",
     "WARNING", "WARNING: bad usercopy in put_cmsg"),
    (_WARN.format("drivers/usb/core/urb.c:449", "usb_submit_urb"), (), ("usb_submit_urb", "aiptek_open"),
     "usb_submit_urb", "WARNING", "WARNING in aiptek_open/usb_submit_urb"),
    ("WARNING: fs/inode.c:336 at drop_nlink+0xc6/0x110, CPU#1: t/42", (), ("drop_nlink", "udf_rmdir"), "drop_nlink",
     "WARNING", "WARNING in udf_rmdir"),
    ("WARNING: kernel stack frame pointer at ffff88003e1f7f40 in migration/1:14 has bad value ffffffff85632fb0", (), (),
     None, "WARNING", "WARNING: kernel stack frame pointer has bad value"),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000000", (), ("rtnl_dump_ifinfo",), "sock_poll",
     "PAGE_FAULT", "BUG: unable to handle kernel NULL pointer dereference in sock_poll"),
    ("BUG: unable to handle page fault for address: ffffffffa4493138", (), ("foo_ioctl",), "foo_ioctl",
     "PAGE_FAULT", "BUG: unable to handle kernel paging request in foo_ioctl"),
    ("BUG: unable to handle kernel access to user memory at ffff", (), (), "schedule_tail",
     "PAGE_FAULT", "BUG: unable to handle kernel access to user memory in schedule_tail"),
    ("BUG: unable to handle kernel [  153.615435] deprecated getsockopt IP_VLAN used", (), (), None,
     "PAGE_FAULT", "BUG: unable to handle kernel"),
    ("Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
     ("Mem abort info:", "  ESR = 0x0000000096000006", "Internal error: Oops: 0000000096000006 [#1] PREEMPT SMP"), (),
     "nci_send_cmd",
     "PAGE_FAULT", "BUG: unable to handle kernel NULL pointer dereference in nci_send_cmd"),
    ("Unable to handle kernel access to user memory without uaccess routines at virtual address 0c6b0d0",
     ("Oops [#1]",), (),
     "schedule_tail", "PAGE_FAULT", "BUG: unable to handle kernel access to user memory in schedule_tail"),
    ("Unable to handle kernel paging request at virtual address fc14ef08",
     ("pgd = c60b8887", "[fc14ef08] *pgd=00000000", "Internal error: Oops: 5 [#1] SMP ARM"), (), "migrate_task_rq_fair",
     "PAGE_FAULT", "BUG: unable to handle kernel paging request in migrate_task_rq_fair"),
    ("BUG: TASK stack guard page was hit at ffffc9000e4aff58 (stack is ffffc9000e4b0000..ffffc9000e4b8000)", (),
     ("mark_lock", "__lock_acquire", "rtnl_newlink", "rtnetlink_rcv_msg"), "mark_lock",
     "BUG", "BUG: stack guard page was hit in rtnl_newlink"),
    ("BUG: Bad page map in process t  pte:ffff8801a700ff00 pmd:1a700f067", (), (), None, "BUG", "BUG: Bad page map"),
    ("BUG: Bad page state in process t  pfn:7071f", (), ("bad_page", "free_unref_page", "__get_metapage"), None,
     "BUG", "BUG: Bad page state in __get_metapage"),
    ("BUG: Bad rss-counter state mm:ffff88005fac4300 idx:0 val:15", (), (), None, "BUG", "BUG: Bad rss-counter state"),
    ("BUG: Dentry ffff880175978600{i=8bb9,n=lo}  still in use (1) [unmount of proc proc]", (), (), None,
     "BUG", "BUG: Dentry still in use in unmount"),
    ("BUG: Dentry ffff880175978600{i=8bb9,n=lo}  still in use (1) [killed]", (), ("umount_check", "d_walk",
     "shrink_dcache_for_umount", "generic_shutdown_super"), None, "BUG", "BUG: Dentry still in use in generic_shutdown_super"),
    ("kernel BUG at lib/list_debug.c:53!", ("list_del corruption. next->prev should be ffff, but was ffff",), (
     "__list_del_entry_valid", "tipc_nametbl_unsubscribe"), "__list_del_entry_valid",
     "KERNEL_BUG", "BUG: corrupted list in tipc_nametbl_unsubscribe"),
    ("kernel BUG at mm/usercopy.c:102!", (), ("usercopy_abort", "__check_object_size", "sg_io"), "usercopy_abort",
     "KERNEL_BUG", "BUG: bad usercopy in sg_io"),
    ("kernel BUG at net/core/skbuff.c:105!", ("invalid opcode: 0000 [#1] PREEMPT SMP KASAN",),
     ("skb_over_panic", "skb_put", "pfkey_send_acquire"), "skb_panic", "KERNEL_BUG", "kernel BUG in pfkey_send_acquire"),
    ("general protection fault, probably for non-canonical address 0xdffffc0000000000: 0000 [#1] PREEMPT SMP KASAN",
     (), ("__alloc_skb",), "_raw_spin_lock_bh", "GPF", "general protection fault in __alloc_skb"),
    ("divide error: 0000 [#1] SMP KASAN", (), (), "snd_hrtimer_callback", "OOPS", "divide error in snd_hrtimer_callback"),
    ("stack segment: 0000 [#1] PREEMPT SMP KASAN", (), (), "sctp_sendmsg", "OOPS", "stack segment fault in sctp_sendmsg"),
    ("Oops: int3: 0000 [#1] PREEMPT SMP KASAN NOPTI", (), (), "__pmd_alloc", "OOPS", "int3 in __pmd_alloc"),
    ("invalid opcode: 0000 [#1] PREEMPT SMP", (), (), "bch2_fs_recovery", "OOPS", "invalid opcode in bch2_fs_recovery"),
    ("PANIC: double fault, error_code: 0x0", (), (), "kvm_async_pf_task_wait", "OOPS",
     "PANIC: double fault in kvm_async_pf_task_wait"),
    ("kernel stack overflow (double-fault): 0000 [#1] PREEMPT SMP KASAN", (), ("mark_lock", "rtnl_newlink",
     "rtnetlink_rcv_msg"), "mark_lock", "OOPS", "kernel stack overflow in rtnl_newlink"),
    ("Internal error: Oops - SP/PC alignment exception: 8a000000 [#1] PREEMPT SMP", (), (), "clear_page", "OOPS",
     "Internal error in clear_page"),
    ("Unhandled fault: page domain fault (0x01b) at 0x00000e30", ("pgd = e852c1e3", "Internal error: : 1b [#1] SMP ARM"),
     (), "n_tty_set_termios", "OOPS",
     "Unhandled fault in n_tty_set_termios"),
    ("Alignment trap: not handling instruction e1953f9f at [<8057a1fc>]",
     ("Unhandled fault: alignment exception (0x001) at 0x000008ad", "Internal error: : 1 [#1] SMP ARM"), (),
     "sock_sendmsg_nosec", "OOPS",
     "Alignment trap in sock_sendmsg_nosec"),
    ("Oops: 0000 [#1] PREEMPT SMP", (), (), "ni_readpage_cmpr", "OOPS", "Oops in ni_readpage_cmpr"),
    ("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: ffffffff8343632e", (),
     ("dump_stack", "panic", "__stack_chk_fail", "ip6_xmit"), None, "PANIC", "kernel panic: stack is corrupted in ip6_xmit"),
    ("Kernel panic - not syncing: corrupted stack end detected inside scheduler", (), ("__schedule", "wb_workfn",
     "process_one_work", "worker_thread"), None, "PANIC", "kernel panic: corrupted stack end in wb_workfn"),
    ("Kernel panic - not syncing: kernel stack overflow", (), ("panic", "nmi_panic", "rtnl_newlink",
     "rtnetlink_rcv_msg"), None, "PANIC", "kernel stack overflow in rtnl_newlink"),
    ("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", (), (), None,
     "PANIC", "kernel panic: VFS: Unable to mount root fs on unknown-block(NUM,NUM)"),
    ("VFS: Busy inodes after unmount of sda. Self-destruct in 5 seconds.  Have a nice day...", (), (), None,
     "BUG", "VFS: Busy inodes after unmount (use-after-free)"),
    ("VFS: Close: file count is 0", (), (), None, "BUG", "VFS: Close: file count is zero (use-after-free)"),
    ("INFO: Freed in fasync_free_rcu+0x14/0x20 age=2 cpu=1 pid=5", (), (), None,
     "BUG", "INFO: Freed in fasync_free_rcu age=NUM cpu=NUM pid=NUM"),
    ("BUG kmalloc-8 (Tainted: G    B         ): Object already free", (), (), None, "BUG", "BUG: Object already free"),
    ("BUG kmalloc-64 (Not tainted): Poison overwritten", (), ("dump_stack", "print_trailer", "check_bytes_and_report",
     "ext4_fill_super"), None, "BUG", "BUG: Poison overwritten in ext4_fill_super"),
    ("BUG: Unknown corruption on CPU#1, t/42", (), ("dump_stack", "xfs_buf_rele"), None,
     "BUG", "BUG: Unknown corruption in xfs_buf_rele"),
]


@pytest.mark.parametrize("header,body,frames,rip,type_,title", ROW_SAMPLES, ids=[s[5] for s in ROW_SAMPLES])
def test_each_row_titles_its_report(header, body, frames, rip, type_, title):
    got = analyze(_report(header, body, frames, rip))
    assert [(f.type, f.title) for f in got][:1] == [(type_, title)]
    assert got[0].kind == KIND[type_]


def test_every_row_has_a_sample():
    """Adding a report type is adding a row: and a sample above (or a log below) that yields its title."""
    headers = [h for h, *_ in ROW_SAMPLES] + [h for h, _ in LOG_SAMPLE_HEADERS]
    covered = {id(match_header(h.strip())[0]) for h in headers if match_header(h.strip())}
    missing = [(r.title, r.header.pattern) for r in FORMATS if id(r) not in covered]
    assert missing == []


# -- rows whose report is not a header and a stack: a bare kernel line, a cut header, a reboot ---
#
# Built from the real fixtures: a run's lines, then what the row is about, then a real boot.

def _lines(name: str) -> list[str]:
    return read(DATA / name).splitlines(keepends=True)


# hung-task.log up to its first report (line 257): a kernel running, nothing open
_RUNNING = "".join(_lines("hung-task.log")[:250])
# What a guest prints when it is reset and its firmware's and decompressor's output reach the
# serial port (QEMU's SeaBIOS, the x86 decompressor of 6.x), then clean-boot.log's kernel.
_FIRMWARE = ["SeaBIOS (version 1.16.2-debian-1.16.2-1)\n", "\n", "Booting from ROM..\n",
             "Decompressing Linux... Parsing ELF... Performing relocations... done.\n",
             "Booting the kernel (entry_offset: 0x0000000000000000).\n"]
_BOOT = read(DATA / "clean-boot.log")
# the real bare "WARNING:" lines of the logs below (header, what it shows)
_MTRR = "WARNING: BIOS bug: CPU MTRRs don't cover all of memory, losing 2048MB of RAM."
_ATH10K = "usb 1-1: WARNING: ath10k USB support is incomplete, don't expect anything to work!"
LOG_SAMPLE_HEADERS = [
    (_MTRR, "a pr_warn on a console in syslog format"),
    (_ATH10K, "a dev_warn"),
    ("INFO:", "a header cut after its keyword"),
    (split_line(_BOOT.split("\n")[0])[2], "a new boot"),
]


def test_bare_warning_line_the_kernel_printed():
    """A "WARNING: ..." line without a stack is a report, titled by itself, when the line shows
    the kernel printed it: the kernel facility of console_msg_format=syslog (<0>-<7>; /dev/kmsg
    gives user space <8> and up) or a device's dev_printk prefix.  The same text bare is what
    user space writes (noise.log, test_lookalike_lines_alone)."""
    lines = _lines("syslog-format.log")
    mtrr = f"<4>[    0.008402] {_MTRR}\n"      # arch/x86/kernel/cpu/mtrr/cleanup.c, before its WARN_ON(1)
    text = "".join(lines[:17] + [mtrr] + lines[17:])
    base = summary(analyze(read(DATA / "syslog-format.log")))
    got = summary(analyze(text))
    assert got[0] == ("warn", "WARNING", _MTRR, 18, 1)
    assert [x[:3] for x in got[1:]] == [x[:3] for x in base]
    # the same line from user space through /dev/kmsg (facility user), or with no prefix at all
    for forged in (f"<12>[    0.008402] {_MTRR}\n", f"[    0.008402] {_MTRR}\n"):
        assert [x[:3] for x in summary(analyze("".join(lines[:17] + [forged] + lines[17:])))] == [x[:3] for x in base]
    # a device's warning, amid its probe (dummy_hcd: USB fuzzing's virtual host controller)
    usb = ["usb 1-1: new high-speed USB device number 2 using dummy_hcd",
           "usb 1-1: Using ep0 maxpacket: 8",
           "usb 1-1: New USB device found, idVendor=13b1, idProduct=0042, bcdDevice=b7.f3",
           "usb 1-1: New USB device strings: Mfr=0, Product=0, SerialNumber=0",
           "usb 1-1: config 0 descriptor??", _ATH10K,
           "usb 1-1: USB disconnect, device number 2"]
    got = analyze("".join(f"[   95.{i:06d}][ T3012] {ln}\n" for i, ln in enumerate(usb)))
    assert [(f.kind, f.title, f.line, f.corrupted) for f in got] == [
        ("warn", "WARNING: ath10k USB support is incomplete, don't expect anything to work!", 6, False)]
    # not a device's prefix (a filesystem's), and the kernel's own notices that are no bug
    assert analyze("[  131.879441][  T152] XFS (vdb): WARNING: Reset corrupted AGFL on AG 0. 1 blocks leaked. "
                   "Please unmount and run xfs_repair.\n") == []
    assert analyze("<4>[   49.679506] WARNING: The mand mount option has been deprecated and\n"
                   "<4>[   49.679506]          and is ignored by this kernel. Remove the mand\n") == []


def test_header_cut_after_its_keyword():
    """The guest died while printing a header: "INFO:" is the last the console got.  It is a
    report ("INFO: corrupted") when the stream ends there or the next boot starts; a line
    that goes on after it makes it none."""
    lines = _lines("hung-task.log")
    cut = lines[256][:lines[256].index("INFO:") + 5]          # "[   33.403835][   T27] INFO:"
    assert lines[256].startswith(cut) and "blocked for more than" in lines[256]
    want = [("crash", "BUG", "INFO: corrupted", 257, 1)]
    got = analyze("".join(lines[:256]) + cut)                 # the last line, without its end
    assert summary(got) == want and got[0].corrupted
    assert summary(analyze("".join(lines[:256]) + cut + "\n\n")) == want
    # the harness's next boot follows (its boot line, then the kernel): the cut header, no reboot
    nxt = "".join(lines[:256]) + cut + "\n==== kharness: boot 2 (tcg, ssh port 34503) ====\n" + _BOOT
    assert summary(analyze(nxt)) == want
    # ... and without the harness's line: still the cut header's, the reset is not another report
    assert summary(analyze("".join(lines[:256]) + cut + "\n" + _BOOT)) == want
    # the kernel went on printing: it was no header
    assert analyze("".join(lines[:256]) + cut + "\n" + "".join(lines[257:300])) == []


@pytest.mark.parametrize("first", [0, 3, 4, 5], ids=["seabios", "decompressor", "booting", "kernel"])
def test_unexpected_reboot(first):
    """The guest was reset while it ran, with nothing open and nothing said: the new boot is
    "unexpected kernel reboot", once, from its first banner on the console (firmware,
    decompressor, or the kernel's own "Linux version" line), and its lines join nothing."""
    got = analyze(_RUNNING + "".join(_FIRMWARE[first:]) + _BOOT)
    assert summary(got) == [("crash", "REBOOT", "unexpected kernel reboot", 251, 1)]
    banner = (_FIRMWARE + [split_line(_BOOT.split("\n")[0])[2]])[first].strip()
    assert got[0].report == banner and not got[0].corrupted


def test_expected_boots_are_no_reboot():
    fw = "".join(_FIRMWARE)
    # a stream's first boot, with or without its firmware; journalctl's header before it
    assert analyze(fw + _BOOT) == [] and analyze(_BOOT) == []
    assert analyze("-- Logs begin at Thu 2026-11-26 10:00:00 UTC, end at Thu 2026-11-26 10:05:00 UTC. --\n" + _BOOT) == []
    # the harness's boot line before each boot (console.log: run-*.log in the corpus)
    assert analyze(_RUNNING + "==== kharness: boot 2 (tcg, ssh port 34503) ====\n" + _BOOT) == []
    # the kernel went down first (clean-boot.log ends with "reboot: Power down"), or kexec'd the next
    assert analyze(_BOOT + fw + _BOOT) == []
    assert analyze(_RUNNING + "[   34.120000][  T301] kexec_core: Starting new kernel\n" + _BOOT) == []
    # a panic reset the guest (lkdtm-panic.log's panic=-1, were QEMU without -no-reboot): the panic is the finding
    panic = read(DATA / "lkdtm-panic.log")
    assert summary(analyze(panic + fw + _BOOT)) == summary(analyze(panic))
    # a report the reset cut short: that report, not a reboot too (test_reset_in_the_middle_of_a_report)
    warn = _lines("lkdtm-warn.log")
    cut = next(i for i, ln in enumerate(warn) if "Call Trace:" in ln) + 3
    assert [f.title for f in analyze("".join(warn[:cut]) + fw + _BOOT)] == ["WARNING in lkdtm_WARNING"]
    # user space printing /proc/version on a timestamped console is no boot
    assert analyze(_RUNNING + _BOOT.split("\n")[0].split("] ", 1)[1] + "\n" + "".join(_lines("hung-task.log")[250:256])) == []


def test_corrupted_and_alternate_titles():
    # a stall whose stacks show no entry point, a hang whose stack is another task's output
    stall = analyze(_report("rcu: INFO: rcu_preempt self-detected stall on CPU", (), ("rb_insert_color",
                                                                                     "timerqueue_add"), None))
    assert (stall[0].title, stall[0].corrupted) == ("INFO: rcu detected stall in corrupted", True)
    hang = analyze(_report("INFO: task t:42 blocked for more than 120 seconds.", (), ("dump_stack", "should_fail",
                                                                                       "memfd_create"), None))
    assert (hang[0].title, hang[0].corrupted) == ("INFO: task hung in corrupted", True)
    # the title names syzbot's frame, the alternates the raw one and the category
    soft = analyze(_report("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [t:42]", (), (
        "smp_call_function_single", "kvm_vcpu_release"), "smp_call_function_single"))
    assert soft[0].title == "BUG: soft lockup in smp_call_function"
    assert soft[0].alt_titles == ["BUG: soft lockup in smp_call_function_single", "stall in smp_call_function",
                                  "stall in smp_call_function_single"]
    assert not soft[0].corrupted
    # frames printed by CONFIG_UNWINDER_GUESS ("? f"): read as they are, but flagged
    fs = [f for f in analyze(read(DATA / "fsfreeze-hung.log")) if f.type == "HANG"][0]
    assert (fs.title, fs.corrupted) == ("INFO: task hung in mnt_want_write", True)
    assert not [f for f in analyze(read(DATA / "hung-task.log")) if f.type == "HANG"][0].corrupted


def test_unreliable_frames_with_caller_context_name_nothing():
    """syzbot's rule: "? f" frames are stale stack contents.  With printk caller context (the
    ORC-unwinder configs of syzbot and this project) a stack of nothing else is "in corrupted";
    without it (CONFIG_UNWINDER_GUESS, fsfreeze-hung's plain kernel) it is read as it is."""
    text = read(DATA / "fsfreeze-hung.log")
    plain = [f for f in analyze(text) if f.type == "HANG"][0]
    assert (plain.title, plain.corrupted) == ("INFO: task hung in mnt_want_write", True)
    with_ctx = re.sub(r"(?m)^(\[\s*\d+\.\d+\])", r"\1[   T45]", text)
    hang = [f for f in analyze(with_ctx) if f.type == "HANG"][0]
    assert (hang.title, hang.corrupted, hang.count) == ("INFO: task hung in corrupted", True, plain.count)
    # one reliable frame is enough to name it
    one = with_ctx.replace("? mnt_want_write+0x19/0x40", "mnt_want_write+0x19/0x40")
    assert [f.title for f in analyze(one) if f.type == "HANG"][0] == "INFO: task hung in mnt_want_write"


def _stall(irq_frames, rip, task_frames):
    lines = ["rcu: INFO: rcu_preempt self-detected stall on CPU", "CPU: 0 PID: 42 Comm: t Not tainted 6.12.117 #1",
             "Call Trace:", " <IRQ>", *(f" {f}+0x1c/0x40" for f in irq_frames), " </IRQ>", " <TASK>",
             " asm_sysvec_apic_timer_interrupt+0x1a/0x20", f"RIP: 0010:{rip}+0x10/0x20",
             *(f" {f}+0x1c/0x40" for f in task_frames), " </TASK>"]
    return "".join(f"[  100.{i:06d}][    C0] {ln}\n" for i, ln in enumerate(lines))


def test_stall_named_by_the_interrupted_context():
    """The timer interrupt that found the CPU looping may itself have run a softirq (a timer
    callback): the stall is what it interrupted, from the RIP down."""
    irq = ("rcu_sched_clock_irq", "update_process_times", "tick_nohz_handler", "__hrtimer_run_queues",
           "hrtimer_interrupt", "__sysvec_apic_timer_interrupt", "igmp_ifc_timer_expire", "call_timer_fn",
           "__run_timers", "run_timer_softirq", "handle_softirqs", "irq_exit_rcu", "sysvec_apic_timer_interrupt")
    got = analyze(_stall(irq, "_raw_write_unlock_irq", ("do_exit", "do_group_exit", "__x64_sys_exit_group",
                                                         "x64_sys_call", "do_syscall_64")))
    assert got[0].title == "INFO: rcu detected stall in sys_exit_group"
    # no entry point in the interrupted part (its stack cut short): the interrupt's names it
    got = analyze(_stall(irq, "spin_on_flag", ("wait_for_flag",)))
    assert got[0].title == "INFO: rcu detected stall in igmp_ifc_timer_expire"
    # the CPU loops in a helper the shared lists skip, called by an entry point: the helper
    got = analyze(_stall(irq[:6] + irq[-1:], "lock_is_held_type", ("rcu_read_lock_held", "nfnetlink_rcv_msg",
                                                                 "netlink_rcv_skb", "netlink_sendmsg", "__sys_sendmsg",
                                                                 "do_syscall_64")))
    assert got[0].title == "INFO: rcu detected stall in lock_is_held_type"


# -- hostile input -----------------------------------------------------------------------------

_STRAYS = ["\x00", "\x00\x00\x00", "\ufffd", "\x1b", "\x7f", "\x08", "\x07", "\u200b", "\x9b", "\x1b[0m"]


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_stray_bytes_before_lines_hide_nothing(log):
    """Serial noise before a line (a NUL, a control character, a byte that was not UTF-8) does
    not hide the report on it: stray bytes before every line, or some, change no finding."""
    text = read(log)
    want = summary(analyze(text))
    rnd = random.Random(log.name)
    lines = text.splitlines(keepends=True)
    every = "".join(rnd.choice(_STRAYS) + ln for ln in lines)
    some = "".join((rnd.choice(_STRAYS) if rnd.random() < 0.3 else "") + ln for ln in lines)
    assert summary(analyze(every)) == want
    assert summary(analyze(some)) == want
    # without timestamps too: the report's own lines, each behind a stray byte
    bare = re.sub(r"(?m)^\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?", "", text)
    bare_want = [x[:3] for x in summary(analyze(bare))]
    bare_noisy = "".join(rnd.choice(_STRAYS) + ln for ln in bare.splitlines(keepends=True))
    assert [x[:3] for x in summary(analyze(bare_noisy))] == bare_want


def _garbage(rnd: random.Random, size: int) -> str:
    """One of: random bytes (decoded as `harness.py console` decodes them), NUL runs, a very
    long line, a line without end before the next line, console noise of every shape."""
    kind = rnd.randrange(5)
    if kind == 0:
        return rnd.randbytes(size).decode("utf-8", "replace")
    if kind == 1:
        return "\x00" * size
    if kind == 2:
        return "[   1.000000] " + "".join(rnd.choice("ab \t:[]<>?+0x") for _ in range(64)) * (size // 64) + "\n"
    if kind == 3:
        return rnd.randbytes(size).replace(b"\n", b"").decode("latin-1")
    return "".join(rnd.choice(["BUG: ", "WARNING: ", "INFO: task ", "Call Trace:\n", " <TASK>\n", "\n", " ? f+0x1/0x2\n",
                               "[   2.0][ T1] ", "\r", "\x1b[", "Oops [#1]"]) for _ in range(size // 8))


@pytest.mark.parametrize("seed", range(4))
def test_hostile_input_bounded_memory_and_the_hang_still_found(seed):
    """Random bytes, NUL runs and very long lines (with and without an end) around a real
    hung-task report: what the analyzer holds between feeds stays bounded (it does not grow
    with the input), and the report is found with the title it has alone."""
    import tracemalloc
    rnd = random.Random(seed)
    hang_log = read(DATA / "hung-task.log")
    want = [f.title for f in analyze(hang_log) if f.type == "HANG"]
    assert want == ["INFO: task hung in lkdtm_HUNG_TASK"]
    a = ConsoleAnalyzer()
    fed = held = 0
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for i in range(20):
            if i == 10:
                chunk = "\n" + hang_log            # a report after garbage that may not have ended its line
            else:
                chunk = _garbage(rnd, rnd.choice([1 << 10, 1 << 15, 1 << 20]))
            fed += len(chunk)
            for j in range(0, len(chunk), 1 << 18):
                a.feed(chunk[j:j + (1 << 18)])
            del chunk
            held = max(held, tracemalloc.get_traced_memory()[0] - base)
        a.finish()
    finally:
        tracemalloc.stop()
    assert fed > 4 << 20
    assert held < 1 << 20, held            # what the analyzer keeps: not the input's size
    assert "INFO: task hung in lkdtm_HUNG_TASK" in [f.title for f in a.findings if f.type == "HANG"]


def test_line_without_end_costs_no_memory():
    """A console that never prints a newline: the analyzer keeps a bounded prefix of the line."""
    import tracemalloc
    a = ConsoleAnalyzer()
    block = "x" * (1 << 20)
    tracemalloc.start()
    try:
        for _ in range(64):
            a.feed(block)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1 << 20, held
    a.feed("\n" + read(DATA / "hung-task.log"))
    a.finish()
    assert [f.title for f in a.findings if f.type == "HANG"] == ["INFO: task hung in lkdtm_HUNG_TASK"]
    assert a.line_count == 1 + read(DATA / "hung-task.log").count("\n")


def test_long_lines_cut_the_same_in_any_chunking():
    """A cut line is cut the same way however the text arrives."""
    rnd = random.Random(7)
    text = read(DATA / "lkdtm-warn.log")
    lines = text.splitlines(keepends=True)
    for i in rnd.sample(range(len(lines)), 40):
        lines[i] = lines[i].rstrip("\n") + "y" * rnd.choice([5000, 70000, 300000]) + "\n"
    text = "".join(lines)
    whole = ConsoleAnalyzer()
    whole.feed(text)
    whole.finish()
    chunked = feed_in_chunks(text, iter(lambda: rnd.choice([1, 100, 4095, 4096, 4097, 65536, 1 << 20]), None))
    assert summary(chunked.findings) == summary(whole.findings)
    assert [f.report for f in chunked.findings] == [f.report for f in whole.findings]
    assert chunked.line_count == whole.line_count
    assert all(len(ln) <= 4096 for f in whole.findings for ln in f.report.splitlines())
