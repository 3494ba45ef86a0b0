"""Reading the files a user hands the harness: configs, manifests, patches, fragments, records.

One guard for all of them: a regular file only (a FIFO would block, /dev/zero never ends, a
directory is a mistake), at most a size that fits the kind of file, read with a bounded read,
and text that is not UTF-8 is one line naming the file, the line and the byte offset. Every
problem is a UserError of one line: what, where, how to fix it.
"""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from .errors import UserError

KIB, MIB = 1 << 10, 1 << 20

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def describe_mode(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def human(n: int) -> str:
    return f"{n >> 20} MiB" if n >= MIB else f"{n >> 10} KiB" if n >= KIB else f"{n} bytes"


def open_regular(path: str | Path, what: str):
    """A binary file object of `path`, which must be a regular file (one line if not).
    Opened non-blocking, so a FIFO without a writer is refused at once instead of waiting."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise UserError(f"{path}: cannot read {what}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path}: {what} is {describe_mode(st.st_mode)}, not a regular file; give the file itself")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_text(path: str | Path, what: str) -> io.TextIOWrapper:
    """open_regular() as text (invalid UTF-8 replaced): for logs and job output shown in reports."""
    return io.TextIOWrapper(open_regular(path, what), encoding="utf-8", errors="replace")


def bounded_lines(f, limit: int = 64 * KIB):
    """The lines of a text file, each cut at `limit` characters (the rest of a longer line is
    skipped, so line numbers stay right and one endless line costs no more than `limit`)."""
    while line := f.readline(limit):
        rest = line
        while not rest.endswith("\n") and (rest := f.readline(limit)):
            pass
        yield line


def check_regular(path: str | Path, what: str) -> os.stat_result:
    """stat() of a file that must be a regular file, without opening it (one line if not)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UserError(f"{path}: cannot read {what}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: {what} is {describe_mode(st.st_mode)}, not a regular file; give the file itself")
    return st


def read_bytes(path: str | Path, what: str, limit: int) -> bytes:
    """The whole of a regular file of at most `limit` bytes (one line if it is anything else)."""
    with open_regular(path, what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise UserError(f"{path}: cannot read {what}: {e.strerror}") from None
    if len(data) > limit:
        raise UserError(f"{path}: {what} is larger than {human(limit)}, more than a {what} can be; "
                        f"is it the right file?")
    return data


def decode(data: bytes, path: str | Path, what: str) -> str:
    """UTF-8 text, or one line naming the line and byte offset of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{line}: {what} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                        f"save it as UTF-8") from None


def read_text(path: str | Path, what: str, limit: int) -> str:
    """A regular UTF-8 text file of at most `limit` bytes (one line if not)."""
    return decode(read_bytes(path, what, limit), path, what)
