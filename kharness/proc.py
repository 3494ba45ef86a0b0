"""The one place subprocesses are started: every command is logged with its output kept."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Callable, Sequence

from .errors import InfraError


def run(argv: Sequence[str], log: Path, *, cwd: Path | None = None, env: dict | None = None,
        on_line: Callable[[str], None] | None = None, check: bool = True) -> int:
    """Run argv, appending the command line and its combined output to `log`.

    on_line, when given, sees every output line as it arrives (progress display).
    A non-zero exit raises InfraError naming the log unless check=False.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ, **(env or {}))
    with open(log, "a", encoding="utf-8", errors="replace") as out:
        out.write(f"$ {shlex.join(str(a) for a in argv)}\n")
        out.flush()
        # Its own process group, so an interrupt can take down grandchildren too
        # (make's compilers, debootstrap's chrooted dpkg).
        proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", bufsize=1, start_new_session=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if on_line:
                    on_line(line.rstrip("\n"))
            rc = proc.wait()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
        out.write(f"[exit {rc}]\n")
    if check and rc != 0:
        raise InfraError(f"{shlex.join(str(a) for a in argv[:3])}... failed with status {rc}; log: {log}")
    return rc


def capture(argv: Sequence[str], *, cwd: Path | None = None, env: dict | None = None) -> str:
    """Run a short query command (git rev-parse, gcc --version) and return its stdout."""
    full_env = dict(os.environ, **(env or {}))
    res = subprocess.run([str(a) for a in argv], cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise InfraError(f"{shlex.join(str(a) for a in argv)} failed: {res.stderr.strip()[:300]}")
    return res.stdout
