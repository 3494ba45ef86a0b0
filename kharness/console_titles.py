"""Report titles, by the convention kernel developers and syzbot dedupe by.

"INFO: task hung in f", "WARNING in f", "possible deadlock in f", ..., where f is the
first stack frame that says something (scheduler, locking, waiting, reporting and entry
frames are skipped).  Pure: a report's type, header info, stack frames and faulting RIP
in, its title out.
"""

from __future__ import annotations

import re

from .console_formats import clean_func

# Frames that say nothing about the bug: scheduler, waiting, locking, reporting, entry.
_SKIP_RE = re.compile(r"""(?x)
    __schedule\w* | schedule(?:_\w+)? | io_schedule\w* | preempt_schedule\w* | _?_?cond_resched\w*
  | context_switch | __switch_to\w* | finish_task_switch\w* | \w*wait\w* | \w*completion\w*
  | \w*_lock\w* | \w*_unlock\w* | \w*_trylock\w* | \w*mutex\w* | \w*rwsem\w* | \w*spin\w* | rt_mutex\w*
  | down\w* | __down\w* | \w*_down_\w+ | up_\w+ | \w*_up_(?:read|write)\w* | lock_acquire\w* | lock_release\w*
  | __lock_\w+ | lockdep\w* | \w*_lockdep_\w* | validate_chain | check_prev_add\w* | check_noncircular
  | \w*dump_stack\w* | show_\w+ | sched_show_task | print_\w+ | __print\w* | _?printk\w* | vprintk\w*
  | __warn\w* | warn_\w+ | report_bug | handle_bug | do_error_trap | do_trap\w* | exc_\w+ | asm_\w+
  | die\w* | __die\w* | oops_\w+ | panic\w* | nmi_\w+ | __nmi\w* | default_do_nmi | watchdog\w* | __watchdog\w*
  | \w*kasan\w* | __asan\w* | kfence\w* | __kfence\w* | \w*kmsan\w* | __msan\w* | \w*ubsan\w* | kcsan\w* | __tsan\w*
  | __might_\w+ | might_\w+ | \w*refcount\w* | check_\w+_object | __check_\w+
  | page_fault_oops | do_user_addr_fault | do_kern_addr_fault | kernelmode_fixup_or_oops | \w*bad_area\w*
  | fixup_exception | handle_page_fault | spurious_kernel_fault | __bad_\w+
  | entry_SYSCALL\w* | do_syscall_\w+ | x64_sys_call | syscall_\w+ | ret_from_fork\w* | kthread\w*
  | worker_thread | smpboot_thread_fn | process_one_work | process_scheduled_works
  | \w*sysvec_\w+ | common_interrupt | __common_interrupt | irq_exit\w* | __irq_exit\w* | handle_softirqs
  | __do_softirq | do_softirq\w* | run_ksoftirqd | __run_timers?\w* | run_timer\w* | call_timer_fn
  | hrtimer_\w+ | __hrtimer_\w+ | tick_\w+ | update_process_times | __sysvec\w* | __flush_smp_call\w*
  | default_idle\w* | do_idle | cpu_startup_entry | start_secondary | common_startup_64 | x86_64_start_\w+
  | start_kernel | rest_init | arch_cpu_idle\w* | cpuidle\w* | acpi_idle\w* | native_safe_halt | pv_native_safe_halt
  | mem(?:cpy|set|move|cmp|chr)\w* | __mem(?:cpy|set|move)\w* | str(?:n?cpy|l?cat|n?len|n?cmp|chr|scpy)\w*
  | _?copy_(?:to|from)_user\w* | __get_user\w* | __put_user\w* | rep_movs\w* | rep_stos\w*
  | __pfx_\w+ | __cfi_\w+ | __x86_return_thunk | __x86_indirect_thunk\w*
""")
_SYSCALL_RE = re.compile(r"(?:__x64_|__ia32_|__arm64_|__se_|__do_|ksys_)(?:sys_)?\w+")
_STALL_SKIP_RE = re.compile(r"\w*rcu\w*|\w*_stall\w*|cpu_relax")
_ALLOC_SKIP_RE = re.compile(r"\w*alloc\w*|kmem_cache\w*|\w*slab\w*|kmemleak\w*|\w*_noprof|kstrn?dup\w*"
                            r"|kmemdup\w*|krealloc\w*|kzalloc\w*|kvzalloc\w*|kcalloc\w*|create_object\w*")
_HANG_ANCHORS = {"rtnl_lock": "rtnl_lock", "synchronize_rcu": "synchronize_rcu",
                 "synchronize_srcu": "synchronize_rcu", "synchronize_net": "synchronize_rcu"}

# A stack frame as console.py reads it: name, reliable (no "?"), in irq/nmi, stack number.
Frame = tuple[str, bool, bool, int]


def report_title(type_: str, info: dict, frames: list[Frame], rip: str | None) -> str:
    """The title of a report of type_ (its KIND key) with header info from match_header();
    frames are (name, reliable, in irq/nmi, stack number) in stack order, rip the faulting function."""
    t = type_
    if t == "HANG":
        return _with("INFO: task hung", _hang_frame(frames))
    if t == "SOFTLOCKUP":
        return _with("BUG: soft lockup", _frame(frames, rip, stall=True))
    if t == "HARDLOCKUP":
        return _with("BUG: hard lockup", _frame(frames, rip, stall=True))
    if t == "RCU_STALL":
        return _with("INFO: rcu detected stall", _frame(frames, rip, stall=True))
    if t == "WQ_LOCKUP":
        return "BUG: workqueue lockup"
    if t == "WARNING":
        return _with("WARNING", clean_func(info["func"]) if info.get("func") else _frame(frames, rip))
    if t == "REFCOUNT":
        return _with("WARNING: refcount bug", _frame(frames, rip))
    if t == "LOCKDEP":
        tmpl = info["title"]
        if "{}" not in tmpl:
            return tmpl
        if tmpl.startswith("suspicious RCU usage"):
            return tmpl.format(info["file"]) if info.get("file") else _with("suspicious RCU usage", _frame(frames))
        what = info.get("at") or _frame(frames)
        return tmpl.format(what) if what else tmpl.replace(" in {}", "")
    if t == "ATOMIC_SLEEP":
        return _with("BUG: " + info["what"], _frame(frames, alloc=True))
    if t == "KASAN":
        func = info.get("func")
        if not func or _SKIP_RE.fullmatch(clean_func(func)):
            func = _frame(frames) or func
        head = f"KASAN: {info['what']} {info['access']}" if info.get("access") else f"KASAN: {info['what']}"
        return _with(head, clean_func(func) if func else None)
    if t in ("KFENCE", "KMSAN"):
        return _with(f"{t}: {info['what']}", clean_func(info["func"]))
    if t == "KCSAN":
        return _with(f"KCSAN: {info['what']}",
                     " / ".join(clean_func(f) for f in (info.get("func"), info.get("func2")) if f))
    if t == "UBSAN":
        return _with(f"UBSAN: {info['what']}", _frame(frames))
    if t == "MEMLEAK":
        return _with("memory leak", _frame(frames, alloc=True))
    if t == "PAGE_FAULT":
        head = "BUG: kernel NULL pointer dereference" if info.get("null") \
            else "BUG: unable to handle kernel paging request"
        return _with(head, _frame(frames, rip))
    if t == "KERNEL_BUG":
        return _with("kernel BUG", _frame(frames, rip) or info.get("loc"))
    if t == "GPF":
        return _with("general protection fault", _frame(frames, rip))
    if t == "OOPS":
        return _with(info["what"], _frame(frames, rip))
    if t == "PANIC":
        return "kernel panic: " + _panic_reason(info["reason"])
    return _with("BUG: " + _bug_what(info["what"]), _frame(frames, rip))


def _candidates(frames: list[Frame], rip: str | None) -> list[tuple[str, bool]]:
    """Frames worth naming, in order: the faulting RIP (if given), then the first stack's task frames.
    With CONFIG_UNWINDER_GUESS every frame is printed as unreliable ("? f+0x.."); a stack
    without a single reliable frame is taken as it is."""
    stacks = sorted({f[3] for f in frames})
    first = next((s for s in stacks if s >= 0), stacks[0] if stacks else -1)
    named = [(n, rel) for n, rel, irq, s in frames if s == first and not irq]
    if not named:
        named = [(n, rel) for n, rel, irq, s in frames]
    if named and not any(rel for _, rel in named):
        named = [(n, True) for n, _ in named]
    return ([(rip, True)] if rip else []) + named


def _frame(frames: list[Frame], rip: str | None = None, stall: bool = False, alloc: bool = False) -> str | None:
    """The first frame that says something (rip, the faulting function, first if given);
    syscall entry frames only when nothing better."""
    cands = _candidates(frames, rip)
    sys_frame = None
    for name, reliable in cands:
        if not reliable:
            continue
        if _SKIP_RE.fullmatch(name) or (stall and _STALL_SKIP_RE.fullmatch(name)) \
                or (alloc and _ALLOC_SKIP_RE.fullmatch(name)):
            continue
        if _SYSCALL_RE.fullmatch(name):
            sys_frame = sys_frame or name
            continue
        return name
    if sys_frame:
        return re.sub(r"^(?:__x64_|__ia32_|__arm64_|__se_|__do_)", "", sys_frame)
    for name, reliable in cands:
        if reliable:
            return name
    return cands[0][0] if cands else None


def _hang_frame(frames: list[Frame]) -> str | None:
    # Hung tasks wait in many places for one culprit: rtnl_lock and synchronize_rcu waiters
    # are grouped under those names, as syzbot does.
    for name, _ in _candidates(frames, None):
        if name in _HANG_ANCHORS:
            return _HANG_ANCHORS[name]
    return _frame(frames)


def _with(head: str, func: str | None) -> str:
    return f"{head} in {func}" if func else head


def _panic_reason(reason: str) -> str:
    if reason.startswith("Attempted to kill init!"):
        return "Attempted to kill init!"
    reason = re.sub(r"\s*\b(?:exitcode|code|address|addr|pid)=\S+", "", reason)
    reason = re.sub(r"\b0x[0-9a-f]+\b", "ADDR", reason)
    return reason.strip().rstrip(".") or "unknown"


def _bug_what(what: str) -> str:
    what = re.split(r"[:,]| on CPU#| in process | for address| at ", what, maxsplit=1)[0]
    return what.strip().rstrip("!").strip()
