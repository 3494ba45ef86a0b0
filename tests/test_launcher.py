"""./harness.py starts the checkout's own Python directly."""
import os
import subprocess
import sys

from conftest import REPO


def test_launcher_runs_the_checkouts_python_directly(tmp_path):
    """./harness.py is sh and Python at once: sh execs .venv/bin/python (no python3 from PATH
    first); python3 harness.py still works."""
    text = (REPO / "harness.py").read_text()
    assert text.startswith("#!/bin/sh\n''''")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text("#!/bin/sh\necho python3-from-PATH; exit 9\n")
    (fake / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    venv = REPO / ".venv" / "bin" / "python"
    out = subprocess.run([str(REPO / "harness.py"), "--help"], capture_output=True, text=True, env=env, timeout=60)
    if venv.exists():
        assert out.returncode == 0 and "usage: harness.py" in out.stdout, out.stdout + out.stderr
    else:
        assert "python3-from-PATH" in out.stdout
    out = subprocess.run([sys.executable, str(REPO / "harness.py"), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "usage: harness.py" in out.stdout
