"""Kernel console report formats, as data: one table of report types, and the line shapes.

In the style of syzkaller's pkg/report (its `oops` entries), written for this project:
every report type is one row of FORMATS: the header that starts it, its Finding type
(and so its kind), the title template, where the guilty frame is read from (the stack
parts), the frames to skip on top of the shared skip lists (console_titles.py), and how
the report ends.  Adding a report type is adding a row.  Also here: the printk line
prefixes (split_line), the shapes of the lines inside a report (stack frames, <TASK>
markers, "Call Trace:", section labels, end markers), what may follow a report
(TAIL_RE), the lines that look like headers but start no report (SUPPRESS), what shows
a line is the kernel's own (KERNEL_FACILITY_RE, a dev_printk prefix), and the lines that
begin or announce a boot (BOOT_BANNER_RE, BOOT_EXPECTED_RE).
Pure: regexes, the table and functions of one line; the streaming analyzer that
applies them is console.py.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Report type -> Finding.kind.
KIND = {
    "HANG": "hang", "SOFTLOCKUP": "hang", "HARDLOCKUP": "hang", "RCU_STALL": "hang", "WQ_LOCKUP": "hang",
    "NETDEV_WAIT": "hang",
    "WARNING": "warn", "LOCKDEP": "warn", "REFCOUNT": "warn", "MEMLEAK": "warn", "ATOMIC_SLEEP": "warn",
    "UBSAN": "warn", "KCSAN": "warn",
    "BUG": "crash", "KERNEL_BUG": "crash", "OOPS": "crash", "GPF": "crash", "PAGE_FAULT": "crash",
    "PANIC": "crash", "KASAN": "crash", "KFENCE": "crash", "KMSAN": "crash", "REBOOT": "crash",
}


# ---------------------------------------------------------------------------
# Line prefixes: "<4>", "[   12.345678]", "[ T123]" / "[ C1]", syslog "kernel: ".

_PREFIX_RE = re.compile(
    r"(?:<\d{1,3}>)?"
    r"(\[\s*\d+\.\d+\]|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d [\d:]{8} \d{4}\])?"
    r"(?:\[\s*([TC]\d+)\])?"
    r" ?")
_SYSLOG_RE = re.compile(
    r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:?\d\d|Z)?) \S+ kernel: ")
TS_RE = re.compile(r"(?:<\d{1,3}>)?\[\s*\d+\.\d+\]")
GLUED_TS_RE = re.compile(r"\[\s*\d+\.\d{6}\]")
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Serial-line noise that can land before a line's first byte: control characters (not tab),
# DEL, C1 controls, a byte that was not UTF-8 (U+FFFD), zero-width characters.
_STRAY = "".join(map(chr, [*range(0, 9), *range(10, 32), 0x7f, *range(0x80, 0xa0)])) + "\ufffd\u200b\ufeff"
_STRAY_SET = frozenset(_STRAY)


def split_line(raw: str) -> tuple[str | None, bool, str]:
    """raw console line -> (caller context or None, has kernel timestamp, message text).
    Stray bytes before the line or its message (_STRAY) are dropped."""
    if "\r" in raw:
        raw = raw.rstrip("\r")
        if "\r" in raw:
            raw = raw[raw.rindex("\r") + 1:]
    if "\x1b" in raw:
        raw = _ANSI_RE.sub("", raw)
    if raw[:1] in _STRAY_SET:
        raw = raw.lstrip(_STRAY)
    if " kernel: " in raw[:80]:
        m = _SYSLOG_RE.match(raw)
        if m:
            raw = raw[m.end():]
    if raw[:1] not in ("<", "["):
        # a kernel line glued to the end of a user-space one ("syzkaller login: [  417.7] rcu: ...")
        i = raw.find("[", 1)
        if i < 0 or not GLUED_TS_RE.match(raw, i):
            return None, False, raw
        raw = raw[i:]
    m = _PREFIX_RE.match(raw)
    text = raw[m.end():]
    if text[:1] in _STRAY_SET:
        text = text.lstrip(_STRAY)
    return m.group(2), m.group(1) is not None, text


# ---------------------------------------------------------------------------
# How a report ends (see console.py): at the end of its stack, at "---[ end trace",
# at the closing "=====" line, or (a block without a stack) at its first foreign line.
STACK_POLICY, TRACE_POLICY, EQ_POLICY, BLOCK_POLICY = range(4)


class Row(NamedTuple):
    """One report format.

    header  matched (re.match) against a header line's message text, stripped, with a
            "watchdog: "-like prefix removed; its named groups go into the title template
    title   template: {frame} is the guilty frame ("corrupted" when none), other {names} are
            header or body values; "A||B" takes the first whose values are all known
            ({found} is known when a frame was found)
    parts   where the frame is read from, in order: "rip" (RIP/pc lines), "trace" (the
            first call trace), "frames" (frames before any call trace line), "header" /
            "body:KEY" (a function the header or a body line names), "sec:REGEX" (the
            first stack section whose label matches)
    skip    frames to skip in this report type on top of the shared lists
    stall   the frame is chosen by the stall rule (the entry point the CPU loops under)
    alt     category of the alternate titles ("hang" -> "hang in f"), "" for none
    body    (regex, key) pairs: the first match of each in the report's lines -> info[key]
    boot    the kernel's first line: a boot that follows other output, unannounced, is the
            report (console.py, _boot)
    """
    type: str
    header: re.Pattern
    title: str
    end: int = STACK_POLICY
    parts: tuple = ("rip", "trace")
    skip: re.Pattern | None = None
    stall: bool = False
    alt: str = ""
    stackless: bool = False     # no stack follows: the report ends at its first foreign line
    need_stack: bool = True     # a report of this type without a stack is corrupted
    generic: bool = False       # a bare header line without CPU or stack lines is no report
    oneline: bool = False       # the report is its header line: it may be printed inside another report
    confirm: str = ""           # a body key without which the header started no report
    foreign: re.Pattern | None = None   # frames that cannot be in this report's stack: it is corrupted
    precedes_die: bool = False  # its header holds no KEYWORD: found looking back from the die() line after it
    body: tuple = ()
    lead: str = ""              # the header's first word (dispatch key), from the pattern if empty
    proven: bool = False        # a report only on a line that shows it is the kernel's (KERNEL_FACILITY_RE or a
                                # device's dev_printk prefix): the same text bare is what user space writes
    cut: bool = False           # a header cut after its keyword: a report only if the stream (or the boot) ends there
    boot: bool = False


def _c(p: str) -> re.Pattern:
    return re.compile(p)


# Frames to skip per report type (the shared lists are in console_titles.py).
# The locking primitives themselves (not the functions that take a lock: "rtnl_lock" names a bug);
# skipped in every report (console_titles.py).
LOCKING = (r"(?:__|_|do_)?raw_(?:spin|read|write)_\w+|(?:__)?(?:spin|read|write)_(?:lock|unlock|trylock)\w*"
            r"|(?:__)?mutex_(?:lock|unlock|trylock)\w*|__mutex_\w+|(?:__)?down(?:_\w+)?|(?:__)?up_(?:read|write)\w*"
            r"|\w*rwsem\w*|(?:__)?rt_mutex\w*|(?:__)?rt_spin\w*|percpu_(?:down|up)_\w+|__percpu_(?:down|up)\w*"
            r"|(?:__)?lock_sock\w*|release_sock|(?:__)?local_bh_\w+|(?:__)?rcu_read_\w+|(?:__)?srcu_read_\w+"
            r"|(?:__)?ww_mutex\w*|ldsem_\w+|(?:native_|__pv_)?queued_\w+|\w*_seqcount\w*|(?:__)?might_lock\w*"
            r"|lock_(?:acquire|release|downgrade|is_held|acquired|contended)\w*|(?:__)?lockdep_\w+"
            r"|(?:__)?(?:raw_)?spin_lock_init|__init_rwsem|__init_waitqueue_head|do_raw_\w+|_atomic_dec_and_\w+"
            r"|atomic_dec_and_\w+|refcount_dec_and_\w+|osq_lock|osq_unlock|mutex_spin_on_owner\w*"
           r"|rwsem_spin_on_owner\w*|mutex_optimistic_spin|mark_lock\w*|mark_usage|reacquire_held_locks"
           r"|task_blocks_on_rt_mutex|mutex_remove_waiter|debug_mutex_\w+|(?:__)?lock_timer_base|lock_page\w*|__lock_page\w*|(?:__)?folio_lock\w*")
_HANG_SKIP = _c(r"(?!rtnl_lock$|synchronize_)(?:\w*sched\w*|\w*_lock\w*|\w*_slowlock\w*|\w*down\w*|\w*rwsem\w*|\w*completion\w*"
                r"|\w*kthread\w*|\w*wait\w*|context_switch|__switch_to\w*|\w*cancel_\w*work\w*|\w*flush_work\w*"
                r"|rcu_barrier\w*|do_read_cache_\w+|usb_(?:control|bulk|interrupt)_msg\w*|\w*mutex\w*|__lock_page\w*"
                r"|\w*_sleep\w*|" + LOCKING + ")")
# A blocked task is not printing a stack or failing an injected fault: such frames in its stack
# are another task's lines interleaved.
_NOT_BLOCKED = _c(r"dump_stack\w*|should_fail\w*|fail_dump|show_stack")
_ALLOC_SKIP = _c(r"\w*alloc\w*|kmem_cache\w*|\w*slab\w*|kmemleak\w*|\w*_noprof|kstrn?dup\w*|kmemdup\w*"
                 r"|krealloc\w*|kzalloc\w*|kvzalloc\w*|kcalloc\w*|create_object\w*|\w*kmalloc\w*|kvmalloc\w*"
                 r"|(?:__)?get_free_pages|\w*vmalloc\w*|\w*page_frag\w*|\w*fault_inject\w*|should_fail\w*")
_LOCKDEP_SKIP = None     # the locking primitives are skipped in every report
_PREEMPT_SKIP = _c(r"check_preemption_disabled|debug_smp_processor_id|__this_cpu_preempt_check|\w*this_cpu\w*")
# Functions that warn on their caller's behalf.
_WARN_SKIP = _c(r"drop_nlink|mark_buffer_dirty\w*|fast_dput|dput|rollback_registered\w*"
                r"|unregister_netdevice_many\w*|dpm_sysfs_remove|devres_release_all|add_uevent_var|kobject_uevent\w*"
                r"|__seqprop_assert|unregister_netdevice_queue|unregister_netdev|cleanup_srcu_struct|enqueue_to_backlog|kthread_insert_work_sanity_check")

# WARNING: the shapes of __warn()'s line (the second is 6.19+, the last 3.x); path and function
# are patterns, the function is read into "func".
def _warn_re(path: str | None = None, func: str = r"[\w.$]+") -> re.Pattern:
    p = path + r":\d+ " if path else r"(?:\S+:\d+ )?"
    return _c(rf"WARNING: CPU: \d+ PID: -?\d+ at {p}(?P<wfunc0>{func})"
              rf"|WARNING: (?:\[.*?\] )?{p}at (?:(?P<wfunc1>{func})\+0x|0x)[0-9a-f]+\S*(?: \[[\w-]+\])?, CPU#\d+:"
              rf"|WARNING: at {p}(?P<wfunc2>{func})")


def _kbug(path: str) -> re.Pattern:
    return _c(r"kernel BUG at " + path + r"(?::\d+)?!?$")


_W = dict(end=TRACE_POLICY)
_DIE = r"(?::? [0-9a-f]{4,}(?: \[#\d+\])?|:? \[#\d+\]|$|,)"     # ": 0000 [#1]" of die()

FORMATS: tuple[Row, ...] = (
    # -- hangs and stalls ----------------------------------------------------------------------
    Row("HANG", _c(r"INFO: task (?P<task>.*):(?P<pid>\d+) blocked (?:in I/O wait )?for more than \d+ seconds"),
        "INFO: task hung in {frame}", parts=("trace",), skip=_HANG_SKIP, alt="hang", foreign=_NOT_BLOCKED),
    Row("HANG", _c(r"INFO: task (?P<task>.*):(?P<pid>\d+) can't die for more than \d+ seconds"),
        "INFO: task can't die in {frame}", parts=("trace",), skip=_HANG_SKIP, alt="hang"),
    # a task name with a newline in it: the rest of the header is on the next line
    Row("HANG", _c(r"INFO: task (?!.*:\d+ (?:blocked|can't die) )"), "INFO: task hung in {frame}", parts=("trace",),
        skip=_HANG_SKIP, alt="hang", confirm="blocked",
        body=((r".*:\d+ (?P<blocked>blocked) (?:in I/O wait )?for more than \d+ seconds", "blocked"),)),
    Row("RCU_STALL", _c(r"INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?"),
        "INFO: rcu detected stall in {frame}", stall=True, alt="stall"),
    Row("SOFTLOCKUP", _c(r"BUG: soft lockup - CPU#\d+ stuck for"),
        "BUG: soft lockup in {frame}", stall=True, alt="stall"),
    Row("HARDLOCKUP", _c(r"Watchdog detected hard LOCKUP on cpu \d+"),
        "BUG: hard lockup in {frame}", stall=True, alt="stall", lead="Watchdog"),
    Row("WQ_LOCKUP", _c(r"BUG: workqueue lockup"), "BUG: workqueue lockup", end=BLOCK_POLICY, parts=(),
        stackless=True, need_stack=False),
    Row("NETDEV_WAIT", _c(r"unregister_netdevice: waiting for \S+ to become free"),
        "unregister_netdevice: waiting for DEV to become free", parts=(), stackless=True, need_stack=False,
        oneline=True),

    # -- sanitizers ----------------------------------------------------------------------------
    Row("KASAN", _c(r"BUG: KASAN: double-free(?: or invalid-free)? in (?P<func>[\w.$]+)"),
        "KASAN: invalid-free in {frame}", end=EQ_POLICY, parts=("header", "trace"), alt="invalid-free"),
    Row("KASAN", _c(r"BUG: KASAN: (?P<what>[\w-]+) in (?P<func>[\w.$]+)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?"
                    r"(?: \[[\w-]+\])?(?P<addr> at addr [0-9a-f]+)?"),
        "KASAN: {what} {access} in {frame}||KASAN: {what} in {rawfunc} at addr ADDR{addr}||KASAN: {what} in {frame}",
        end=EQ_POLICY, parts=("header", "trace"), alt="bad-access",
        body=((r"(?P<access>Read|Write) (?:of size|at addr)", "access"),)),
    Row("KASAN", _c(r"BUG: KASAN: (?P<what>[\w-]+)"), "KASAN: {what} {access}||KASAN: {what}", end=EQ_POLICY, parts=(),
        alt="bad-access", body=((r"(?P<access>Read|Write) (?:of size|at addr)", "access"),)),
    Row("KFENCE", _c(r"BUG: KFENCE: (?P<what>.*?) in (?P<func>[\w.$]+)"),
        "KFENCE: {what} in {frame}", end=EQ_POLICY, parts=("header", "frames", "trace"), alt="bad-access"),
    Row("KMSAN", _c(r"BUG: KMSAN: (?P<what>[\w-]+) in (?P<func>[\w.$]+)"),
        "KMSAN: {what} in {frame}", end=EQ_POLICY, parts=("header", "trace")),
    Row("KCSAN", _c(r"BUG: KCSAN: (?P<what>[\w-]+) in (?P<func>[\w.$]+)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?"
                    r"(?: \[[\w-]+\])?(?: / (?P<func2>[\w.$]+))?"),
        "KCSAN: {what} in {frame}{pair}", end=EQ_POLICY, parts=("header",), need_stack=False),
    Row("KCSAN", _c(r"BUG: KCSAN: assert: race in (?P<func>[\w.$]+)"),
        "KCSAN: assert: race in {frame}", end=EQ_POLICY, parts=("header",), need_stack=False),
    Row("UBSAN", _c(r"UBSAN: Undefined behaviour in"), "UBSAN: undefined-behaviour in {frame}", end=TRACE_POLICY,
        parts=("trace",)),
    Row("UBSAN", _c(r"UBSAN: (?P<what>[\w-]+)"), "UBSAN: {what} in {frame}", end=TRACE_POLICY, parts=("trace",)),
    Row("MEMLEAK", _c(r"unreferenced object(?: 0x[0-9a-f]+ \(size \d+\):|$)"), "memory leak in {frame}",
        parts=("trace",), skip=_c(_ALLOC_SKIP.pattern + r"|pcpu_\w+|sget_userns")),

    # -- lockdep and friends -------------------------------------------------------------------
    Row("LOCKDEP", _c(r"(?P<header>(?:WARNING|\[ INFO): possible circular locking dependency detected)"),
        "possible deadlock in {frame}{found}||{header}", parts=("body:at", "trace"), skip=_LOCKDEP_SKIP,
        body=((r"is trying to acquire(?: lock)?:", "+at"),)),
    Row("LOCKDEP", _c(r"(?:WARNING|\[ INFO): possible recursive locking detected"),
        "possible deadlock in {frame}", parts=("body:at", "trace"), skip=_LOCKDEP_SKIP,
        body=((r"is trying to acquire(?: lock)?:", "+at"),)),
    Row("LOCKDEP", _c(r"(?:WARNING|\[ INFO): (?P<irq>\w+)-safe -> (?P=irq)-unsafe lock order detected"),
        "possible deadlock in {frame}", parts=(r"sec:which became \S+-irq-safe at:", "trace", "body:at"),
        body=((r"is trying to acquire", "+at"),)),
    Row("LOCKDEP", _c(r"(?:WARNING|\[ INFO): possible irq lock inversion dependency detected"),
        "possible deadlock in {frame}", parts=("body:at", "trace"), skip=_LOCKDEP_SKIP,
        body=((r"just changed the state of lock:", "+at"),)),
    Row("LOCKDEP", _c(r"(?:WARNING|\[ INFO): inconsistent lock state"),
        "inconsistent lock state in {frame}", parts=("body:at", "trace"), skip=_LOCKDEP_SKIP,
        body=((r"takes:$", "+at"),)),
    Row("LOCKDEP", _c(r"(?:\[ )?(?P<head>WARNING|INFO): suspicious RCU usage"), "{head}: suspicious RCU usage in {frame}",
        parts=("trace",), skip=_LOCKDEP_SKIP),
    Row("LOCKDEP", _c(r"(?:\[ )?(?P<head>WARNING|BUG): bad unlock balance detected!"),
        "{head}: bad unlock balance in {frame}", parts=("body:at", "trace"),
        body=((r"is trying to release lock", "+at"),)),
    Row("LOCKDEP", _c(r"(?:\[ )?(?P<head>WARNING|BUG): held lock freed!"), "{head}: held lock freed in {frame}",
        parts=("body:at", "trace"), body=((r"is freeing memory", "+at"),)),
    Row("LOCKDEP", _c(r"(?:\[ )?(?P<head>WARNING|BUG): lock held when returning to user space!"),
        "{head}: lock held when returning to user space in {frame}", parts=("body:at",), need_stack=False,
        body=((r"lock(?:s)? held by ", "+at"),), stackless=True),
    Row("LOCKDEP", _c(r"(?:\[ )?(?P<head>WARNING|BUG): \S+ still has locks held!"),
        "{head}: still has locks held in {frame}", parts=("body:at", "trace"), need_stack=False,
        body=((r"locks? held by ", "+at"),)),
    Row("LOCKDEP", _c(r"WARNING: Nested lock was not taken"), "WARNING: nested lock was not taken in {frame}",
        parts=("body:at", "trace"), body=((r"is trying to lock:", "+at"),)),
    Row("LOCKDEP", _c(r"WARNING: bad contention detected!"), "WARNING: bad contention in {frame}",
        parts=("trace",), skip=_LOCKDEP_SKIP),
    Row("LOCKDEP", _c(r"WARNING: chain_key collision"), "WARNING: chain_key collision in {frame}",
        parts=("trace",), skip=_LOCKDEP_SKIP),
    Row("LOCKDEP", _c(r"\[ BUG: Invalid wait context \]"), "WARNING: locking bug in {frame}",
        parts=("trace",), skip=_LOCKDEP_SKIP, lead="["),
    Row("LOCKDEP", _c(r"INFO: trying to register non-static key"), "INFO: trying to register non-static key in {frame}",
        parts=("trace",), skip=_LOCKDEP_SKIP),
    Row("LOCKDEP", _c(r"BUG: MAX_(?P<what>\w+) too low!"), "BUG: MAX_{what} too low!", parts=(), stackless=True,
        need_stack=False),
    Row("LOCKDEP", _c(r"BUG: (?P<what>(?:spin|rw)lock (?:lockup suspected|already unlocked|bad magic|recursion"
                      r"|wrong owner|wrong CPU|cpu recursion))"),
        "BUG: {what} in {frame}", parts=("trace",), skip=_c(r"\w*spin\w*|\w*_lock\w*|\w*_unlock\w*|\w*rwlock\w*")),
    Row("LOCKDEP", _c(r"BUG: using (?P<what>[\w.]+\(\)) in preemptible"), "BUG: using {what} in preemptible code in {frame}",
        parts=("trace",), skip=_PREEMPT_SKIP),
    Row("LOCKDEP", _c(r"BUG: workqueue leaked lock or atomic"), "BUG: workqueue leaked lock or atomic in {frame}",
        parts=("body:fn", "trace"), body=((r"\s*last function: (?P<fn>[\w.$]+)", "fn"),)),
    Row("ATOMIC_SLEEP", _c(r"BUG: (?P<what>sleeping function called from invalid context|scheduling while atomic"
                           r"|scheduling in a non-blocking section)"),
        "BUG: {what} in {frame}", parts=("trace",),
        skip=_c(r"_*might_\w+|(?:__)?schedule\w*|__cond_resched\w*|_cond_resched\w*|preempt_schedule\w*"
                r"|do_task_dead|schedule_debug|__schedule_bug|(?:__)?kmem_cache_\w+|(?:__)?k[mz]alloc\w*|kvmalloc\w*"
                r"|krealloc\w*|(?:__)?slab_\w+|__slab_\w+")),

    # -- warnings, by the file that warns --------------------------------------------------------
    Row("WARNING", _warn_re(r"lib/debugobjects\.c"), "WARNING: ODEBUG bug in {frame}",
        skip=_c(r"\w*debug_object\w*|debug_print_object|(?:__)?call_rcu\w*|__vunmap|vfree\w*|netdev_release"
                r"|(?:__)?free_pages\w*|__free_pages\w*|init_timer_key|__init_timer\w*|hrtimer_init\w*"), **_W),
    Row("REFCOUNT", _warn_re(r"lib/refcount\.c"), "WARNING: refcount bug in {frame}",
        skip=_c(r"\w*refcount\w*|kobject_(?:get|put)\w*|kref_\w+"), **_W),
    Row("WARNING", _warn_re(r"kernel/locking/lockdep\.c"), "WARNING: locking bug in {frame}", skip=_LOCKDEP_SKIP,
        **_W),
    Row("WARNING", _warn_re(r"mm/(?:slab_common|util)\.c", r"k(?:v)?malloc\w*"),
        "WARNING: kmalloc bug in {frame}", skip=_ALLOC_SKIP, **_W),
    Row("WARNING", _warn_re(r"fs/proc/generic\.c"), "WARNING: proc registration bug in {frame}",
        skip=_c(r"proc_\w+"), **_W),
    Row("WARNING", _warn_re(r"lib/kobject\.c"), "WARNING: kobject bug in {frame}", skip=_c(r"kobject_\w+"), **_W),
    Row("WARNING", _warn_re(r"mm/vmalloc\.c"), "WARNING: zero-size vmalloc in {frame}", skip=_ALLOC_SKIP, **_W),
    Row("WARNING", _warn_re(r"mm/usercopy\.c"), "WARNING: bad usercopy in {frame}",
        skip=_c(r"\w*usercopy\w*|check_\w+|__check_\w+|\w*copy_\w+"), **_W),
    Row("WARNING", _warn_re(r"drivers/usb/core/urb\.c"), "WARNING in {frame}/usb_submit_urb",
        skip=_c(r"usb_\w+"), **_W),
    Row("WARNING", _warn_re(), "WARNING in {frame}", skip=_WARN_SKIP, **_W),
    Row("WARNING", _c(r"WARNING: kernel stack (?P<what>regs|frame pointer) at .*? in \S+ has bad (?P<v>'bp' )?value"),
        "WARNING: kernel stack {what} has bad {v}value", parts=(), stackless=True, need_stack=False),
    # any other "WARNING: ..." line the kernel printed (pr_warn, dev_warn) is its own title; only
    # on a line that shows the kernel printed it (see Row.proven, tests/data/console/noise.log)
    Row("WARNING", _c(r"WARNING: (?P<msg>\S.*)"), "WARNING: {msg}", parts=(), stackless=True, need_stack=False,
        oneline=True, proven=True),

    # -- oopses ----------------------------------------------------------------------------------
    Row("PAGE_FAULT", _c(r"BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference)"),
        "BUG: unable to handle kernel NULL pointer dereference in {frame}", end=TRACE_POLICY, alt="bad-access"),
    Row("PAGE_FAULT", _c(r"BUG: unable to handle (?:kernel paging request|page fault)"),
        "BUG: unable to handle kernel paging request in {frame}", end=TRACE_POLICY, alt="bad-access"),
    Row("PAGE_FAULT", _c(r"BUG: unable to handle kernel (?P<what>access to user memory)"),
        "BUG: unable to handle kernel {what} in {frame}", end=TRACE_POLICY, alt="bad-access"),
    Row("PAGE_FAULT", _c(r"BUG: unable to handle kernel(?:$| (?=\[\s*\d+\.\d+\]))"), "BUG: unable to handle kernel", end=TRACE_POLICY,
        parts=()),
    Row("PAGE_FAULT", _c(r"Unable to handle kernel NULL pointer dereference"),
        "BUG: unable to handle kernel NULL pointer dereference in {frame}", end=TRACE_POLICY, alt="bad-access",
        precedes_die=True),
    Row("PAGE_FAULT", _c(r"Unable to handle kernel (?P<what>access to user memory)"),
        "BUG: unable to handle kernel {what} in {frame}", end=TRACE_POLICY, alt="bad-access", precedes_die=True),
    Row("PAGE_FAULT", _c(r"(?:BUG: )?Unable to handle kernel (?:paging request|execute from non-executable"
                         r"|write to read-only memory|read from unreadable memory|data access|instruction fetch)"),
        "BUG: unable to handle kernel paging request in {frame}", end=TRACE_POLICY, alt="bad-access",
        lead="BUG Unable", precedes_die=True),
    Row("BUG", _c(r"BUG: (?:TASK )?stack guard page was hit"), "BUG: stack guard page was hit in {frame}",
        end=TRACE_POLICY, alt="stack-overflow", stall=True),
    Row("BUG", _c(r"BUG: Bad page map"), "BUG: Bad page map in {frame}{found}||BUG: Bad page map"),
    Row("BUG", _c(r"BUG: Bad page (?P<what>state)"), "BUG: Bad page {what} in {frame}",
        skip=_c(r"bad_page|folio_batch\w*|folio_add_lru\w*|(?:__)?netif_receive_skb\w*|folios?_put\w*|skb_release_data|skb_free_head|page_pool_\w+|__folio_put\w*|\w*free_pages?\w*|\w*free_one_page\w*|free_unref\w*|\w*page_frag\w*|\w*folio_put\w*"
                r"|put_page\w*|release_pages|\w*pcp\w*|(?:__)?page_cache_release")),
    Row("BUG", _c(r"BUG: Bad rss-counter state"), "BUG: Bad rss-counter state", parts=(), stackless=True,
        need_stack=False),
    Row("BUG", _c(r"BUG: Dentry .* still in use \(-?\d+\) \[(?P<what>unmount) of"), "BUG: Dentry still in use in {what}",
        parts=(), need_stack=False),
    Row("BUG", _c(r"BUG: Dentry .* still in use"), "BUG: Dentry still in use in {frame}",
        skip=_c(r"umount_check|\w*shrink_dcache\w*|d_walk|\w*dentry\w*")),
    Row("KERNEL_BUG", _kbug(r"lib/list_debug\.c"), "BUG: corrupted list in {frame}", end=TRACE_POLICY,
        skip=_c(r"\w*list_\w+|__list\w*")),
    Row("KERNEL_BUG", _kbug(r"mm/usercopy\.c"), "BUG: bad usercopy in {frame}", end=TRACE_POLICY,
        skip=_c(r"\w*usercopy\w*|check_\w+|__check_\w+|\w*copy_\w+")),
    Row("KERNEL_BUG", _c(r"kernel BUG at (?P<loc>\S+?)!?$"), "kernel BUG in {frame}", end=TRACE_POLICY,
        skip=_c(r"\w*_panic|(?:__)?fortify_\w+|assertfail|rust_helper_BUG|skb_(?:put|push|pull)|__phys_addr"
                r"|__check_heap_object|folio_unlock|unlock_page")),
    Row("GPF", _c(r"(?:segment-related )?general protection fault\b"), "general protection fault in {frame}",
        end=TRACE_POLICY, alt="bad-access", lead="general segment-related"),
    Row("OOPS", _c(r"(?:divide error|divide_error)" + _DIE), "divide error in {frame}", end=TRACE_POLICY,
        lead="divide divide_error"),
    Row("OOPS", _c(r"stack segment" + _DIE), "stack segment fault in {frame}", end=TRACE_POLICY),
    Row("OOPS", _c(r"int3" + _DIE), "int3 in {frame}", end=TRACE_POLICY),
    Row("OOPS", _c(r"invalid opcode" + _DIE), "invalid opcode in {frame}", end=TRACE_POLICY),
    Row("OOPS", _c(r"PANIC: double fault"), "PANIC: double fault in {frame}", end=TRACE_POLICY, alt="stack-overflow"),
    Row("OOPS", _c(r"kernel stack overflow"), "kernel stack overflow in {frame}", end=TRACE_POLICY,
        alt="stack-overflow", stall=True),
    Row("OOPS", _c(r"Internal error: "), "Internal error in {frame}", end=TRACE_POLICY, lead="Internal"),
    Row("OOPS", _c(r"Unhandled fault: "), "Unhandled fault in {frame}", end=TRACE_POLICY, lead="Unhandled",
        precedes_die=True),
    Row("OOPS", _c(r"Alignment trap: "), "Alignment trap in {frame}", end=TRACE_POLICY, lead="Alignment",
        precedes_die=True),
    Row("OOPS", _c(r"Oops(?:: |, | - | (?=\[#)).*?\[#\d+\]|Oops$"), "Oops in {frame}", end=TRACE_POLICY,
        lead="Oops"),

    # -- a new boot: the guest was reset (the report starts at the boot's first banner, BOOT_BANNER_RE)
    Row("REBOOT", _c(r"Linux version \d"), "unexpected kernel reboot", parts=(), stackless=True,
        need_stack=False, boot=True),

    # -- panics and the rest -------------------------------------------------------------------
    # a header the console lost after its first word (the guest died or was reset mid-line)
    Row("BUG", _c(r"(?P<head>INFO|BUG|WARNING):$"), "{head}: corrupted", parts=(), cut=True,
        lead="INFO BUG WARNING"),
    Row("PANIC", _c(r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: "
                    r"(?:(?![0-9a-f]+\b)(?P<func>[A-Za-z_][\w.$]*))?"),
        "kernel panic: stack is corrupted in {frame}", parts=("header", "trace"), lead="Kernel"),
    Row("PANIC", _c(r"Kernel panic - not syncing: corrupted stack end detected inside scheduler"),
        "kernel panic: corrupted stack end in {frame}", parts=("trace",), alt="stack-overflow", lead="Kernel",
        stall=True),
    Row("PANIC", _c(r"Kernel panic - not syncing: kernel stack overflow"), "kernel stack overflow in {frame}",
        alt="stack-overflow", stall=True, lead="Kernel"),
    Row("PANIC", _c(r"Kernel panic - not syncing: ?(?P<reason>.*)"), "kernel panic: {reason}", parts=(),
        need_stack=False, lead="Kernel"),
    Row("BUG", _c(r"VFS: Busy inodes after unmount"), "VFS: Busy inodes after unmount (use-after-free)", parts=(),
        need_stack=False, lead="VFS:"),
    Row("BUG", _c(r"VFS: Close: file count is 0"), "VFS: Close: file count is zero (use-after-free)", parts=(),
        need_stack=False, lead="VFS:"),
    Row("BUG", _c(r"INFO: (?P<what>Freed|Allocated) in (?P<func>[\w.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+ age=\d+ cpu=\d+ "
                  r"pid=\d+"), "INFO: {what} in {frame} age=NUM cpu=NUM pid=NUM", parts=("header",),
        need_stack=False, stackless=True),
    Row("BUG", _c(r"BUG [\w-]+ \((?:Not tainted|Tainted: [^)]*)\): Object already free"), "BUG: Object already free",
        parts=(), need_stack=False, stackless=True),
    Row("BUG", _c(r"BUG (?P<cache>[\w-]+) \((?:Not tainted|Tainted: [^)]*)\): (?P<what>.*)"), "BUG: {what} in {frame}",
        generic=True),
    Row("BUG", _c(r"BUG: (?P<what>.*)"), "BUG: {what} in {frame}", generic=True),
)

# Lines that look like headers but start no report.
SUPPRESS_RE = re.compile(r"""(?x)
    INFO:\ lockdep\ is\ turned\ off | INFO:\ NMI\ handler\ .*took\ too\ long | INFO:\ Stall\ ended\ before
  | INFO:\ task\ \S+\ (?:is\ )?blocked\ on | INFO:\ rcu_\w+\ detected\ expedited\ stalls?\ on\ CPUs/tasks:\ \{\ \}
  | WARNING:\ Flushing\ system-wide | BUG:\ KASAN:\ bad\ access
  | WARNING:\ [Tt]he\ mand\ mount\ option | WARNING:\ fbcon:
""")

# Prefixes printed before some headers ("watchdog: BUG: soft lockup", "rcu: INFO: rcu_sched ...").
_HEADER_PREFIX_RE = re.compile(r"(?:(?:NMI )?watchdog: |rcu: |kmemleak: |\S+ \S+: (?=WARNING: )|\S+ login: "
                               r"|kasan: GPF could be caused by .*?access(?=general protection))")


def _leads(row: Row) -> list[str]:
    """The first words a header of this row can start with (match_header dispatches on them)."""
    if row.lead:
        return row.lead.split()
    pat = re.sub(r"^\(\?P<\w+>", "", row.header.pattern)
    if pat.startswith(("(?:WARNING|\\[ INFO)", "(?:\\[ )?(?P<head>")):
        return ["WARNING:", "BUG:", "INFO:", "["]
    m = re.match(r"(?:\\\[|[\w:-])+", pat)
    assert m, pat
    lead = m.group(0).replace("\\", "")
    return [lead]


FORMATS = tuple(r._replace(body=tuple((_c(p), k) for p, k in r.body)) for r in FORMATS)
_BY_LEAD: dict[str, list[Row]] = {}
for _row in FORMATS:
    for _k in _leads(_row):
        _BY_LEAD.setdefault(_k.rstrip(":,"), []).append(_row)

# Every header holds one of these ("[#" is in every die() line: "general protection fault: 0000 [#1]"),
# but those of the precedes_die rows, found from the die() line that follows them.  The strings
# are the ones str.find() skips over fastest (console.py scans the text between reports with them):
# "RNING" for "WARNING" (half the time on console text), and "Linux version" starts a boot.
KEYWORDS = ("BUG", "RNING", "INFO:", "Oops", "[#", "Kernel panic - not syncing", "UBSAN", "unreferenced object",
            "Watchdog detected", "unregister_netdevice: waiting for", "VFS: Busy inodes after unmount",
            "VFS: Close: file count is 0", "PANIC: double fault", "Linux version")
KEYWORD_RE = re.compile("|".join(map(re.escape, KEYWORDS)))

# A panic caused by a report just printed (panic_on_warn, panic_on_oops, hung_task_panic, ...).
CONSEQUENCE_PANIC_RE = re.compile(
    r"(?:Fatal exception|(?:\S+: )?panic_on_warn set|hung_task: blocked tasks|softlockup: hung tasks"
    r"|Hard LOCKUP|hardlockup|RCU Stall|.*system warned too often|Oops|scheduling while atomic"
    r"|stack-protector|corrupted stack end|Machine halted)")

# Boots (the REBOOT row: the kernel's "Linux version" line).  Before it, a boot may print the
# firmware's and the decompressor's banners (not printk lines: no timestamp); the boot starts
# at the first of them in view.  A new boot is expected after these lines (the harness's own
# line before each boot, journalctl's boot separators, the kernel saying it goes down, a panic
# announcing its reboot) and at the start of a stream.
BOOT_BANNER_RE = re.compile(r"SeaBIOS \(version |Booting from (?:ROM|Hard Disk|Floppy|DVD/CD)|early console in extract_kernel"
                            r"|Decompressing Linux\.\.\. |Booting the kernel\b|EFI stub: Booting Linux Kernel")
BOOT_EXPECTED_RE = re.compile(
    r"==== kharness: boot |-- (?:Boot [0-9a-f]+|Reboot) --|reboot: (?:Restarting system|Power down|System halted)"
    r"|kexec_core: Starting new kernel|Starting crashdump kernel|Rebooting in -?\d+ seconds|---\[ end Kernel panic")
# Lines that are no console output of a boot: the harness's, journalctl's "-- ... --".
NOT_OUTPUT_RE = re.compile(r"==== kharness: |-- .* --$")

# Proof that a line is the kernel's own (Row.proven): a syslog prefix of the kernel facility
# (console_msg_format=syslog; /dev/kmsg gives user space's lines facility 1 and up, <8>-), or a
# device's dev_printk prefix ("usb 5-1: ", "virtio_net virtio0: "; not "XFS (vda): ").
KERNEL_FACILITY_RE = re.compile(r"<[0-7]>")
_DEV_PREFIX_RE = re.compile(r"[\w.-]+ [\w.:-]+: ")

# ---------------------------------------------------------------------------
# Report body.

FRAME_RE = re.compile(
    r"\s*(?:\[<?(?:0x)?[0-9a-f]+>?\]\s*){0,2}(\?\s+)?(?:\d+:)?([A-Za-z_.$][\w.$]*)"
    r"(\+0x[0-9a-f]+/0x[0-9a-f]+)?(?:\s+\[[\w-]+\])?(?:\s+(\S+\.(?:[chsS]|rs):\d+)(?::\d+)?)?"
    r"(?:\s+\[inline\])?(?:\s+\([A-Z]\))?\s*$")
# 32-bit ARM: "[<80c1e5e8>] (__schedule) from [<80c1eb20>] (schedule+0x60/0xdc)"
ARM_FRAME_RE = re.compile(r"\s*\[<[0-9a-f]+>\] \(([A-Za-z_.$][\w.$]*)\) from \[<[0-9a-f]+>\] \(([A-Za-z_.$][\w.$]*)")
# Lines inside a stack that are not frames (ARM register and exception-stack dumps).
STACK_NOISE_RE = re.compile(r"\s*(?:r\d+:[0-9a-f]{8}|Exception stack\(|[0-9a-f]{4}: [0-9a-f]{8} |\.\.\.$"
                            r"|R[A-Z0-9]{2}: |EFLAGS|Code: |FS: |CS: |CR2: |DR\d: |ORIG_RAX)")
RIP_RE = re.compile(r"(?:RIP: [0-9a-f]{4}:|RIP: |pc : |NIP \[[0-9a-f]+\] |EIP: |PC is at |epc : |IP: )"
                    r"(?:\[<[0-9a-f]+>\]\s+)*([\w.$]+)(?:\+0x|\s+(\S+\.(?:[chsS]|rs):\d+)|$|\s+\[inline\])")
AT_RE = re.compile(r"\bat: (?:\[<[0-9a-f]+>\]\s+)?([\w.$]+)\+0x")
MARKER_RE = re.compile(r"\s*(</?(?:TASK|IRQ|NMI|SOFTIRQ)>|<EOI>)\s*$")
CALLTRACE_RE = re.compile(r"\s*(?:Call [Tt]race:|Backtrace:|(?:kmemleak: )?\s*backtrace(?: \(crc [0-9a-f]+\))?:"
                          r"|stack backtrace:$)")
# A labelled stack inside a report ("... which became HARDIRQ-irq-safe at:", "Allocated by task 1:").
SECTION_RE = re.compile(r"\s*(?:\.\.\. (?:which became|acquired at|key at)|-> #\d+ |Allocated by task|Freed by task"
                        r"|Last potentially related|Second to last potentially|Uninit was (?:created|stored)"
                        r"|Local variable .* created at|Memory state around|\S.* at:$)")
END_TRACE = "---[ end trace"
EQ_LINE_RE = re.compile(r"\s*={20,}\s*$")
_MANGLED_RE = re.compile(r"_Z(\d+)")
_SUFFIX_RE = re.compile(r"(?:\.(?:isra|constprop|part|cold|llvm|lto_priv|clone)(?:\.\d+)*)+$")

# Lines that may follow a task's stack (the end of a stack without <TASK> markers).
STACK_FOLLOW_RE = re.compile(r"""(?x)
    \s*$ | \s*(?:RIP:|INFO:|Showing\ |\d+\ locks?\ held|---\[\ end|Kernel\ panic|NMI\ backtrace|Sending\ NMI|Mem-Info
  | Code:|Modules\ linked|CPU:|task:|irq\ event\ stamp|rcu:|Call\ [Tt]race:|\S+\s+[RDSTIX]\s|={20,}|-{20,}|</?TASK>)
""")

# Lines that may follow a completed report and still belong to it.
TAIL_RE = re.compile(r"""(?x)
    \s | task: | Call\ [Tt]race: | CPU:\ \d | Hardware\ name: | Workqueue: | RIP: | Code: | RSP: | R[A-Z0-9]{2}:
  | FS: | CS: | CR2: | DR[0-7]: | PKRU: | Sending\ NMI | NMI\ backtrace | Modules\ linked\ in: | irq\ event\ stamp:
  | (?:hard|soft)irqs\ last | INFO:\ task\ \S+\ (?:is\ )?blocked\ on
  | Showing\ (?:all\ locks|busy\ workqueues|backtraces)
  | \d+\ locks?\ held\ by | ={20,} | -{20,} | rcu: | workqueue\ \S+:\ flags | pool\ \d+: | ---\[\ end\ | Kernel\ Offset:
  | Preemption\ disabled\ at: | in_atomic\(\): | preempt_count: | RCU\ nest\ depth: | note: | Disabling\ lock\ debugging
  | \[<[0-9a-f]+>\] | \d+\.\d+\S*\ \#\d+ | \S+\ is\ leaving\ the\ kernel | $
""")


def clean_func(name: str) -> str:
    """A function name without the compiler's clone suffixes (.isra.0, .constprop.1, .cold, ...)."""
    if name.startswith("_Z"):          # C++ mangled ("_Z8fakeNameiii")
        m = _MANGLED_RE.match(name)
        if m and len(name) >= m.end() + int(m.group(1)):
            return name[m.end():m.end() + int(m.group(1))]
    return _SUFFIX_RE.sub("", name) if "." in name else name


def match_header(s: str) -> tuple[Row, dict] | None:
    """(row, header values) if s (a stripped message) starts a report, else None."""
    m = _HEADER_PREFIX_RE.match(s)
    if m:
        s = s[m.end():]
    if s.startswith("Oops: "):         # 6.x: "Oops: general protection fault, ...", "Oops: int3: 0000 [#1]"
        found = _match(s[6:])
        if found is not None and found[0].type in ("GPF", "OOPS"):
            return found
    found = _match(s)
    if found is not None and found[0].proven and m and _DEV_PREFIX_RE.fullmatch(m.group(0)):
        found[1]["dev"] = m.group(0)[:-2]
    return found


def _match(s: str) -> tuple[Row, dict] | None:
    rows = _BY_LEAD.get(s.split(" ", 1)[0].rstrip(":,"))
    if rows is None:
        return None
    for row in rows:
        m = row.header.match(s)
        if m:
            if SUPPRESS_RE.match(s):
                return None
            info = {k: v for k, v in m.groupdict().items() if v is not None}
            for k in ("wfunc0", "wfunc1", "wfunc2"):
                if k in info:
                    info["func"] = info.pop(k)
            return row, info
    return None
