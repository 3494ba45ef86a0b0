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
  - a new report starting in the same printk context, a new boot (the kernel's
    "Linux version" line), a line budget, or finish().
A new boot that follows a running kernel unannounced (no report open, no "reboot:"
line, no harness boot line before it) is itself a finding, "unexpected kernel reboot".
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
    BOOT_BANNER_RE, BOOT_EXPECTED_RE, CONSEQUENCE_PANIC_RE, END_TRACE, EQ_LINE_RE, EQ_POLICY, FORMATS, GLUED_TS_RE,
    KERNEL_FACILITY_RE, KEYWORD_RE, KEYWORDS, KIND, NOT_OUTPUT_RE, TAIL_RE, TRACE_POLICY, TS_RE, Row, match_header,
    split_line,
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
        # the last lines read: (line number, raw line), or a run of skipped lines not yet cut
        # into lines (block, start, end, count, last line number; see _skip and _recent_lines)
        self._recent: deque[tuple] = deque(maxlen=_RECENT_LINES)
        self._skipped = False          # _recent holds such a run
        self._ts_seen = False
        self._new: list[Finding] = []
        self._last_finding: Finding | None = None
        self._last_finding_end = 0
        self._report_text = 0          # characters of report text the findings hold
        self._booted = False           # a kernel's "Linux version" line was read
        self._tail_cut = 0             # the line that last ended a report's tail

    # -- public -------------------------------------------------------------

    def feed(self, text: str) -> list[Finding]:
        """Take any chunk of console text; return the findings it completed (new ones only)."""
        self._new = []
        nl = text.rfind("\n")
        if nl < 0:
            if len(self._partial) < _MAX_LINE:      # a line without end is read as far as _MAX_LINE
                self._partial += text[:_MAX_LINE - len(self._partial)]
            return []
        start = 0
        if self._partial:
            # the line begun in the last chunk, on its own: the rest is scanned in place, uncopied
            start = text.index("\n") + 1
            line = self._partial + text[:start]
            self._scan(line, 0, len(line))
        self._partial = text[nl + 1:nl + 1 + _MAX_LINE]
        if start <= nl:
            self._scan(text, start, nl + 1)
        return self._new

    def finish(self) -> list[Finding]:
        """End of stream: the last partial line, then every open report, completes."""
        self._new = []
        if self._partial:
            line, self._partial = self._partial, ""
            self.line_count += 1
            self._line(line)
        for rep in sorted(self._active.values(), key=lambda r: r.line):
            self._close(rep, end=True)
        self._active.clear()
        self._tails.clear()
        return self._new

    # -- scanning -----------------------------------------------------------

    def _scan(self, block: str, pos: int, n: int) -> None:
        """Lines block[pos:n] (whole lines) outside reports are skipped at C speed: only lines
        holding a header keyword, and every line while a report or its tail is open, go
        through _line()."""
        nxt = dict.fromkeys(KEYWORDS, -2)      # next index of each keyword in block (absent ones dropped)
        while pos < n:
            if not self._active and not self._tails:
                best = n
                gone = None
                for k, i in nxt.items():
                    if i < pos:
                        i = nxt[k] = block.find(k, pos, n)
                        if i == -1:
                            gone = (gone or []) + [k]
                            continue
                    if i < best:
                        best = i
                if gone:
                    for k in gone:
                        del nxt[k]
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
        if self._skipped:
            self._recent_lines()       # keep no reference to the block past this feed

    def _skip(self, block: str, a: int, b: int) -> None:
        """Lines block[a:b] hold no report: count them.  The last few are cut out of the block
        only when a header looks back at them (_recent_lines): most such runs never are."""
        count = block.count("\n", a, b)
        if count:
            self.line_count += count
            self._recent.append((block, a, b, count, self.line_count))
            self._skipped = True

    def _recent_lines(self) -> deque:
        """The last _RECENT_LINES lines read, oldest first, as (line number, raw line)."""
        if not self._skipped:
            return self._recent
        n = self._recent.maxlen
        out: list[tuple[int, str]] = []
        for item in reversed(self._recent):
            if len(item) == 2:
                out.append(item)
            else:
                block, a, b, count, no = item
                end = b - 1
                for _ in range(min(count, n - len(out))):
                    s = block.rfind("\n", a, end)
                    st = s + 1 if s >= 0 else a
                    out.append((no, block[st:end] if end - st <= _MAX_LINE else block[st:st + _MAX_LINE]))
                    no -= 1
                    end = s
            if len(out) >= n:
                break
        out.reverse()
        self._recent = deque(out, maxlen=n)
        self._skipped = False
        return self._recent

    def _recent_newest_first(self):
        """The recent lines, newest first, cut out of their blocks only as far as they are read."""
        n = self._recent.maxlen
        k = 0
        for item in reversed(self._recent):
            if len(item) == 2:
                yield item
                k += 1
            else:
                block, a, b, count, no = item
                end = b - 1
                for _ in range(min(count, n - k)):
                    s = block.rfind("\n", a, end)
                    st = s + 1 if s >= 0 else a
                    yield no, (block[st:end] if end - st <= _MAX_LINE else block[st:st + _MAX_LINE])
                    no -= 1
                    end = s
                    k += 1
            if k >= n:
                return

    def _line(self, raw: str) -> None:
        no = self.line_count
        ctx, has_ts, text = split_line(raw)
        if has_ts:
            self._ts_seen = True
        s = text.strip()
        if s.startswith("kmemleak: "):
            text = text[text.index("kmemleak: ") + 10:]
            s = text.strip()
        rep = self._route(ctx)
        if not (KEYWORD_RE.search(s) and self._header(no, ctx, has_ts, s, rep, raw)):
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
        return not any(TS_RE.match(r) for _, r in list(self._recent_lines())[-8:])

    def _header(self, no: int, ctx: str | None, has_ts: bool, s: str, rep: Report | None, raw: str) -> bool:
        """Start a report if s is a report header; True if the line was consumed."""
        found = match_header(s)
        if found is None and "] " in s:
            # a kernel line glued to the end of another ("...allocation failure: 34 bytes[   76.4] BUG: ...")
            m = GLUED_TS_RE.search(s)
            if m:
                s = s[m.end():].strip()
                found = match_header(s)
        if found is None:
            return False
        row, info = found
        if row.boot:
            return self._boot(no, ctx, has_ts, s, row, info)
        if not self._kernel_line(has_ts, ctx):
            return False
        if row.proven and "dev" not in info and not KERNEL_FACILITY_RE.match(raw.lstrip()):
            return False
        if rep is not None and rep.ctx == ctx and rep.continues(row):
            return False
        if row.type == "PANIC" and self._panic_is_consequence(no, ctx, s, info):
            return True
        old = self._active.get(ctx)
        if row.oneline and old is not None and not old.row.cut:
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

    def _boot(self, no: int, ctx: str | None, has_ts: bool, s: str, row: Row, info: dict) -> bool:
        """The kernel's first line: a new boot, and whatever was open is complete.  The boot is
        the report "unexpected kernel reboot", starting at its first banner in view (firmware,
        decompressor: BOOT_BANNER_RE) or at this line, unless
          - a report was open, or its tail had not ended before the boot began: the reset is
            that report's (a panic, a stack cut short);
          - a line among the recent ones announced it (BOOT_EXPECTED_RE: the harness's boot
            line, the kernel going down, a panic's "Rebooting in");
          - it is the stream's first boot and nothing ran before it: before a banner, no line
            of output; without a banner in view, no kernel line (firmware and boot loaders print
            lines of their own)."""
        if not self._kernel_line(has_ts, ctx):
            return False                # user space printing /proc/version
        first, self._booted = not self._booted, True
        if self._active or self._tails:
            for r in sorted(self._active.values(), key=lambda r: r.line):
                self._close(r, end=True)
            self._tails.clear()
            return True
        seen = []                       # (line, context, message) newest first, up to the boot's start
        for lno, raw in self._recent_newest_first():
            c, ts, t = split_line(raw)
            t = t.strip()
            if BOOT_EXPECTED_RE.match(t):
                return True
            seen.append((lno, c is not None or ts, t))
        start = max((i for i, x in enumerate(seen) if BOOT_BANNER_RE.match(x[2])), default=-1)
        if start >= 0 and self._tail_cut >= seen[start][0]:
            return True                 # the firmware's output ended a report's tail: the reset is that report's
        before = seen[start + 1:]
        if start >= 0:
            output = not first or no - 1 > len(seen) or any(t and not NOT_OUTPUT_RE.match(t) for _, _, t in before)
        else:
            output = not first or any(k for _, k, _ in before)
        if output:
            bno, text = (seen[start][0], seen[start][2]) if start >= 0 else (no, s)
            self._close(Report(row, bno, ctx, text, info), tail=False)
        return True

    def _precursor(self, row: Row, ctx: str | None, s: str) -> Report | None:
        """ARM and RISC-V print the fault ("Unable to handle kernel paging request at ...",
        "Unhandled fault: ...") a few lines before die()'s "Internal error: ... [#1]": the
        report starts at that earlier line (the oldest such in the recent lines of ctx)."""
        recent = list(self._recent_lines())
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
        recent = list(self._recent_lines())[-6:]
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
        if rep.row.cut:
            if s and not BOOT_EXPECTED_RE.match(s):
                del self._active[rep.ctx]     # the line went on after all: no report
                self._tail_line(no, ctx, text)
            return
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

    def _close(self, rep: Report, tail: bool = True, end: bool = False) -> None:
        """The report is complete: title it, record (or count) the finding, open its tail.
        end: the stream or the boot ends here (a header cut after its keyword is a report only then)."""
        if self._active.get(rep.ctx) is rep:
            del self._active[rep.ctx]
        if (rep.row.generic and not rep.evidence) or (rep.row.confirm and rep.row.confirm not in rep.info) \
                or (rep.row.cut and not end):
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
                self._tail_cut = no
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
