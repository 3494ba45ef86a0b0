"""Report titles, by the convention kernel developers and syzbot dedupe by.

"INFO: task hung in f", "WARNING in f", "possible deadlock in f", ...: the row of
console_formats.FORMATS gives the template and where f, the guilty frame, is read from;
f is the first frame there that is not generic infrastructure: the shared skip lists
below (reporting, sanitizer, entry, interrupt, string and list-debug helpers, and
whole directories such as lib/ and mm/kasan/ when the stack has file:line), then the
row's own list (scheduler, locking and waiting frames for a hung task, ...).  Stalls
and lockups take the entry point the looping CPU runs under (the syscall, work item,
timer or packet handler), since the frames on top change from report to report.
A report without such a frame is titled "... in corrupted" and flagged corrupted, as
syzbot does.  Pure: a report's row, header values and stack frames in, title out.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from .console_formats import LOCKING, Row, clean_func


class Frame(NamedTuple):
    """A stack frame as console.py reads it."""
    name: str             # function, clone suffixes removed
    reliable: bool        # not printed as "? f+0x.."
    irq: bool             # inside <IRQ>/<NMI>/<SOFTIRQ>
    stack: int            # number of the stack section it is in (-1: before any)
    path: str | None      # file:line when the kernel printed it
    rip: bool = False     # from a RIP/pc line


class Title(NamedTuple):
    title: str
    corrupted: bool = False
    alt: tuple[str, ...] = ()


# Frames that never name a bug: reporting, sanitizers, entry code, interrupts, helpers.
_SKIP = re.compile(r"""(?x)
    \w*dump_stack\w* | show_stack\w* | (?:__)?show_regs | show_trace\w* | sched_show_task | print_\w+ | __print\w*
  | _?printk\w* | vprintk\w* | \w*_printk | dump_backtrace\w* | arch_stack_walk
  | stack_trace_\w+ | \w*save_stack\w* | unwind_backtrace | walk_stackframe | __warn\w* | warn_slowpath\w* | report_bug | handle_bug | fixup_bug
  | do_error_trap | do_trap\w* | do_invalid_op | do_int3\w* | do_general_protection | exc_\w+ | asm_exc_\w+
  | die\w* | __die\w* | oops_\w+ | panic\w* | __panic\w* | bug_handler | \w*kasan\w* | check_memory_region\w*
  | __asan\w* | \w*kmsan\w* | __msan\w* | \w*kfence\w* | \w*kcsan\w* | __tsan\w* | \w*ubsan\w* | __sanitizer\w*
  | _*might_\w+ | should_fail\w* | fail_dump | __should_fail\w*
  | page_fault_oops | do_user_addr_fault | do_kern_addr_fault | kernelmode_fixup_or_oops
  | no_context | __do_page_fault | do_page_fault | page_fault | async_page_fault | fixup_exception
  | handle_page_fault | spurious_kernel_fault | __do_kernel_fault | do_translation_fault | do_mem_abort
  | do_DataAbort | do_PrefetchAbort | el1_\w+ | el0_(?!svc_naked)\w+ | do_sea | do_bad_area
  | entry_SYSCALL\w* | entry_SYSENTER\w* | entry_INT80\w* | do_syscall_\w+ | do_fast_syscall_32 | do_int80\w*
  | x64_sys_call | ia32_sys_call | syscall_\w+ | ret_from_fork\w* | ret_fast_syscall | ret_from_syscall
  | invoke_syscall | do_el0_svc\w* | el0_svc\w* | __sys_trace\w* | tracesys\w* | int_ret_from_sys_call
  | \w*sysvec_\w+ | \w*apic_timer_interrupt | common_interrupt | __common_interrupt | irq_exit\w* | __irq_exit\w*
  | hrtimer_interrupt | __hrtimer_run_queues | tick_\w+ | update_process_times | __sysvec\w* | __irq_svc
  | \w*apic_timer_interrupt\w* | \w*_interrupt_entry\w*
  | gic_handle_irq | __handle_domain_irq | handle_domain_irq | generic_handle_irq | arch_timer_handler\w*
  | handle_percpu_devid_irq | irq_handler_entry | \w*_thunk | trace_hardirqs\w* | lockdep_hardirqs\w*
  | mem(?:cpy|set|move|cmp|chr|scan)\w* | __mem(?:cpy|set|move)\w* | str(?:n?cpy|l?cat|n?len|n?cmp|chr|scpy|str)\w*
  | \w*copy_(?:to|from)_user\w* | __copy_(?:to|from)_user\w* | __get_user\w* | __put_user\w* | rep_movs\w*
  | rep_stos\w* | copy_user_\w+ | __arch_copy_\w+ | raw_copy_\w+ | _?copy_(?:to|from)_iter\w*
  | __list_\w+ | list_(?:add|del)\w* | \w*refcount_\w+ | arch_atomic\w* | atomic_\w+ | atomic64_\w+
  | __read_once\w* | instrument_\w+ | test_and_\w+_bit | (?:__)?set_bit | (?:__)?clear_bit | test_bit
  | invalid_op | error_entry | error_exit | retint_kernel | ret_from_intr | \w*_trap_handler
  | __pfx_\w+ | __cfi_\w+ | __x86_return_thunk | __x86_indirect_thunk\w* | __sched_text_start | __startup_64
  | lock_acquire\w* | lock_release\w* | __lock_acquire\w* | lock_is_held\w* | __lock_is_held\w* | lockdep_\w+
  | debug_lockdep\w* | rcu_lockdep\w* | find_held_lock | mark_held_locks | check_\w+_usage | check_noncircular
  | validate_chain | check_prev_add\w* | __bfs\w* | hlock_class | register_lock_class | look_up_lock_class
  | __check_object_size | check_object_size | usercopy_\w+ | (?:__)?fortify_\w+ | dump_page | __dump_page | bad_page
  | (?:__)?kobject_\w+ | debug_object\w* | debug_print_object | debug_check_no_\w+ | \w+_is_static_object
  | string | hex_string | pointer | vsnprintf | v?sn?printf | v?scnprintf | kvasprintf\w* | kasprintf\w*
  | hex_dump_to_buffer | print_hex_dump\w* | crc\w* | \w+_crc\d*\w* | aes_\w+ | read_word_at_a_time
  | __wake_up\w* | wake_up_(?:bit|var|process|state|all|interruptible|q|locked|sync)\w* | wake_up | finish_wait | prepare_to_wait\w* | autoremove_wake_function | default_wake_function
  | try_to_wake_up | wait_for_completion\w* | (?:__)?wait_for_common\w* | do_wait_for_common | kthread_stop\w*
  | device_(?:del|unregister|release)\w* | (?:__)?sysfs_remove_\w+
  | usb_kill_urb | usb_kill_anchored_urbs | usb_poison_urb | usb_hcd_\w+
  | kfree_skb\w* | __kfree_skb\w* | kv?free | kfree_sensitive | kzfree | kmem_cache_free\w* | __kmem_cache_free\w*
  | slab_free\w* | __slab_free\w* | (?:__)?kmalloc\w* | (?:__)?kmem_cache_alloc\w* | k[zc]alloc\w* | kvmalloc\w*
  | kvzalloc\w* | krealloc\w* | ___?slab_alloc\w* | slab_alloc\w* | \w+_noprof
  | (?:__)?try_to_del_timer\w* | del_timer\w* | (?:__)?timer_delete\w* | insert_work | __queue_work
  | queue_work_on | __queue_delayed_work | queue_delayed_work_on | (?:__)?flush_work | (?:__)?cancel_work\w*
  | (?:__)?rb_\w+ | xas_\w+ | xa_\w+ | (?:__)?idr_\w+ | ida_\w+ | rhashtable_\w+ | __rhashtable_\w+ | iput
  | check_panic_on_warn | check_bytes_and_report | check_object | slab_err | object_err | check_slab
  | (?:alloc|free)_debug_processing | on_freelist | validate_slab\w* | get_taint | warn_bogus_irq_restore | (?:__)?unlock_page\w* | crypto_skcipher_\w+
  | logic_(?:in|out)[bwlq]? | program_check_common | __stack_chk_fail | ref_tracker_\w+ | usb_submit_urb | perf_trace_\w+ | strnstr | klist_\w+
  | try_to_grab_pending | (?:__)?alloc_pages\w* | __alloc_frozen_pages\w* | _*kmalloc_large\w* | free_large_kmalloc
  | (?:__)?vmalloc\w* | __vmalloc_node\w* | \w*copy\w*_to_iter\w* | aesti_\w+ | sk_stop_timer\w* | __mod_timer | mod_timer
  | device_add | get_device_parent | device_register | device_initialize | device_create\w* | device_destroy
  | device_remove_file\w* | put_device | get_device | va_format | dev_vprintk_emit | __dev_printk | _dev_(?:info|err|warn|notice|printk)\w*
  | dev_printk\w* | sk_skb_reason_drop | kfree_skb_reason | _?compound_head | find_lock_entries | find_get_entries
  | truncate_inode_pages\w* | crypto_ecb_\w+ | cipher_crypt_one | crypto_cipher_\w+ | (?:v)?memdup_user\w* | strndup_user
  | alloc_page\w* | __raw_(?:read|write)[bwlq] | __hwasan\w* | drain_workqueue | destroy_workqueue | handle_overflow
  | warn_alloc\w* | program_check_exception | console_flush_all | console_unlock | console_emit\w*
  | do_tag_check_fault | el1h_\w+ | el1t_\w+ | do_mem_abort | do_bad_area | __do_kernel_fault
""")
_LOCKING = re.compile(LOCKING)
# Whole directories of infrastructure (when the stack has file:line).
_SKIP_PATH = re.compile(r"(?:\S*/)?(?:lib/|mm/kasan/|mm/kmsan/|mm/kfence/|kernel/kcsan/|kernel/locking/"
                        r"|include/asm-generic/|include/linux/atomic/|arch/\w+/include/asm/|kernel/printk/"
                        r"|arch/\w+/lib/|include/linux/(?:instrumented|kasan|kcsan|kmsan)\S*\.h)")
_SYSCALL = re.compile(r"(?:__(?:x64|ia32|arm64|riscv|s390x?|arm)_)?(?:__se_|__do_|__do_compat_|compat_|__se_compat_)?"
                      r"(?:sys|SyS|ksys)_(\w+)")
# Syscalls too general to name a stall: the frame they call names it ("snd_pcm_oss_write").
_GENERAL_SYSCALLS = {"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
                     "pwritev2", "ioctl", "compat_ioctl", "sendmsg", "sendto", "recvmsg", "recvfrom", "connect",
                     "bind", "listen", "accept", "accept4", "setsockopt", "getsockopt", "splice", "sendfile",
                     "sendfile64", "close", "mmap", "mmap_pgoff", "open", "openat", "socketcall", "ipc",
                     "io_uring_enter", "exit_group_", "fsync", "fdatasync", "lseek", "llseek", "send", "recv"}
# Frames a stalled CPU loops under whose callee names the stall: work items, timers, kthreads, packets.
_STALL_ENTRY = re.compile(r"""(?x)
    process_one_work | kthread | call_timer_fn | expire_timers | __run_timers?\w* | tasklet_action_common\w*
  | __netif_receive_skb_core\w* | __netif_receive_skb_one_core | netif_receive_skb\w* | process_backlog
  | __fput | ____fput | task_work_run | rtnetlink_rcv_msg | nfnetlink_rcv_msg | nfnetlink_rcv_batch
  | netlink_dump | __run_hrtimer | run_timer_softirq | worker_thread | smpboot_thread_fn | do_one_initcall
  | (?:__)?vfs_(?:read|write|readv|writev|iter_read|iter_write|ioctl|fsync\w*) | __kernel_(?:read|write)
  | do_vfs_ioctl | sock_(?:sendmsg|recvmsg|ioctl|do_ioctl|write_iter|read_iter) | __sock_(?:sendmsg|recvmsg)
  | __do_fault | hrtimer_run_softirq | cpu_startup_entry | do_idle | (?:__)?mmap_region | do_mmap\w*
""")
_RET_FROM_FORK = re.compile(r"ret_from_fork\w*")
_SWITCHED_OUT = re.compile(r"(?:__)?schedule|__switch_to\w*|context_switch")
_COMPAT_IOCTL = re.compile(r"\w+_compat_ioctl")
# Frames that name a stall themselves wherever they are.
_STALL_SELF = re.compile(r"smp_call_function\w*")
# Frames between an entry point and what it calls that name nothing.
_WRAPPER = re.compile(r"""(?x)
    (?:__)?vfs_\w+ | do_vfs_ioctl | vfs_ioctl | ksys_\w+ | __sys_\w+ | ___sys_\w+ | sock_\w+ | __sock_\w+
  | do_iter_\w+ | new_sync_\w+ | do_readv\w* | do_writev\w* | do_loop_readv_writev | do_sys_\w+ | compat_\w+
  | __do_sys_\w+ | __se_sys_\w+ | inet6?_\w+ | security_\w+ | fsnotify\w* | task_work_run | exit_to_\w+
  | __fput | ____fput | rtnetlink_rcv\w* | nfnetlink_rcv\w* | netlink_rcv_skb | netlink_unicast\w*
  | do_filp_open | path_openat | do_dentry_open | vfs_open | splice_\w+ | do_splice\w* | iter_file_\w+
  | call_timer_fn | __run_timers?\w* | run_timer_softirq | expire_timers | process_one_work | worker_thread
  | kthread | __do_softirq | handle_softirqs | do_softirq\w* | net_rx_action | __napi_poll | napi_\w+
  | process_backlog | __netif_\w+ | netif_\w+ | tasklet_\w+ | __tasklet_\w+ | \w+_compat_ioctl
  | vm_mmap_pgoff | do_mmap\w* | (?:__)?mmap_region
""")
# Stall and lockup reports: the frames of the reporting interrupt and the loop's innards.
_STALL_SKIP = re.compile(r"\w*rcu\w*|\w*_stall\w*|cpu_relax|\w*nmi\w*|\w*backtrace\w*|\w*watchdog\w*"
                         r"|native_\w+|\w*spin\w*|\w*_lock\w*|\w*_unlock\w*|\w*lock_acquire\w*|preempt_\w+"
                         r"|(?:__)?schedule\w*|preempt_schedule\w*|_?sched_show_task|__cond_resched|_cond_resched|\w*hrtimer\w*|smp_call_function_\w*ipi\w*"
                         r"|generic_exec_single|flush_smp_call_function\w*|\w*irqentry\w*|\w*irq_\w+|\w*_irq"
                         r"|unwind_\w+|__unwind_\w+|arch_stack_walk|stack_trace_save\w*|default_idle\w*|arch_cpu_idle\w*|cpuidle\w*|\w*safe_halt|__switch_to\w*|context_switch|finish_task_switch\w*|dump_cpu_task|asm_call_\w+|call_on_stack|\w*apic_timer_interrupt\w*|\w*_interrupt_entry\w*")

# Title-level names: what a frame is called in a title (the raw name goes into the alternate title).
_CANONICAL = (
    (re.compile(r"__(?:x64|ia32|arm64|riscv|s390x?)_sys_(\w+)"), r"sys_\1"),
    (re.compile(r"(?:__se_|__do_|compat_)?(?:sys|SyS|ksys)_(\w+)"), r"\1"),
    (re.compile(r"smp_call_function_(?:single|many)\w*"), "smp_call_function"),
    (re.compile(r"synchronize_rcu_expedited|synchronize_sched(?:_expedited)?|(?:__)?synchronize_srcu(?:_expedited)?"),
     "synchronize_rcu"),
)


class _Names:
    """A skip list written as one regex, matched fast: its literal alternatives go into a
    set, the rest into a smaller regex (the full alternation costs tens of microseconds
    a name)."""

    def __init__(self, pattern: str):
        body = re.sub(r"^\(\?x\)", "", pattern)
        alts, depth, cur = [], 0, ""
        for ch in body:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if ch == "|" and depth == 0:
                alts.append(cur.strip())
                cur = ""
            else:
                cur += ch
        alts.append(cur.strip())
        alts = [a for a in alts if a]
        self.exact = frozenset(a for a in alts if re.fullmatch(r"\w+", a))
        rest = [a for a in alts if a not in self.exact]
        self.regex = re.compile("|".join(rest)) if rest else None

    def fullmatch(self, name: str) -> bool:
        return name in self.exact or (self.regex is not None and self.regex.fullmatch(name) is not None)


@lru_cache(maxsize=16384)
def _is(pat, name: str) -> bool:
    """pat.fullmatch(name), remembered: the same few thousand function names recur in every report."""
    r = pat.fullmatch(name)
    return r is not None and r is not False


_SKIP, _LOCKING, _STALL_SKIP, _WRAPPER, _STALL_ENTRY = (
    _Names(p.pattern) for p in (_SKIP, _LOCKING, _STALL_SKIP, _WRAPPER, _STALL_ENTRY))


@lru_cache(maxsize=4096)
def _syscall(name: str) -> str | None:
    m = _SYSCALL.fullmatch(name)
    return m.group(1) if m else None


@lru_cache(maxsize=4096)
def canonical(name: str) -> str:
    for pat, rep in _CANONICAL:
        m = pat.fullmatch(name)
        if m:
            return m.expand(rep)
    return name


def report_title(row: Row, info: dict, frames: list[Frame], sections: list[str], guess: bool = False) -> Title:
    """The title of a report of format row: header and body values info, frames in stack
    order, sections the label of every stack section (frames' stack indexes into it).
    guess: a stack printed wholly unreliable ("? f") is read as it is (see _guilty)."""
    values = dict(info)
    corrupted = False
    raw = None
    if "{frame}" in row.title:
        raw, corrupted = _guilty(row, info, frames, sections, guess)
    if row.need_stack and not frames:
        corrupted = True          # a report of this type always prints a stack
    frame = canonical(raw) if raw else "corrupted"
    title = _fill(row, values, frame)
    alts = []
    if raw and frame != raw:
        alts.append(_fill(row, values, raw))
    if row.alt:
        alts += [f"{row.alt} in {frame}"] + ([f"{row.alt} in {raw}"] if raw and raw != frame else [])
    return Title(title, corrupted, tuple(alts))


def _fill(row: Row, values: dict, frame: str) -> str:
    v = {k: _value(k, x) for k, x in values.items()}
    v["frame"] = frame
    if frame != "corrupted":
        v["found"] = ""
    if values.get("func"):
        v["rawfunc"] = re.sub(r"\d+", "NUM", values["func"])
    v["pair"] = " / " + canonical(clean_func(values["func2"])) if values.get("func2") else ""
    # "A||B": the first template whose values are all known
    templates = row.title.split("||")
    title = next((t for t in templates if all(k in v for k in re.findall(r"\{(\w+)\}", t))), templates[-1])
    for k in re.findall(r"\{(\w+)\}", title):
        title = title.replace("{" + k + "}", v.get(k, ""))
    return re.sub(r"  +", " ", title).strip()


def _value(key: str, x: str) -> str:
    if key == "reason":
        return _panic_reason(x)
    if key == "addr":
        return ""            # only whether the header had it
    if key == "header":
        return x.lstrip("[ ")
    if key == "what" and " " in x.strip():
        return _bug_what(x)
    return x


def _is_trace(label: str) -> bool:
    return label.lstrip().lower().startswith(("call trace", "backtrace", "stack backtrace", "kmemleak")) \
        or "backtrace" in label


def _skipped(f: Frame, row_skip: re.Pattern | None) -> bool:
    return bool(_is(_SKIP, f.name) or _is(_LOCKING, f.name) or (row_skip is not None and _is(row_skip, f.name))
                or (f.path and _SKIP_PATH.match(f.path)))


def _pick(cands: list[Frame], row_skip: re.Pattern | None) -> Frame | None:
    for f in cands:
        if f.reliable and not _skipped(f, row_skip):
            return f
    return None


def _part(part: str, info: dict, frames: list[Frame], sections: list[str]) -> list[Frame]:
    if part == "rip":
        return [f for f in frames if f.rip]
    if part == "header" or part.startswith("body:"):
        name = info.get("func" if part == "header" else part[5:])
        return [Frame(clean_func(name), True, False, -1, None)] if name else []
    if part == "trace":
        used = {f.stack for f in frames if not f.rip}
        stack = next((i for i, s in enumerate(sections) if _is_trace(s) and i in used), None)
        if stack is None:
            return [f for f in frames if not f.rip and f.stack < 0]
        return [f for f in frames if not f.rip and f.stack == stack]
    if part == "frames":          # frames printed before any "Call Trace:" line (KFENCE)
        return [f for f in frames if not f.rip and f.stack < 0]
    if part.startswith("sec:"):
        pat = re.compile(part[4:])
        stack = next((i for i, s in enumerate(sections) if pat.search(s)), None)
        return [f for f in frames if f.stack == stack and not f.rip] if stack is not None else []
    raise ValueError(part)


def _guilty(row: Row, info: dict, frames: list[Frame], sections: list[str], guess: bool) -> tuple[str | None, bool]:
    """(the guilty frame's name or None, corrupted)."""
    if row.stall:
        f = stall_frame(frames, row.skip, switched_out=row.type == "RCU_STALL", guess=guess)
        return (f, False) if f else (None, True)
    seen = []
    for part in row.parts:
        cands = _part(part, info, frames, sections)
        if row.foreign is not None and any(f.reliable and row.foreign.fullmatch(f.name) for f in cands):
            return None, True
        seen += cands
        f = _pick(cands, row.skip)
        if f is not None:
            return f.name, False
    # Unreliable frames ("? f+0x..") are stale stack contents: syzbot never reads them, and a
    # stack of nothing else is corrupted.  With printk caller context (CONFIG_PRINTK_CALLER,
    # set with the ORC unwinder in syzbot's configs and this project's) that is the rule here
    # too.  Without it (guess=True) a wholly unreliable stack is read as it is, flagged
    # corrupted: CONFIG_UNWINDER_GUESS prints every frame so, and "in corrupted" would merge
    # every report of such a kernel into one title.
    if guess and seen and not any(f.reliable for f in seen if not f.rip and f.stack >= 0 or f.stack < 0):
        f = _pick([f._replace(reliable=True) for f in seen], row.skip)
        if f is not None:
            return f.name, True
    return None, True


def stall_frame(frames: list[Frame], row_skip: re.Pattern | None, switched_out: bool = True,
                guess: bool = False) -> str | None:
    """A stalled CPU's entry point: the syscall (or, for read/write/ioctl-like ones, what it
    called), or what a work item, timer, kthread or packet handler ran; None without one.
    guess: without a reliable frame, the unreliable ones are read (see _guilty)."""
    seq = [f for f in frames if f.reliable]
    if not seq and guess:
        seq = [f._replace(reliable=True) for f in frames]
    # A stack that starts in the scheduler (not preempted by an interrupt) is a task that was
    # switched out, not the looping CPU: leave it out.  Stacks are split at ret_from_fork too
    # (dumps printed without a "Call Trace:" line of their own).
    segs, seg, prev = [], 0, None
    for f in seq:
        if prev is not None and (f.stack != prev.stack or _is(_RET_FROM_FORK, prev.name)):
            seg += 1
        segs.append(seg)
        prev = f
    heads: dict[int, list[Frame]] = {}
    for f, g in zip(seq, segs):
        if not f.rip and len(heads.setdefault(g, [])) < 2:
            heads[g].append(f)
    switched = {g for g, h in heads.items() if switched_out and _is(_SWITCHED_OUT, h[0].name)
                and not (len(h) > 1 and h[1].name == "preempt_schedule_irq")}
    seq = [f for f, g in zip(seq, segs) if g not in switched]
    # What the CPU ran when the timer interrupt that found it looping came (from the RIP
    # after "apic_timer_interrupt" to the end of that stack) names the stall first; the
    # interrupt's own frames (a timer, a softirq run on its exit) only if that cannot.
    part = _interrupted(seq)
    return (_entry(part, row_skip) if part else None) or _entry(seq, row_skip)


def _interrupted(seq: list[Frame]) -> list[Frame]:
    for i, f in enumerate(seq):
        if "apic_timer_interrupt" in f.name:
            j = next((k for k in range(i + 1, len(seq)) if seq[k].rip), None)
            if j is None:
                return []
            part = [seq[j]]
            for g in seq[j + 1:]:
                if g.rip or g.stack != seq[j].stack:
                    break
                part.append(g)
            return part
    return []


def _entry(seq: list[Frame], row_skip: re.Pattern | None) -> str | None:
    for f in seq:
        if _is(_STALL_SELF, f.name):
            return f.name
    for i, f in enumerate(seq):
        sc = _syscall(f.name)
        if sc is not None:
            if sc not in _GENERAL_SYSCALLS:
                return f.name
        elif not _is(_STALL_ENTRY, f.name):
            continue
        g = _callee(seq, i, row_skip)
        if g is not None:
            return g
    return None      # no entry point: the stack was cut or is not the looping CPU's


def _callee(seq: list[Frame], i: int, row_skip: re.Pattern | None) -> str | None:
    """The nearest frame above seq[i] in the same stack that says something (a compat
    ioctl handler only if nothing above it does; so is the helper the CPU loops in, at the RIP)."""
    soft = None
    for j in range(i - 1, -1, -1):
        g = seq[j]
        if g.stack != seq[i].stack or g.irq != seq[i].irq:
            break
        if _is(_STALL_SKIP, g.name) or _syscall(g.name) is not None:
            pass
        elif _skipped(g, row_skip):
            if g.rip and soft is None:
                soft = g.name      # the CPU loops in a helper: better than a frame further down
        elif not _is(_WRAPPER, g.name):
            return g.name
        elif soft is None and _is(_COMPAT_IOCTL, g.name):
            soft = g.name
        if g.rip:
            break
    return soft


def _panic_reason(reason: str) -> str:
    if reason.startswith("Attempted to kill init!"):
        return "Attempted to kill init!"
    if reason.startswith("Fatal exception"):
        return "Fatal exception"
    reason = re.split(r" --- | for \S+ ---", reason)[0]
    reason = re.sub(r"\s*\b(?:exitcode|code|address|addr|pid)=\S+", "", reason)
    reason = re.sub(r"\b0x[0-9a-f]+\b", "ADDR", reason)
    reason = re.sub(r"\b\d+\b", "NUM", reason)
    return reason.strip().rstrip(".").rstrip() or "unknown"


def _bug_what(what: str) -> str:
    what = re.split(r"[:,]| on CPU#| in process | for address| at |\s+\[| pfn:", what, maxsplit=1)[0]
    return what.strip().rstrip("!").strip()
