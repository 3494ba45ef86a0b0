#!/usr/bin/env python3
"""kharness entry point: ./harness.py <command> (see ./harness.py --help)."""
import os
import sys
from pathlib import Path

# Re-exec under the project's virtualenv when started with a bare python3.
_venv_python = Path(__file__).resolve().parent / ".venv" / "bin" / "python"
if _venv_python.exists() and Path(sys.prefix).resolve() != _venv_python.parent.parent.resolve():
    os.execv(str(_venv_python), [str(_venv_python), *sys.argv])

from kharness.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
