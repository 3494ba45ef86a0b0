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


def test_bytecode_goes_under_the_venv_even_with_dontwritebytecode():
    """PYTHONDONTWRITEBYTECODE made every run compile kharness' own modules again: harness.py
    keeps their bytecode in .venv/pycache instead, and writes none into the checkout."""
    venv = REPO / ".venv"
    if not (venv / "bin" / "python").exists():
        import pytest
        pytest.skip("no .venv")

    def in_checkout():
        return {p: p.stat().st_mtime_ns for p in (REPO / "kharness").rglob("__pycache__/*.pyc")}
    before = in_checkout()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    out = subprocess.run([str(REPO / "harness.py"), "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    cached = venv / "pycache" / str(REPO / "kharness").lstrip("/")
    assert list(cached.glob("cli.*.pyc")), sorted(cached.parent.iterdir()) if cached.parent.exists() else cached
    assert in_checkout() == before
    # An explicit prefix is the user's: used as given.
    env["PYTHONPYCACHEPREFIX"] = str(REPO / ".venv" / "pycache-test-explicit")
    try:
        out = subprocess.run([str(REPO / "harness.py"), "--help"], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0
        # the variable set, DONTWRITEBYTECODE still wins: nothing written there either
        assert not (REPO / ".venv" / "pycache-test-explicit").exists()
    finally:
        import shutil
        shutil.rmtree(REPO / ".venv" / "pycache-test-explicit", ignore_errors=True)


def test_exit_runs_the_exit_handlers_and_flushes_before_leaving():
    """harness.py leaves with os._exit (no interpreter teardown) after what an exit does for
    us: non-daemon threads joined, atexit handlers (vm.kill_all) run, stdout/stderr flushed."""
    probe = ("import atexit, runpy, sys, threading, time; g = runpy.run_path(%r, run_name='harness');"
             "atexit.register(lambda: print('atexit ran'));"
             "t = threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))); t.start();"
             "print('buffered', end=''); sys.stderr.write('err');"
             "g['_exit'](3)") % str(REPO / "harness.py")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 3
    assert out.stdout == "bufferedthread done\natexit ran\n" and out.stderr == "err", (out.stdout, out.stderr)


def test_a_run_of_harness_py_still_says_everything(tmp_path):
    out = subprocess.run([str(REPO / "harness.py"), "list", "-c", "configs/default.yaml"], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    from kharness import catalogue
    assert out.returncode == 0 and out.stdout.rstrip().endswith(list(catalogue.load().values())[-1].description)
