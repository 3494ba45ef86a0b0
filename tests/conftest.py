import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import kharness.suites  # noqa: E402,F401  the suites register their config sections (fstests:), as cli does


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private, empty kharness cache for tests that must not see (or disturb) the real one."""
    d = tmp_path / "cache"
    monkeypatch.setenv("KHARNESS_CACHE", str(d))
    return d


def as_foreground_job() -> None:
    """preexec_fn for a harness that a test will Ctrl-C: SIGINT back to its default, as a terminal's
    foreground job has it. A shell starts background commands (`make test &` in a script) with
    SIGINT ignored, their children inherit that, and Python then never raises KeyboardInterrupt."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def harness(*args, cwd=REPO, env=None, timeout=None):
    """Run ./harness.py as a user would; returns CompletedProcess (text)."""
    import subprocess
    return subprocess.run([sys.executable, str(REPO / "harness.py"), *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)
