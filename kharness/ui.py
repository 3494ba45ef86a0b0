"""Terminal output: stage lines, live progress for long steps, the final table.

Everything the harness says to the user goes through here (rich on a terminal,
plain lines otherwise), so that modules only say *what* happened.
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

# soft_wrap: a line is never cut at the terminal's (or, piped, rich's default 80) columns: a log
# reader greps stage, info and warning lines whole.
console = Console(stderr=True, highlight=False, soft_wrap=True)

# -j N: each guest's thread says which guest it speaks for ("guest 2: ..."); its progress
# lines are plain (one live line at a time is all a terminal shows).
_thread = threading.local()


def set_guest(label: str | None) -> None:
    """Prefix what this thread says with `label: ` (None: no prefix)."""
    _thread.label = label


def _tag() -> str:
    label = getattr(_thread, "label", None)
    return f"{label}: " if label else ""


def stage(msg: str) -> None:
    console.print(f"[bold]==>[/bold] {_tag()}{msg}")


def info(msg: str) -> None:
    console.print(f"    {_tag()}{msg}")


def warn(msg: str) -> None:
    """One line whatever its length or the newlines in it (a log reader greps for it), the message
    taken literally."""
    console.print(f"[yellow]warning:[/yellow] {escape(_tag() + ' '.join(msg.splitlines()))}")


class Progress:
    """A one-line live status for a long step (kernel build, debootstrap, boot).

    update() may be called from any thread, as often as wanted; the line is
    redrawn a few times a second on a terminal and printed every 30 s otherwise
    (so CI logs show liveness without flooding).
    """

    def __init__(self, label: str):
        self.label = label
        self.start = time.monotonic()
        self.detail = ""
        self._last_plain = 0.0
        self._live: Live | None = None

    def _text(self) -> Text:
        el = int(time.monotonic() - self.start)
        return Text(f"    {self.label}: {self.detail}  [{el // 60}:{el % 60:02d}]")

    def update(self, detail: str) -> None:
        self.detail = detail
        if self._live:
            self._live.update(self._text())
        elif time.monotonic() - self._last_plain >= 30:
            self._last_plain = time.monotonic()
            console.print(self._text())

    def elapsed(self) -> float:
        return time.monotonic() - self.start


@contextmanager
def progress(label: str):
    label = _tag() + label
    p = Progress(label)
    if console.is_terminal and not _tag():
        with Live(p._text(), console=console, refresh_per_second=4, transient=True) as live:
            p._live = live
            yield p
    else:
        p._last_plain = time.monotonic()
        yield p
    console.print(f"    {label}: {p.detail} ({p.elapsed():.1f} s)")


def out(msg: str = "") -> None:
    """Command results (artifact paths, tables) go to stdout, not the log stream."""
    print(msg, file=sys.stdout, flush=True)
