#!/bin/sh
'''':; py="${0%/*}/.venv/bin/python"; [ -x "$py" ] || py=python3; exec "$py" "$0" "$@" # '''
# ^ sh and Python at once. As ./harness.py, /bin/sh runs the line above: it starts the
# checkout's .venv Python directly (sh builtins only), instead of `#!/usr/bin/env python3`
# starting whatever python3 PATH finds first (a pyenv shim took 0.2-1.0 s here) only to
# re-exec into .venv. For Python the line is a string.
"""kharness entry point: ./harness.py <command> (see ./harness.py --help)."""
import os
import sys
from pathlib import Path

# Re-exec under the project's virtualenv when started with a bare python3 (python3 harness.py).
_venv_python = Path(__file__).resolve().parent / ".venv" / "bin" / "python"
if _venv_python.exists() and Path(sys.prefix).resolve() != _venv_python.parent.parent.resolve():
    os.execv(str(_venv_python), [str(_venv_python), *sys.argv])

# With PYTHONDONTWRITEBYTECODE set, every run compiled kharness' own modules again (0.15-0.3 s
# here): their bytecode goes under .venv/ instead, the virtualenv this checkout made for itself
# (already full of bytecode), never into the checkout. PYTHONPYCACHEPREFIX, if set, is used as is.
if sys.dont_write_bytecode and not sys.pycache_prefix and _venv_python.exists():
    sys.pycache_prefix = str(_venv_python.parent.parent / "pycache")
    sys.dont_write_bytecode = False

from kharness.cli import main  # noqa: E402

def _exit(status: int) -> None:
    """Leave without tearing the interpreter down: freeing every module and object after a run
    took 0.1-0.3 s here, and nothing of ours needs it. What an ordinary exit does for us is done
    first: non-daemon threads joined, atexit handlers run (vm.kill_all, tempfile cleanup,
    logging), the standard streams flushed (every file of ours is closed or flushed per write)."""
    import atexit
    import threading
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):      # a closed pipe (`| head`): an ordinary exit would not mind either
            pass
    os._exit(status)


if __name__ == "__main__":
    _exit(main() or 0)
