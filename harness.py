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

if __name__ == "__main__":
    sys.exit(main())
