"""Cost of copying one job's console window late in a long run on one boot.

console.log is --mb MiB of a real console fixture (tests/data/console/hung-task.log)
repeated; the job's window is its last 200 lines. Prints the time of lifecycle.copy_windows
reading from the window's recorded byte offset, and the same with no offset (a scan from
line 1, what every job used to do). No assertions.

    .venv/bin/python bench/window_copy.py [--mb 200]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kharness import vm  # noqa: E402
from kharness.lifecycle import Watched, copy_windows  # noqa: E402
from kharness.model import Outcome  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    a = ap.parse_args()
    block = (REPO / "tests" / "data" / "console" / "hung-task.log").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        stream = vm.ConsoleStream(Path(tmp) / "console.log", lambda text: None)
        while stream.out.tell() < a.mb << 20:
            stream.write(block)
        with stream.cond:
            start, offset = stream.lines, stream.next_line_offset()
        stream.write("".join(f"[ 9999.{i:06d}] job line {i}\n" for i in range(200)))
        for label, off in (("from the recorded offset", offset), ("scan from line 1", None)):
            s = SimpleNamespace(stream=stream)
            window = (start + 1, stream.lines)
            t0 = time.perf_counter()
            copy_windows(s, Watched(Outcome(0, 0.0), [], window, off), {Path(tmp) / "console.txt": window})
            print(f"{a.mb} MiB console.log, {start} lines before the window: {label:24} "
                  f"{(time.perf_counter() - t0) * 1000:9.1f} ms")
        stream.close()


if __name__ == "__main__":
    main()
