"""Console analyzer: kernel problem reports in console/dmesg text -> Findings.

Pure code: text in, values out.  Feed it text as it arrives (any chunking); a
finding is returned as soon as its report is complete.  Titles are syzbot's
("INFO: task hung in f", "WARNING in f", "possible deadlock in f", ...).

The report formats (one row per report type: header, title template, where the
guilty frame is read from, how it ends) are console_formats.FORMATS; titles are
made by console_titles.py from what a console_report.Report collects while it reads
its lines: stack frames (with their <IRQ>/<TASK> context and section), RIP lines, and
the values the row asks for from body lines.  This module routes each line to its
report and decides where reports start and end.

How a report ends, so that feed() never waits for text that will not come:
  - "---[ end trace" (WARN, BUG, oops, UBSAN) or the closing "=====" line
    (KASAN, KFENCE, KMSAN, KCSAN);
  - otherwise the end of its stack: "</TASK>" closing the outermost section,
    or, for stacks without <TASK> markers, the first line that is not a frame.
    A hung-task report is thus returned by the feed() that brings its
    "</TASK>" line;
  - a new report starting in the same printk context, a line budget, or
    finish().
A stall report reads on past stacks that do not name the stall (the RCU grace-period
kthread's dump) to the stalled CPU's backtrace, for at most console_report.STALL_GRACE_LINES lines.
Lines that follow a completed report and plainly belong to it (the 7.x
"is blocked on a mutex likely owned by" blocker dump, lockdep's held-locks
list, the rest of an RCU stall dump, a panic caused by it) are appended to
that finding's report text in place.

With CONFIG_PRINTK_CALLER every line carries its context ("[ T123]" task or
"[ C1]" CPU); lines of other tasks are then kept out of a report, which is how
interleaved output from several CPUs is told apart.  Without it, a report
tolerates foreign lines inside its stack (between <TASK> and </TASK>).

Memory stays bounded whatever the input: a line is read up to _MAX_LINE characters (a
line without end too), a report and its tail keep _MAX_REPORT_LINES lines each, and the
findings keep _MAX_REPORT_TEXT characters of report text in all (then their header line).
Stray bytes before a line (NUL, control characters, undecodable bytes) are dropped
(console_formats.split_line).
"""

from __future__ import annotations

import bisect
from collections import deque

from .console_formats import (
    CONSEQUENCE_PANIC_RE, END_TRACE, EQ_LINE_RE, EQ_POLICY, FORMATS, GLUED_TS_RE, KEYWORD_RE, KEYWORDS, KIND,
    TAIL_RE, TRACE_POLICY, TS_RE, Row, match_header, split_line,
)
from .console_report import CLOSE, STACK_ENDED, Report
from .console_titles import report_title
from .model import Finding

_REFCOUNT_ROW = next(r for r in FORMATS if r.type == "REFCOUNT")

_RECENT_LINES = 20            # lines remembered for looking back from a header
_MAX_REPORT_LINES = 800        # own lines before a report is closed regardless (and tail lines kept)
_MAX_LINE = 4096               # characters of a line read; the rest of a longer line is dropped
_MAX_REPORT_TEXT = 64 << 20    # characters of report text kept over all findings; then header lines only
_MAX_OCCURRENCES = 1000        # start lines kept per finding (count goes on)
_MAX_IDLE_LINES = 2000         # stream lines without an own line before a report is closed
_TAIL_IDLE_LINES = 400         # stream lines after which a report's tail is forgotten


class _Tail:
    """Lines after a completed report that still belong to it go to its finding's report."""
    __slots__ = ("finding", "ctx", "last", "multi_cpu", "room")

    def __init__(self, finding: Finding | None, ctx: str | None, last: int, multi_cpu: bool):
        self.finding = finding
        self.ctx = ctx
        self.last = last
        self.multi_cpu = multi_cpu
        self.room = _MAX_REPORT_LINES      # lines it may still add to the finding's report


class ConsoleAnalyzer:
    """Streaming analyzer: feed() text as it arrives, finish() at the end of the stream."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.line_count = 0
        self._by_key: dict[tuple[str, str], Finding] = {}
        self._partial = ""
        self._active: dict[str | None, Report] = {}
        self._tails: dict[str | None, _Tail] = {}
        self._recent: deque[tuple[int, str]] = deque(maxlen=_RECENT_LINES)
        self._ts_seen = False
        self._new: list[Finding] = []
        self._last_finding: Finding | None = None
        self._last_finding_end = 0
        self._report_text = 0          # characters of report text the findings hold

    # -- public -------------------------------------------------------------

    def feed(self, text: str) -> list[Finding]:
        """Take any chunk of console text; return the findings it completed (new ones only)."""
        self._new = []
        nl = text.rfind("\n")
        if nl < 0:
            if len(self._partial) < _MAX_LINE:      # a line without end is read as far as _MAX_LINE
                self._partial += text[:_MAX_LINE - len(self._partial)]
            return []
        block = self._partial + text[:nl + 1] if self._partial else text[:nl + 1]
        self._partial = text[nl + 1:nl + 1 + _MAX_LINE]
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
        nxt = dict.fromkeys(KEYWORDS, -2)      # next index of each keyword in block (-1: none)
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
            self._line(block[pos:end] if end - pos <= _MAX_LINE else block[pos:pos + _MAX_LINE])
            pos = end + 1

    def _skip(self, block: str, a: int, b: int) -> None:
        """Lines block[a:b] hold no report: count them and remember the last few."""
        count = block.count("\n", a, b)
        end = b - 1
        tail = []
        for _ in range(min(count, self._recent.maxlen)):
            s = block.rfind("\n", a, end)
            st = s + 1 if s >= 0 else a
            tail.append(block[st:end] if end - st <= _MAX_LINE else block[st:st + _MAX_LINE])
            end = s
        first = self.line_count + count - len(tail) + 1
        for i, raw in enumerate(reversed(tail)):
            self._recent.append((first + i, raw))
        self.line_count += count

    def _line(self, raw: str) -> None:
        no = self.line_count
        ctx, has_ts, text = split_line(raw)
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
        if not (KEYWORD_RE.search(s) and self._header(no, ctx, has_ts, s, rep)):
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

    def _route(self, ctx: str | None) -> Report | None:
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
        return not any(TS_RE.match(r) for _, r in list(self._recent)[-8:])

    def _header(self, no: int, ctx: str | None, has_ts: bool, s: str, rep: Report | None) -> bool:
        """Start a report if s is a report header; True if the line was consumed."""
        found = match_header(s)
        if found is None and "] " in s:
            # a kernel line glued to the end of another ("...allocation failure: 34 bytes[   76.4] BUG: ...")
            m = GLUED_TS_RE.search(s)
            if m:
                s = s[m.end():].strip()
                found = match_header(s)
        if found is None or not self._kernel_line(has_ts, ctx):
            return False
        row, info = found
        if rep is not None and rep.ctx == ctx and rep.continues(row):
            return False
        if row.type == "PANIC" and self._panic_is_consequence(no, ctx, s, info):
            return True
        old = self._active.get(ctx)
        if row.oneline and old is not None:
            one = Report(row, no, ctx, s, info)       # printed by another task into this report
            self._close(one, tail=False)
            return True
        if old is not None:
            self._close(old)
        self._tails.pop(ctx, None)
        new = self._precursor(row, ctx, s) if row.type == "OOPS" else None
        if new is None:
            new = Report(row, no, ctx, s, info)
        if row.type in ("WARNING", "REFCOUNT", "UBSAN"):
            self._prepend_cut_here(new, ctx)
        self._active[ctx] = new
        return True

    def _precursor(self, row: Row, ctx: str | None, s: str) -> Report | None:
        """ARM and RISC-V print the fault ("Unable to handle kernel paging request at ...",
        "Unhandled fault: ...") a few lines before die()'s "Internal error: ... [#1]": the
        report starts at that earlier line (the oldest such in the recent lines of ctx)."""
        recent = list(self._recent)
        for i, (pno, raw) in enumerate(recent):
            c, _, t = split_line(raw)
            if c != ctx:
                continue
            found = match_header(t.strip())
            if found is not None and found[0].precedes_die:
                prow, pinfo = found
                rep = Report(prow, pno, ctx, t.strip(), pinfo)
                for _, r in recent[i + 1:]:
                    c2, _, t2 = split_line(r)
                    if c2 == ctx:
                        rep.lines.append(t2.rstrip())
                rep.lines.append(s)
                rep.seen_oops = True
                return rep
        return None

    def _prepend_cut_here(self, rep: Report, ctx: str | None) -> None:
        """WARN(): take in "[ cut here ]" and the message printed before the WARNING line."""
        recent = list(self._recent)[-6:]
        for i in range(len(recent) - 1, -1, -1):
            c, _, t = split_line(recent[i][1])
            if c == ctx and "[ cut here ]" in t:
                pre = [t.strip() for c2, _, t in (split_line(r) for _, r in recent[i:]) if c2 == ctx]
                rep.lines[:0] = pre
                if rep.type == "WARNING" and any(p.startswith("refcount_t: ") for p in pre):
                    rep.row, rep.type = _REFCOUNT_ROW, "REFCOUNT"
                return

    def _panic_is_consequence(self, no: int, ctx: str | None, s: str, info: dict) -> bool:
        """A panic that only follows from a report just printed (panic_on_warn, panic_on_oops,
        hung_task_panic, ...) joins that report instead of making a finding of its own."""
        if not CONSEQUENCE_PANIC_RE.match(info.get("reason", "")):
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

    def _report_line(self, rep: Report, no: int, ctx: str | None, text: str, s: str) -> None:
        if rep.wait_task:
            rep.wait_task = False
            # the interrupted task's stack follows: "<TASK>", or in older kernels its RIP line
            if s not in ("<TASK>", "<IRQ>", "<NMI>", "<SOFTIRQ>") and not s.startswith("RIP: ") \
                    and not rep.stall_goes_on():
                self._close(rep)
                self._tail_line(no, ctx, text)
                return
        rep.last_seen = no
        status = rep.absorb(text, s)
        if status == STACK_ENDED and rep.stall_goes_on():
            status = rep.absorb(text, s)
        if status == STACK_ENDED:
            self._close(rep)
            self._tail_line(no, ctx, text)
            return
        if rep.grace is not None:
            rep.grace -= 1
            if rep.grace <= 0:
                self._close(rep)
                self._tail_line(no, ctx, text)
                return
        if rep.stackless and len(rep.lines) > 1 and not TAIL_RE.match(text) and \
                not s.startswith(("rcu:", "workqueue ", "pool ", "Showing ")):
            self._close(rep)          # a report without a stack ends at its first foreign line
            self._tail_line(no, ctx, text)
            return
        rep.lines.append(text.rstrip())
        if status == CLOSE and rep.stall_goes_on():
            return
        if status == CLOSE or len(rep.lines) >= _MAX_REPORT_LINES:
            self._close(rep)
        elif rep.policy == TRACE_POLICY:
            if s.startswith(END_TRACE) or (rep.type == "UBSAN" and EQ_LINE_RE.match(s)):
                self._close(rep)
        elif rep.policy == EQ_POLICY:
            if EQ_LINE_RE.match(s):
                self._close(rep)
        elif s.startswith("---[ end Kernel panic"):
            self._close(rep)

    def _close(self, rep: Report, tail: bool = True) -> None:
        """The report is complete: title it, record (or count) the finding, open its tail."""
        if self._active.get(rep.ctx) is rep:
            del self._active[rep.ctx]
        if (rep.row.generic and not rep.evidence) or (rep.row.confirm and rep.row.confirm not in rep.info):
            return      # a bare "BUG: ..." line without CPU or stack lines is no kernel report
        t = report_title(rep.row, rep.info, rep.frames, rep.sections, guess=rep.ctx is None)
        key = (rep.type, t.title)
        f = self._by_key.get(key)
        mine = None
        if f is None:
            text = "\n".join(rep.lines) if self._report_text < _MAX_REPORT_TEXT else rep.lines[0]
            self._report_text += len(text)
            f = mine = Finding(KIND[rep.type], rep.type, t.title, rep.line, text, 1, [rep.line],
                               corrupted=t.corrupted, alt_titles=list(t.alt))
            self._by_key[key] = f
            i = bisect.bisect_right([x.line for x in self.findings], rep.line)
            self.findings.insert(i, f)
            self._new.append(f)
        else:
            f.count += 1
            if len(f.lines) < _MAX_OCCURRENCES:
                f.lines.append(rep.line)
            f.line = min(f.line, rep.line)
        if tail:
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
        if not TAIL_RE.match(text):
            if tail.ctx is None or ctx == tail.ctx:
                del self._tails[tail.ctx]
            return
        tail.last = no
        if tail.finding is not None and tail.room > 0 and self._report_text < _MAX_REPORT_TEXT:
            tail.room -= 1
            text = text.rstrip()
            self._report_text += len(text) + 1
            tail.finding.report += "\n" + text


def analyze(text: str) -> list[Finding]:
    """All findings in a complete text."""
    a = ConsoleAnalyzer()
    a.feed(text)
    a.finish()
    return a.findings
