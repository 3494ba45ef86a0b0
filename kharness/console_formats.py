"""Kernel console report formats, as tables: what starts a report, what its lines look like.

In the style of syzkaller's pkg/report: the printk line prefixes (split_line), the
header of every report type with its KIND and how it ends (match_header), and the
shapes of the lines inside a report (stack frames, <TASK> markers, "Call Trace:",
end markers) and of the lines that may follow it (TAIL_RE).  Pure: regexes and
functions of one line; the streaming analyzer that applies them is console.py.
"""

from __future__ import annotations

import re

# Report type -> Finding.kind.
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
TS_RE = re.compile(r"(?:<\d{1,3}>)?\[\s*\d+\.\d+\]")
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def split_line(raw: str) -> tuple[str | None, bool, str]:
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
KEYWORDS = ("BUG", "WARNING: ", "INFO: ", "Oops", "[#", "Kernel panic", "UBSAN: ", "unreferenced object", "LOCKUP")
KEYWORD_RE = re.compile("|".join(map(re.escape, KEYWORDS)))

# A panic caused by a report just printed (panic_on_warn, panic_on_oops, hung_task_panic, ...).
CONSEQUENCE_PANIC_RE = re.compile(
    r"(?:Fatal exception|(?:\S+: )?panic_on_warn set|hung_task: blocked tasks|softlockup: hung tasks"
    r"|Hard LOCKUP|hardlockup|RCU Stall|.*system warned too often|Oops)")

# ---------------------------------------------------------------------------
# Report body.

FRAME_RE = re.compile(
    r"\s*(?:\[<?(?:0x)?[0-9a-f]+>?\]\s*){0,2}(\?\s+)?(?:\d+:)?([A-Za-z_.$][\w.$]*)"
    r"(\+0x[0-9a-f]+/0x[0-9a-f]+)?(?:\s+\[[\w-]+\])?(?:\s+(\S+\.(?:[chsS]|rs):\d+)(?::\d+)?)?"
    r"(?:\s+\[inline\])?(?:\s+\([A-Z]\))?\s*$")
RIP_RE = re.compile(r"(?:RIP: [0-9a-f]{4}:|pc : |NIP \[[0-9a-f]+\] |EIP: )(?:\[<[0-9a-f]+>\] )?([\w.$]+)\+0x")
AT_RE = re.compile(r"\bat: (?:\[<[0-9a-f]+>\] )?([\w.$]+)\+0x")
MARKER_RE = re.compile(r"\s*(</?(?:TASK|IRQ|NMI|SOFTIRQ)>|<EOI>)\s*$")
CALLTRACE_RE = re.compile(r"\s*(?:Call [Tt]race:|(?:kmemleak: )?\s*backtrace(?: \(crc [0-9a-f]+\))?:)")
END_TRACE = "---[ end trace"
EQ_LINE_RE = re.compile(r"\s*={20,}\s*$")
RCU_FILE_RE = re.compile(r"(\S+:\d+) suspicious \S+ usage")
_SUFFIX_RE = re.compile(r"(?:\.(?:isra|constprop|part|cold|llvm|lto_priv|clone)(?:\.\d+)*)+$")
ACCESS_RE = re.compile(r"(Read|Write) of size")

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

# How a report ends (see console.py): at the end of its stack, at "---[ end trace",
# at the closing "=====" line, or (a block without a stack) at its first foreign line.
STACK_POLICY, TRACE_POLICY, EQ_POLICY, BLOCK_POLICY = range(4)


def clean_func(name: str) -> str:
    """A function name without the compiler's clone suffixes (.isra.0, .constprop.1, .cold, ...)."""
    return _SUFFIX_RE.sub("", name)


def match_header(s: str):
    """(type, completion policy, info) if s (a stripped message) starts a report, else None."""
    m = _HUNG_RE.match(s)
    if m:
        return "HANG", STACK_POLICY, {"task": m.group(1)}
    if s.startswith("WARNING: "):
        for r in _WARN_RES:
            m = r.match(s)
            if m:
                loc, func = m.group(1), m.group(2)
                type_ = "REFCOUNT" if loc and loc.startswith("lib/refcount.c") else "WARNING"
                return type_, TRACE_POLICY, {"func": func, "loc": loc}
        title = _LOCKDEP.get(s)
        if title:
            return "LOCKDEP", STACK_POLICY, {"title": title, "stackless": "returning to user" in s}
        if _LOCKDEP_SAFE_RE.match(s):
            return "LOCKDEP", STACK_POLICY, {"title": "possible deadlock in {}"}
        if _LOCKDEP_HELD_RE.match(s):
            return "LOCKDEP", STACK_POLICY, {"title": "WARNING: still has locks held in {}", "stackless": True}
        return None
    if _SOFT_RE.match(s):
        return "SOFTLOCKUP", STACK_POLICY, {}
    if "LOCKUP" in s and _HARD_RE.match(s):
        return "HARDLOCKUP", STACK_POLICY, {}
    if _RCU_RE.match(s):
        return "RCU_STALL", STACK_POLICY, {}
    if s.startswith("BUG: "):
        if _WQ_RE.match(s):
            return "WQ_LOCKUP", BLOCK_POLICY, {"stackless": True}
        m = _KASAN_RE.match(s)
        if m:
            return "KASAN", EQ_POLICY, {"what": m.group(1), "func": m.group(2)}
        m = _KFENCE_RE.match(s)
        if m:
            return "KFENCE", EQ_POLICY, {"what": m.group(1), "func": m.group(2)}
        m = _KMSAN_RE.match(s)
        if m:
            return "KMSAN", EQ_POLICY, {"what": m.group(1), "func": m.group(2)}
        m = _KCSAN_RE.match(s)
        if m:
            return "KCSAN", EQ_POLICY, {"what": m.group(1), "func": m.group(2), "func2": m.group(3)}
        m = _PF_RE.match(s)
        if m:
            return "PAGE_FAULT", TRACE_POLICY, {"null": bool(m.group(2)) or m.group(1) == "kernel NULL pointer "
                                                                                   "dereference"}
        m = _ATOMIC_RE.match(s)
        if m:
            return "ATOMIC_SLEEP", STACK_POLICY, {"what": m.group(1)}
        if _LOCKDEP_MAX_RE.match(s):
            return "LOCKDEP", STACK_POLICY, {"title": s, "stackless": True}
        return "BUG", STACK_POLICY, {"what": s[5:], "generic": True}
    if s.startswith("[ BUG: ") and s in _LOCKDEP:
        return "LOCKDEP", STACK_POLICY, {"title": _LOCKDEP[s]}
    if s.startswith("kernel BUG at "):
        m = _KBUG_RE.match(s)
        return "KERNEL_BUG", TRACE_POLICY, {"loc": m.group(1) if m else ""}
    if s.startswith("Kernel panic - not syncing"):
        m = _PANIC_RE.match(s)
        return "PANIC", STACK_POLICY, {"reason": m.group(1).strip() if m else ""}
    if s.startswith("UBSAN: "):
        return "UBSAN", TRACE_POLICY, {"what": _UBSAN_RE.match(s).group(1)}
    if s.startswith("unreferenced object"):
        return ("MEMLEAK", STACK_POLICY, {}) if _MEMLEAK_RE.match(s) else None
    m = _OOPS_RE.match(s)
    if m:
        if m.group(1):
            return "GPF", TRACE_POLICY, {}
        what = m.group(2) or ("PANIC: double fault" if s.startswith("PANIC: double fault") else "Oops")
        return "OOPS", TRACE_POLICY, {"what": "stack segment fault" if what == "stack segment" else what}
    m = _SLUB_RE.match(s)
    if m:
        return "BUG", STACK_POLICY, {"what": m.group(2), "generic": True}
    return None
