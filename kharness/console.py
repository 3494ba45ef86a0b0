"""Console analyzer: kernel problem reports in console/dmesg text -> Findings.

Pure code: text in, values out.  Feed it text as it arrives (any chunking); a
finding is returned as soon as its report is complete.  Titles follow the
convention kernel developers and syzbot dedupe by ("INFO: task hung in f",
"WARNING in f", "possible deadlock in f", ...), where f is the first stack
frame that says something (scheduler, locking, waiting, reporting and entry
frames are skipped).

How a report ends, so that feed() never waits for text that will not come:
  - "---[ end trace" (WARN, BUG, oops, UBSAN) or the closing "=====" line
    (KASAN, KFENCE, KMSAN, KCSAN);
  - otherwise the end of its stack: "</TASK>" closing the outermost section,
    or, for stacks without <TASK> markers, the first line that is not a frame.
    A hung-task report is thus returned by the feed() that brings its
    "</TASK>" line;
  - a new report starting in the same printk context, a line budget, or
    finish().
Lines that follow a completed report and plainly belong to it (the 7.x
"is blocked on a mutex likely owned by" blocker dump, lockdep's held-locks
list, the rest of an RCU stall dump, a panic caused by it) are appended to
that finding's report text in place.

With CONFIG_PRINTK_CALLER every line carries its context ("[ T123]" task or
"[ C1]" CPU); lines of other tasks are then kept out of a report, which is how
interleaved output from several CPUs is told apart.  Without it, a report
tolerates foreign lines inside its stack (between <TASK> and </TASK>).
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from dataclasses import dataclass, field

from .model import Finding

KIND = {
    "HANG": "hang", "SOFTLOCKUP": "hang", "HARDLOCKUP": "hang", "RCU_STALL": "hang", "WQ_LOCKUP": "hang",
    "WARNING": "warn", "LOCKDEP": "warn", "REFCOUNT": "warn", "MEMLEAK": "warn", "ATOMIC_SLEEP": "warn",
    "UBSAN": "warn", "KCSAN": "warn",
    "BUG": "crash", "KERNEL_BUG": "crash", "OOPS": "crash", "GPF": "crash", "PAGE_FAULT": "crash",
    "PANIC": "crash", "KASAN": "crash", "KFENCE": "crash", "KMSAN": "crash",
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
_TS_RE = re.compile(r"(?:<\d{1,3}>)?\[\s*\d+\.\d+\]")
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _split(raw: str) -> tuple[str | None, bool, str]:
    """raw console line -> (caller context or None, has kernel timestamp, message text)."""
    if "\r" in raw:
        raw = raw.rstrip("\r")
        if "\r" in raw:
            raw = raw[raw.rindex("\r") + 1:]
    if "\x1b" in raw:
        raw = _ANSI_RE.sub("", raw)
    if " kernel: " in raw[:80]:
        m = _SYSLOG_RE.match(raw)
        if m:
            raw = raw[m.end():]
    if raw[:1] in ("<", "["):
        m = _PREFIX_RE.match(raw)
        return m.group(2), m.group(1) is not None, raw[m.end():]
    return None, False, raw


# ---------------------------------------------------------------------------
# Report headers.  Each pattern is matched against the message text.

_HUNG_RE = re.compile(r"INFO: task (\S+):(\d+) blocked (?:in I/O wait )?for more than \d+ seconds")
_SOFT_RE = re.compile(r"(?:watchdog: |NMI watchdog: )?BUG: soft lockup - CPU#\d+ stuck for")
_HARD_RE = re.compile(r"(?:.*: )?Watchdog detected hard LOCKUP on cpu \d+")
_RCU_RE = re.compile(r"(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?")
_WQ_RE = re.compile(r"BUG: workqueue lockup")
_KASAN_RE = re.compile(r"BUG: KASAN: ([\w-]+)(?: in ([\w.$]+))?")
_KFENCE_RE = re.compile(r"BUG: KFENCE: (.*?) in ([\w.$]+)")
_KMSAN_RE = re.compile(r"BUG: KMSAN: ([\w-]+) in ([\w.$]+)")
_KCSAN_RE = re.compile(r"BUG: KCSAN: ([\w-]+) in ([\w.$]+)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?: \[[\w-]+\])?"
                       r"(?: / ([\w.$]+))?")
_PF_RE = re.compile(r"BUG: (?:unable to handle (page fault|kernel paging request|kernel NULL pointer dereference)"
                    r"|(kernel NULL pointer dereference))")
_KBUG_RE = re.compile(r"kernel BUG at (\S+?)!?$")
_OOPS_RE = re.compile(r"(?:Oops: )?(?:(general protection fault)|(divide error|invalid opcode|stack segment|int3)"
                      r"|Oops)(?:: |, |\b).*?\[#\d+\]|Internal error: Oops|PANIC: double fault")
_PANIC_RE = re.compile(r"Kernel panic - not syncing: ?(.*)")
_UBSAN_RE = re.compile(r"UBSAN: ([\w-]+)")
_MEMLEAK_RE = re.compile(r"(?:kmemleak: )?unreferenced object 0x[0-9a-f]+ \(size \d+\):")
# __warn() in kernel/panic.c; the second shape is 6.19+, the last two are 3.x.
_WARN_RES = (
    re.compile(r"WARNING: CPU: \d+ PID: \d+ at (?:(\S+:\d+) )?([\w.$]+)"),
    re.compile(r"WARNING: (?:(\S+:\d+) )?at ([\w.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[[\w-]+\])?, CPU#\d+: "),
    re.compile(r"WARNING: at (\S+:\d+) ([\w.$]+)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?\(\)"),
)
_LOCKDEP = {
    # header text -> title template ({} = function)
    "WARNING: possible circular locking dependency detected": "possible deadlock in {}",
    "WARNING: possible recursive locking detected": "possible deadlock in {}",
    "WARNING: possible irq lock inversion dependency detected": "possible deadlock in {}",
    "WARNING: inconsistent lock state": "inconsistent lock state in {}",
    "WARNING: suspicious RCU usage": "suspicious RCU usage at {}",
    "WARNING: lock held when returning to user space!": "WARNING: lock held when returning to user space in {}",
    "WARNING: bad unlock balance detected!": "WARNING: bad unlock balance in {}",
    "WARNING: held lock freed!": "WARNING: held lock freed in {}",
    "WARNING: Nested lock was not taken": "WARNING: nested lock was not taken in {}",
    "WARNING: bad contention detected!": "WARNING: bad contention in {}",
    "WARNING: chain_key collision": "WARNING: chain_key collision in {}",
    "[ BUG: Invalid wait context ]": "BUG: Invalid wait context in {}",
}
_LOCKDEP_SAFE_RE = re.compile(r"WARNING: (\w+)-safe -> \1-unsafe lock order detected")
_LOCKDEP_HELD_RE = re.compile(r"WARNING: \S+ still has locks held!")
_LOCKDEP_MAX_RE = re.compile(r"BUG: MAX_\w+ too low!")
_ATOMIC_RE = re.compile(r"BUG: (sleeping function called from invalid context|scheduling while atomic"
                        r"|scheduling in a non-blocking section)")
_SLUB_RE = re.compile(r"BUG ([\w-]+) \((?:Not tainted|Tainted: [^)]*)\): (.*)")

# Every header holds one of these ("[#" is in every die() line: "general protection fault: 0000 [#1]").
_KEYWORDS = ("BUG", "WARNING: ", "INFO: ", "Oops", "[#", "Kernel panic", "UBSAN: ", "unreferenced object", "LOCKUP")
_KEYWORD_RE = re.compile("|".join(map(re.escape, _KEYWORDS)))

# A panic caused by a report just printed (panic_on_warn, panic_on_oops, hung_task_panic, ...).
_CONSEQUENCE_PANIC_RE = re.compile(
    r"(?:Fatal exception|(?:\S+: )?panic_on_warn set|hung_task: blocked tasks|softlockup: hung tasks"
    r"|Hard LOCKUP|hardlockup|RCU Stall|.*system warned too often|Oops)")

# ---------------------------------------------------------------------------
# Report body.

_FRAME_RE = re.compile(
    r"\s*(?:\[<?(?:0x)?[0-9a-f]+>?\]\s*){0,2}(\?\s+)?(?:\d+:)?([A-Za-z_.$][\w.$]*)"
    r"(\+0x[0-9a-f]+/0x[0-9a-f]+)?(?:\s+\[[\w-]+\])?(?:\s+(\S+\.(?:[chsS]|rs):\d+)(?::\d+)?)?"
    r"(?:\s+\[inline\])?(?:\s+\([A-Z]\))?\s*$")
_RIP_RE = re.compile(r"(?:RIP: [0-9a-f]{4}:|pc : |NIP \[[0-9a-f]+\] |EIP: )(?:\[<[0-9a-f]+>\] )?([\w.$]+)\+0x")
_AT_RE = re.compile(r"\bat: (?:\[<[0-9a-f]+>\] )?([\w.$]+)\+0x")
_MARKER_RE = re.compile(r"\s*(</?(?:TASK|IRQ|NMI|SOFTIRQ)>|<EOI>)\s*$")
_CALLTRACE_RE = re.compile(r"\s*(?:Call [Tt]race:|(?:kmemleak: )?\s*backtrace(?: \(crc [0-9a-f]+\))?:)")
_END_TRACE = "---[ end trace"
_EQ_LINE_RE = re.compile(r"\s*={20,}\s*$")
_RCU_FILE_RE = re.compile(r"(\S+:\d+) suspicious \S+ usage")
_SUFFIX_RE = re.compile(r"(?:\.(?:isra|constprop|part|cold|llvm|lto_priv|clone)(?:\.\d+)*)+$")

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

# Lines that may follow a completed report and still belong to it.
_TAIL_RE = re.compile(r"""(?x)
    \s | task: | Call\ [Tt]race: | CPU:\ \d | Hardware\ name: | Workqueue: | RIP: | Code: | RSP: | R[A-Z0-9]{2}:
  | FS: | CS: | CR2: | DR[0-7]: | PKRU: | Sending\ NMI | NMI\ backtrace | Modules\ linked\ in: | irq\ event\ stamp:
  | (?:hard|soft)irqs\ last | INFO:\ task\ \S+\ (?:is\ )?blocked\ on
  | Showing\ (?:all\ locks|busy\ workqueues|backtraces)
  | \d+\ locks?\ held\ by | ={20,} | -{20,} | rcu: | workqueue\ \S+:\ flags | pool\ \d+: | ---\[\ end\ | Kernel\ Offset:
  | Preemption\ disabled\ at: | in_atomic\(\): | preempt_count: | RCU\ nest\ depth: | note: | Disabling\ lock\ debugging
  | \[<[0-9a-f]+>\] | \d+\.\d+\S*\ \#\d+ | \S+\ is\ leaving\ the\ kernel | $
""")

_STACK_POLICY, _TRACE_POLICY, _EQ_POLICY, _BLOCK_POLICY = range(4)
_CLOSE, _STACK_ENDED = 1, 2
_ACCESS_RE = re.compile(r"(Read|Write) of size")
_MAX_REPORT_LINES = 800        # own lines before a report is closed regardless
_MAX_IDLE_LINES = 2000         # stream lines without an own line before a report is closed
_TAIL_IDLE_LINES = 400         # stream lines after which a report's tail is forgotten


def _clean_func(name: str) -> str:
    return _SUFFIX_RE.sub("", name)


class _Report:
    """A report being read: its lines and what its title needs."""
    __slots__ = ("type", "line", "ctx", "lines", "policy", "frames", "rip", "info", "depth", "in_stack",
                 "stack_no", "stack_frames", "wait_task", "last_seen", "seen_oops", "want_at", "stackless",
                 "multi_cpu", "evidence")

    def __init__(self, type_: str, line: int, ctx: str | None, text: str, policy: int, info: dict):
        self.type = type_
        self.line = line
        self.ctx = ctx
        self.lines = [text]
        self.policy = policy
        self.frames: list[tuple[str, bool, bool, int]] = []   # name, reliable, in irq/nmi, stack number
        self.rip: str | None = None
        self.info = info
        self.depth: list[str] = []     # open <TASK>/<IRQ>/<NMI> sections
        self.in_stack = False
        self.stack_no = -1
        self.stack_frames = 0
        self.wait_task = False         # the outermost <IRQ>/<NMI> closed: only a <TASK> may continue
        self.last_seen = line
        self.seen_oops = False
        self.want_at = False
        self.stackless = bool(info.get("stackless"))
        self.multi_cpu = type_ in ("RCU_STALL", "HARDLOCKUP", "SOFTLOCKUP")
        self.evidence = False


class _Tail:
    """Lines after a completed report that still belong to it go to its finding's report."""
    __slots__ = ("finding", "ctx", "last", "multi_cpu")

    def __init__(self, finding: Finding | None, ctx: str | None, last: int, multi_cpu: bool):
        self.finding = finding
        self.ctx = ctx
        self.last = last
        self.multi_cpu = multi_cpu


class ConsoleAnalyzer:
    """Streaming analyzer: feed() text as it arrives, finish() at the end of the stream."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.line_count = 0
        self._by_key: dict[tuple[str, str], Finding] = {}
        self._partial = ""
        self._active: dict[str | None, _Report] = {}
        self._tails: dict[str | None, _Tail] = {}
        self._recent: deque[tuple[int, str]] = deque(maxlen=8)
        self._ts_seen = False
        self._new: list[Finding] = []
        self._last_finding: Finding | None = None
        self._last_finding_end = 0

    # -- public -------------------------------------------------------------

    def feed(self, text: str) -> list[Finding]:
        """Take any chunk of console text; return the findings it completed (new ones only)."""
        self._new = []
        nl = text.rfind("\n")
        if nl < 0:
            self._partial += text
            return []
        block = self._partial + text[:nl + 1] if self._partial else text[:nl + 1]
        self._partial = text[nl + 1:]
        self._scan(block)
        return self._new

    def finish(self) -> list[Finding]:
        """End of stream: the last partial line, then every open report, completes."""
        self._new = []
        if self._partial:
            line, self._partial = self._partial, ""
            self.line_count += 1
            self._line(line)
        for rep in sorted(self._active.values(), key=lambda r: r.line):
            self._close(rep)
        self._active.clear()
        self._tails.clear()
        return self._new

    # -- scanning -----------------------------------------------------------

    def _scan(self, block: str) -> None:
        """Lines outside reports are skipped at C speed: only lines holding a header keyword,
        and every line while a report or its tail is open, go through _line()."""
        pos, n = 0, len(block)
        nxt = dict.fromkeys(_KEYWORDS, -2)      # next index of each keyword in block (-1: none)
        while pos < n:
            if not self._active and not self._tails:
                best = n
                for k, i in nxt.items():
                    if i != -1 and i < pos:
                        i = nxt[k] = block.find(k, pos)
                    if i != -1 and i < best:
                        best = i
                start = block.rfind("\n", pos, best) + 1 if best < n else n
                if start > pos:
                    self._skip(block, pos, start)
                    pos = start
                    if pos >= n:
                        break
            end = block.index("\n", pos)
            self.line_count += 1
            self._line(block[pos:end])
            pos = end + 1

    def _skip(self, block: str, a: int, b: int) -> None:
        """Lines block[a:b] hold no report: count them and remember the last few."""
        count = block.count("\n", a, b)
        end = b - 1
        tail = []
        for _ in range(min(count, self._recent.maxlen)):
            s = block.rfind("\n", a, end)
            tail.append(block[(s + 1 if s >= 0 else a):end])
            end = s
        first = self.line_count + count - len(tail) + 1
        for i, raw in enumerate(reversed(tail)):
            self._recent.append((first + i, raw))
        self.line_count += count

    def _line(self, raw: str) -> None:
        no = self.line_count
        ctx, has_ts, text = _split(raw)
        if has_ts:
            self._ts_seen = True
        s = text.strip()
        if s.startswith("kmemleak: "):
            text = text[text.index("kmemleak: ") + 10:]
            s = text.strip()
        if s.startswith("Linux version ") and (self._active or self._tails):
            # A new boot in the same stream (the guest was reset): whatever was open is complete.
            for r in sorted(self._active.values(), key=lambda r: r.line):
                self._close(r)
            self._tails.clear()
        rep = self._route(ctx)
        if not (_KEYWORD_RE.search(s) and self._header(no, ctx, has_ts, s, rep)):
            if rep is not None:
                self._report_line(rep, no, ctx, text, s)
            elif self._tails:
                self._tail_line(no, ctx, text)
        self._recent.append((no, raw))
        if not no & 63:
            for r in list(self._active.values()):
                if no - r.last_seen > _MAX_IDLE_LINES:
                    self._close(r)
            for c, t in list(self._tails.items()):
                if no - t.last > _TAIL_IDLE_LINES:
                    del self._tails[c]

    def _route(self, ctx: str | None) -> _Report | None:
        """The open report a line of printk context ctx belongs to, if any."""
        if not self._active:
            return None
        rep = self._active.get(ctx)
        if rep is not None or ctx is None:
            return rep
        if ctx[0] == "C":
            # NMI backtraces of stall and lockup reports are printed in other CPUs' contexts.
            for r in reversed(list(self._active.values())):
                if r.multi_cpu:
                    return r
        return self._active.get(None)

    # -- headers ------------------------------------------------------------

    def _kernel_line(self, has_ts: bool, ctx: str | None) -> bool:
        """False for a line that user space wrote straight to the console of a timestamped stream."""
        if has_ts or ctx is not None:
            return True
        if self._ts_seen:
            return False
        return not any(_TS_RE.match(r) for _, r in self._recent)

    def _header(self, no: int, ctx: str | None, has_ts: bool, s: str, rep: _Report | None) -> bool:
        """Start a report if s is a report header; True if the line was consumed."""
        found = _match_header(s)
        if found is None or not self._kernel_line(has_ts, ctx):
            return False
        type_, policy, info = found
        if rep is not None and rep.ctx == ctx and _continues(rep, type_):
            return False
        if type_ == "PANIC" and self._panic_is_consequence(no, ctx, s, info):
            return True
        old = self._active.get(ctx)
        if old is not None:
            self._close(old)
        self._tails.pop(ctx, None)
        new = _Report(type_, no, ctx, s, policy, info)
        if type_ in ("WARNING", "REFCOUNT", "UBSAN"):
            self._prepend_cut_here(new, ctx)
        self._active[ctx] = new
        return True

    def _prepend_cut_here(self, rep: _Report, ctx: str | None) -> None:
        """WARN(): take in "[ cut here ]" and the message printed before the WARNING line."""
        recent = list(self._recent)[-6:]
        for i in range(len(recent) - 1, -1, -1):
            c, _, t = _split(recent[i][1])
            if c == ctx and "[ cut here ]" in t:
                pre = [t.strip() for c2, _, t in (_split(r) for _, r in recent[i:]) if c2 == ctx]
                rep.lines[:0] = pre
                if rep.type == "WARNING" and any(p.startswith("refcount_t: ") for p in pre):
                    rep.type = "REFCOUNT"
                return

    def _panic_is_consequence(self, no: int, ctx: str | None, s: str, info: dict) -> bool:
        """A panic that only follows from a report just printed (panic_on_warn, panic_on_oops,
        hung_task_panic, ...) joins that report instead of making a finding of its own."""
        if not _CONSEQUENCE_PANIC_RE.match(info["reason"]):
            return False
        rep = self._active.get(ctx)
        if rep is None and self._active:
            rep = max(self._active.values(), key=lambda r: r.line)
        if rep is not None:
            rep.lines.append(s)
            rep.last_seen = no
            return True
        f = self._last_finding
        if f is not None and no - self._last_finding_end < 1000:
            mine = f if f.count == 1 else None
            if mine is not None:
                mine.report += "\n" + s
            self._tails[ctx] = _Tail(mine, ctx, no, True)
            return True
        return False

    # -- report bodies ------------------------------------------------------

    def _report_line(self, rep: _Report, no: int, ctx: str | None, text: str, s: str) -> None:
        if rep.wait_task:
            rep.wait_task = False
            if s not in ("<TASK>", "<IRQ>", "<NMI>", "<SOFTIRQ>"):
                self._close(rep)
                self._tail_line(no, ctx, text)
                return
        rep.last_seen = no
        status = self._absorb(rep, text, s)
        if status == _STACK_ENDED:
            self._close(rep)
            self._tail_line(no, ctx, text)
            return
        if rep.stackless and len(rep.lines) > 1 and not _TAIL_RE.match(text) and \
                not s.startswith(("rcu:", "workqueue ", "pool ", "Showing ")):
            self._close(rep)          # a report without a stack ends at its first foreign line
            self._tail_line(no, ctx, text)
            return
        rep.lines.append(text.rstrip())
        if status == _CLOSE or len(rep.lines) >= _MAX_REPORT_LINES:
            self._close(rep)
        elif rep.policy == _TRACE_POLICY:
            if s.startswith(_END_TRACE) or (rep.type == "UBSAN" and _EQ_LINE_RE.match(s)):
                self._close(rep)
        elif rep.policy == _EQ_POLICY:
            if _EQ_LINE_RE.match(s):
                self._close(rep)
        elif s.startswith("---[ end Kernel panic"):
            self._close(rep)

    def _absorb(self, rep: _Report, text: str, s: str) -> int:
        """Collect what the title needs from one line of a report; follow its stack."""
        if s[:1] == "<" and s[-1:] == ">":
            m = _MARKER_RE.match(s)
            if m:
                mk = m.group(1)
                if mk.startswith("</") or mk == "<EOI>":
                    if rep.depth:
                        rep.depth.pop()
                    if not rep.depth and rep.in_stack and rep.policy == _STACK_POLICY and not rep.stackless:
                        if mk == "</TASK>":
                            return _CLOSE
                        rep.wait_task = True
                else:
                    rep.depth.append(mk[1:-1])
                    rep.in_stack = True
                return 0
        if _CALLTRACE_RE.match(text):
            rep.in_stack = True
            rep.stack_no += 1
            rep.stack_frames = 0
            rep.evidence = True
            return 0
        fm = _FRAME_RE.match(text) if (text[:1] in " \t[" or rep.in_stack) else None
        if fm and (fm.group(3) or fm.group(4)):
            in_irq = bool(rep.depth) and rep.depth[-1] != "TASK"
            name = _clean_func(fm.group(2))
            rep.frames.append((name, fm.group(1) is None, in_irq, rep.stack_no if rep.in_stack else -1))
            rep.stack_frames += 1
            if rep.want_at and not rep.info.get("at"):
                rep.info["at"] = name
            return 0
        if rep.in_stack and not rep.depth and rep.stack_frames and rep.policy == _STACK_POLICY \
                and not rep.stackless:
            return _STACK_ENDED      # a stack without <TASK> markers ended before this line
        if s.startswith(("RIP: ", "pc : ", "NIP ", "EIP: ")):
            if rep.rip is None:
                m = _RIP_RE.match(s)
                if m:
                    rep.rip = _clean_func(m.group(1))
        elif s.startswith("CPU: "):
            rep.evidence = True
        elif rep.type == "LOCKDEP":
            if not rep.info.get("at"):
                if rep.want_at:
                    m = _AT_RE.search(s)
                    if m:
                        rep.info["at"] = _clean_func(m.group(1))
                elif ("is trying to acquire" in s or s.endswith("takes:") or "just changed the state" in s
                      or "is trying to release lock" in s or "held by" in s or "still has locks held" in s):
                    rep.want_at = True
            if "file" not in rep.info:
                m = _RCU_FILE_RE.match(s)
                if m:
                    rep.info["file"] = m.group(1)
        elif rep.type == "KASAN" and "access" not in rep.info:
            m = _ACCESS_RE.match(s)
            if m:
                rep.info["access"] = m.group(1)
        return 0

    def _close(self, rep: _Report) -> None:
        """The report is complete: title it, record (or count) the finding, open its tail."""
        if self._active.get(rep.ctx) is rep:
            del self._active[rep.ctx]
        if rep.info.get("generic") and not rep.evidence:
            return      # a bare "BUG: ..." line without CPU or stack lines is no kernel report
        title = self._title(rep)
        key = (rep.type, title)
        f = self._by_key.get(key)
        mine = None
        if f is None:
            f = mine = Finding(KIND[rep.type], rep.type, title, rep.line, "\n".join(rep.lines), 1, [rep.line])
            self._by_key[key] = f
            i = bisect.bisect_right([x.line for x in self.findings], rep.line)
            self.findings.insert(i, f)
            self._new.append(f)
        else:
            f.count += 1
            f.lines.append(rep.line)
            f.line = min(f.line, rep.line)
        self._last_finding = f
        self._last_finding_end = rep.last_seen
        self._tails[rep.ctx] = _Tail(mine, rep.ctx, rep.last_seen, rep.multi_cpu)

    def _tail_line(self, no: int, ctx: str | None, text: str) -> None:
        tail = self._tails.get(ctx)
        if tail is None and ctx is not None:
            if ctx[0] == "C":
                tail = next((t for t in self._tails.values() if t.multi_cpu), None)
            if tail is None:
                tail = self._tails.get(None)
        if tail is None:
            return
        if not _TAIL_RE.match(text):
            if tail.ctx is None or ctx == tail.ctx:
                del self._tails[tail.ctx]
            return
        tail.last = no
        if tail.finding is not None:
            tail.finding.report += "\n" + text.rstrip()

    # -- titles -------------------------------------------------------------

    def _title(self, rep: _Report) -> str:
        t, info = rep.type, rep.info
        if t == "HANG":
            return _with("INFO: task hung", _hang_frame(rep))
        if t == "SOFTLOCKUP":
            return _with("BUG: soft lockup", _frame(rep, rip=True, stall=True))
        if t == "HARDLOCKUP":
            return _with("BUG: hard lockup", _frame(rep, rip=True, stall=True))
        if t == "RCU_STALL":
            return _with("INFO: rcu detected stall", _frame(rep, rip=True, stall=True))
        if t == "WQ_LOCKUP":
            return "BUG: workqueue lockup"
        if t == "WARNING":
            return _with("WARNING", _clean_func(info["func"]) if info.get("func") else _frame(rep, rip=True))
        if t == "REFCOUNT":
            return _with("WARNING: refcount bug", _frame(rep, rip=True))
        if t == "LOCKDEP":
            tmpl = info["title"]
            if "{}" not in tmpl:
                return tmpl
            if tmpl.startswith("suspicious RCU usage"):
                return tmpl.format(info["file"]) if info.get("file") else _with("suspicious RCU usage", _frame(rep))
            what = info.get("at") or _frame(rep)
            return tmpl.format(what) if what else tmpl.replace(" in {}", "")
        if t == "ATOMIC_SLEEP":
            return _with("BUG: " + info["what"], _frame(rep, alloc=True))
        if t == "KASAN":
            func = info.get("func")
            if not func or _SKIP_RE.fullmatch(_clean_func(func)):
                func = _frame(rep) or func
            head = f"KASAN: {info['what']} {info['access']}" if info.get("access") else f"KASAN: {info['what']}"
            return _with(head, _clean_func(func) if func else None)
        if t in ("KFENCE", "KMSAN"):
            return _with(f"{t}: {info['what']}", _clean_func(info["func"]))
        if t == "KCSAN":
            return _with(f"KCSAN: {info['what']}",
                         " / ".join(_clean_func(f) for f in (info.get("func"), info.get("func2")) if f))
        if t == "UBSAN":
            return _with(f"UBSAN: {info['what']}", _frame(rep))
        if t == "MEMLEAK":
            return _with("memory leak", _frame(rep, alloc=True))
        if t == "PAGE_FAULT":
            head = "BUG: kernel NULL pointer dereference" if info.get("null") \
                else "BUG: unable to handle kernel paging request"
            return _with(head, _frame(rep, rip=True))
        if t == "KERNEL_BUG":
            return _with("kernel BUG", _frame(rep, rip=True) or info.get("loc"))
        if t == "GPF":
            return _with("general protection fault", _frame(rep, rip=True))
        if t == "OOPS":
            return _with(info["what"], _frame(rep, rip=True))
        if t == "PANIC":
            return "kernel panic: " + _panic_reason(info["reason"])
        return _with("BUG: " + _bug_what(info["what"]), _frame(rep, rip=True))


def _match_header(s: str):
    """(type, completion policy, info) if s (a stripped message) starts a report, else None."""
    m = _HUNG_RE.match(s)
    if m:
        return "HANG", _STACK_POLICY, {"task": m.group(1)}
    if s.startswith("WARNING: "):
        for r in _WARN_RES:
            m = r.match(s)
            if m:
                loc, func = m.group(1), m.group(2)
                type_ = "REFCOUNT" if loc and loc.startswith("lib/refcount.c") else "WARNING"
                return type_, _TRACE_POLICY, {"func": func, "loc": loc}
        title = _LOCKDEP.get(s)
        if title:
            return "LOCKDEP", _STACK_POLICY, {"title": title, "stackless": "returning to user" in s}
        if _LOCKDEP_SAFE_RE.match(s):
            return "LOCKDEP", _STACK_POLICY, {"title": "possible deadlock in {}"}
        if _LOCKDEP_HELD_RE.match(s):
            return "LOCKDEP", _STACK_POLICY, {"title": "WARNING: still has locks held in {}", "stackless": True}
        return None
    if _SOFT_RE.match(s):
        return "SOFTLOCKUP", _STACK_POLICY, {}
    if "LOCKUP" in s and _HARD_RE.match(s):
        return "HARDLOCKUP", _STACK_POLICY, {}
    if _RCU_RE.match(s):
        return "RCU_STALL", _STACK_POLICY, {}
    if s.startswith("BUG: "):
        if _WQ_RE.match(s):
            return "WQ_LOCKUP", _BLOCK_POLICY, {"stackless": True}
        m = _KASAN_RE.match(s)
        if m:
            return "KASAN", _EQ_POLICY, {"what": m.group(1), "func": m.group(2)}
        m = _KFENCE_RE.match(s)
        if m:
            return "KFENCE", _EQ_POLICY, {"what": m.group(1), "func": m.group(2)}
        m = _KMSAN_RE.match(s)
        if m:
            return "KMSAN", _EQ_POLICY, {"what": m.group(1), "func": m.group(2)}
        m = _KCSAN_RE.match(s)
        if m:
            return "KCSAN", _EQ_POLICY, {"what": m.group(1), "func": m.group(2), "func2": m.group(3)}
        m = _PF_RE.match(s)
        if m:
            return "PAGE_FAULT", _TRACE_POLICY, {"null": bool(m.group(2)) or m.group(1) == "kernel NULL pointer "
                                                                                   "dereference"}
        m = _ATOMIC_RE.match(s)
        if m:
            return "ATOMIC_SLEEP", _STACK_POLICY, {"what": m.group(1)}
        if _LOCKDEP_MAX_RE.match(s):
            return "LOCKDEP", _STACK_POLICY, {"title": s, "stackless": True}
        return "BUG", _STACK_POLICY, {"what": s[5:], "generic": True}
    if s.startswith("[ BUG: ") and s in _LOCKDEP:
        return "LOCKDEP", _STACK_POLICY, {"title": _LOCKDEP[s]}
    if s.startswith("kernel BUG at "):
        m = _KBUG_RE.match(s)
        return "KERNEL_BUG", _TRACE_POLICY, {"loc": m.group(1) if m else ""}
    if s.startswith("Kernel panic - not syncing"):
        m = _PANIC_RE.match(s)
        return "PANIC", _STACK_POLICY, {"reason": m.group(1).strip() if m else ""}
    if s.startswith("UBSAN: "):
        return "UBSAN", _TRACE_POLICY, {"what": _UBSAN_RE.match(s).group(1)}
    if s.startswith("unreferenced object"):
        return ("MEMLEAK", _STACK_POLICY, {}) if _MEMLEAK_RE.match(s) else None
    m = _OOPS_RE.match(s)
    if m:
        if m.group(1):
            return "GPF", _TRACE_POLICY, {}
        what = m.group(2) or ("PANIC: double fault" if s.startswith("PANIC: double fault") else "Oops")
        return "OOPS", _TRACE_POLICY, {"what": "stack segment fault" if what == "stack segment" else what}
    m = _SLUB_RE.match(s)
    if m:
        return "BUG", _STACK_POLICY, {"what": m.group(2), "generic": True}
    return None


def _continues(rep: _Report, type_: str) -> bool:
    """Header-looking lines that are part of the open report: the "Oops:" line that follows
    "BUG: unable to handle page fault" or "kernel BUG at" (see page_fault_oops(), die())."""
    if type_ == "OOPS" and rep.type in ("PAGE_FAULT", "KERNEL_BUG", "BUG") and not rep.seen_oops:
        rep.seen_oops = True
        return True
    return False


def _candidates(rep: _Report, rip: bool) -> list[tuple[str, bool]]:
    """Frames worth naming, in order: the faulting RIP, then the first stack's task frames.
    With CONFIG_UNWINDER_GUESS every frame is printed as unreliable ("? f+0x.."); a stack
    without a single reliable frame is taken as it is."""
    stacks = sorted({f[3] for f in rep.frames})
    first = next((s for s in stacks if s >= 0), stacks[0] if stacks else -1)
    frames = [(n, rel) for n, rel, irq, s in rep.frames if s == first and not irq]
    if not frames:
        frames = [(n, rel) for n, rel, irq, s in rep.frames]
    if frames and not any(rel for _, rel in frames):
        frames = [(n, True) for n, _ in frames]
    return ([(rep.rip, True)] if rip and rep.rip else []) + frames


def _frame(rep: _Report, rip: bool = False, stall: bool = False, alloc: bool = False) -> str | None:
    """The first frame that says something; syscall entry frames only when nothing better."""
    cands = _candidates(rep, rip)
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


def _hang_frame(rep: _Report) -> str | None:
    # Hung tasks wait in many places for one culprit: rtnl_lock and synchronize_rcu waiters
    # are grouped under those names, as syzbot does.
    for name, _ in _candidates(rep, False):
        if name in _HANG_ANCHORS:
            return _HANG_ANCHORS[name]
    return _frame(rep)


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


def analyze(text: str) -> list[Finding]:
    """All findings in a complete text."""
    a = ConsoleAnalyzer()
    a.feed(text)
    a.finish()
    return a.findings
