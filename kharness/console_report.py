"""One kernel report as the console analyzer reads it: its state and how one of its lines is read.

console.py decides which report a console line belongs to, when a report starts and when
it is complete; a Report takes the line and follows its stack (<TASK>/<IRQ> markers, frames,
RIP lines, "Call Trace:" and other stack sections) and the values its format row asks for
from body lines, and says whether the line closed the stack (CLOSE) or came after its end
(STACK_ENDED).  Pure: one line in, the report's state out; titles are console_titles.py's.
"""

from __future__ import annotations

from .console_formats import (
    ARM_FRAME_RE, AT_RE, CALLTRACE_RE, FRAME_RE, MARKER_RE, RIP_RE, SECTION_RE, STACK_FOLLOW_RE, STACK_NOISE_RE,
    STACK_POLICY, Row, clean_func,
)
from .console_titles import Frame, stall_frame

_new_frame = tuple.__new__     # Frame(...) without NamedTuple's argument handling, per stack line

CLOSE, STACK_ENDED = 1, 2      # what a line did to its report's stack (absorb())
STALL_GRACE_LINES = 200        # lines a stall report reads on for the stalled CPU's stack
_MAX_FOREIGN = 2               # interleaved lines a marker-less stack tolerates


class Report:
    """A report being read: its lines and what its title needs."""
    __slots__ = ("row", "type", "line", "ctx", "lines", "policy", "frames", "sections", "info", "depth",
                 "in_stack", "stack_no", "stack_frames", "foreign", "grace", "wait_task", "last_seen", "seen_oops", "want", "stackless",
                 "multi_cpu", "evidence")

    def __init__(self, row: Row, line: int, ctx: str | None, text: str, info: dict):
        self.row = row
        self.type = row.type
        self.line = line
        self.ctx = ctx
        self.lines = [text]
        self.policy = row.end
        self.frames: list[Frame] = []
        self.sections: list[str] = []  # the label of every stack section ("Call Trace:", "Freed by task 1:")
        self.info = info
        self.depth: list[str] = []     # open <TASK>/<IRQ>/<NMI> sections
        self.in_stack = False
        self.stack_no = -1
        self.stack_frames = 0
        self.grace: int | None = None  # lines a stall report waits for a stack that names it
        self.foreign = 0               # unrelated lines seen inside a stack without <TASK> markers
        self.wait_task = False         # the outermost <IRQ>/<NMI> closed: only a <TASK> may continue
        self.last_seen = line
        self.seen_oops = False
        self.want: str | None = None   # the info key the next "at: f+0x" (or frame) line fills
        self.stackless = row.stackless
        self.multi_cpu = row.type in ("RCU_STALL", "HARDLOCKUP", "SOFTLOCKUP")
        self.evidence = False

    def stall_goes_on(self) -> bool:
        """A stall or lockup report whose stacks so far name nothing (the RCU grace-period
        kthread's, the reporting interrupt's) goes on to the next stack, the stalled CPU's."""
        if not self.row.stall or stall_frame(self.frames, self.row.skip, self.type == "RCU_STALL",
                                              self.ctx is None) is not None:
            return False
        if self.grace is None:
            self.grace = STALL_GRACE_LINES
        self.in_stack = False
        self.depth = []
        self.stack_frames = 0
        self.wait_task = False
        return True

    def absorb(self, text: str, s: str) -> int:
        """Collect what the title needs from one line of a report; follow its stack."""
        if s[:1] == "<" and s[-1:] == ">":
            m = MARKER_RE.match(s)
            if m:
                mk = m.group(1)
                if mk.startswith("</") or mk == "<EOI>":
                    if self.depth:
                        self.depth.pop()
                    if not self.depth and self.in_stack and self.policy == STACK_POLICY and not self.stackless:
                        if mk == "</TASK>":
                            return CLOSE
                        self.wait_task = True
                else:
                    self.depth.append(mk[1:-1])
                    self.in_stack = True
                return 0
        if CALLTRACE_RE.match(text):
            self.in_stack = True
            self._section(s)
            self.evidence = True
            return 0
        fm = FRAME_RE.match(text) if (text[:1] in " \t[" or self.in_stack) else None
        if fm:
            unreliable, name, off, path = fm.groups()
            if off or path:            # inlined _frame(): this is the per-stack-line path
                depth = self.depth
                if "." in name or name[:2] == "_Z":
                    name = clean_func(name)
                self.frames.append(_new_frame(Frame, (name, unreliable is None, bool(depth) and depth[-1] != "TASK",
                                                     self.stack_no, path, False)))
                self.stack_frames += 1
                if self.want and self.want not in self.info:
                    self.info[self.want] = name
                self.foreign = 0
                return 0
        if text[:2] == "[<":
            fm = ARM_FRAME_RE.match(text)
            if fm:
                # "(callee) from (caller+0x..)": the caller is the next line's callee, but for the last line
                if not self.frames or self.frames[-1].name != clean_func(fm.group(1)):
                    self._frame(fm.group(1), True, None)
                self._frame(fm.group(2), True, None)
                self.foreign = 0
                return 0
        if s.startswith(("RIP: ", "pc : ", "NIP ", "EIP: ", "PC is at ", "epc : ", "IP: ")):
            m = RIP_RE.match(s)
            if m and not m.group(1).startswith("0x"):
                self.stack_frames = 0     # a kernel context starts: its frames follow the registers
                self.frames.append(Frame(clean_func(m.group(1)), True, bool(self.depth) and self.depth[-1] != "TASK",
                                        self.stack_no, m.group(2), True))
            return 0
        if self.in_stack and not self.depth and self.stack_frames and self.policy == STACK_POLICY \
                and not self.stackless and not STACK_NOISE_RE.match(text):
            # A stack without <TASK> markers ended before this line, unless the line is
            # another printer's, interleaved (old kernels print no caller context).
            if self.ctx is not None or STACK_FOLLOW_RE.match(text) or self.foreign >= _MAX_FOREIGN:
                return STACK_ENDED
            self.foreign += 1
            return 0
        if s.startswith("CPU: "):
            self.evidence = True
        elif (s[-1:] == ":" or s[:3] == "...") and SECTION_RE.match(text):
            self._section(s)
        body = self.row.body
        if body:
            for pat, key in body:
                if key[0] == "+":
                    if key[1:] not in self.info and pat.search(s):
                        self.want = key[1:]
                elif key not in self.info:
                    m = pat.match(s)
                    if m:
                        self.info[key] = m.group(key) if key in pat.groupindex else m.group(0)
            if self.want and self.want not in self.info:
                m = AT_RE.search(s)
                if m:
                    self.info[self.want] = clean_func(m.group(1))
        return 0

    def _section(self, label: str) -> None:
        self.stack_no += 1
        self.stack_frames = 0
        self.sections.append(label)

    def _frame(self, name: str, reliable: bool, path: str | None) -> None:
        in_irq = bool(self.depth) and self.depth[-1] != "TASK"
        name = clean_func(name)
        self.frames.append(_new_frame(Frame, (name, reliable, in_irq, self.stack_no, path, False)))
        self.stack_frames += 1
        if self.want and self.want not in self.info:
            self.info[self.want] = name

    def continues(self, row: Row) -> bool:
        """Header-looking lines that are part of the open report: the "Oops:" (or "invalid opcode:",
        "Internal error:") line that follows "BUG: unable to handle page fault", "kernel BUG at"
        or ARM's "Unhandled fault:" (see page_fault_oops(), die())."""
        if row.type == "OOPS" and self.type in ("PAGE_FAULT", "KERNEL_BUG", "BUG", "OOPS") and not self.seen_oops \
                and not (self.type == "OOPS" and self.row.title.startswith(("general", "divide", "int3", "stack", "PANIC",
                                                                           "kernel stack", "Oops", "Internal"))):
            self.seen_oops = True
            return True
        return False
