"""Long runs, without a VM: a console log of hundreds of MB is streamed, not read whole.

`./harness.py console` on a 320 MiB log (a real captured fixture repeated, see
bench/console_rss.py) must keep its peak RSS far below the file's size, and close to
what it needs for the small fixture alone. A memory bound, not a timing one. Control:
a child that does read the file whole is seen by the same measurement at >= its size.
(RSS and fds of the harness over hundreds of real jobs: bench/long_run.py.)
"""
import re
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import console_rss  # noqa: E402

MIB = 1 << 20


def test_huge_console_log_is_streamed(tmp_path):
    log = tmp_path / "big-console.log"
    size = console_rss.make_log(log, 320)
    reps = size // (console_rss.DATA / "hung-task.log").stat().st_size
    m = console_rss.measure(log)
    big_kib, rc, _, out = m["console"]
    small_kib, small_rc, _, small_out = m["baseline"]
    whole_kib = m["whole"][0]
    print(f"log {size / MIB:.0f} MiB: console peak RSS {big_kib / 1024:.1f} MiB "
          f"(fixture alone {small_kib / 1024:.1f} MiB, read() whole {whole_kib / 1024:.1f} MiB)")

    assert whole_kib * 1024 >= size                 # control: a whole read shows up
    assert rc == 0 and small_rc == 0
    # Every copy of the report was seen: the whole file went through the analyzer.
    per_copy = int(re.search(r"\(x(\d+)\)", small_out).group(1)) if "(x" in small_out else 1
    assert re.search(rf"hang HANG INFO: task hung in \S+ \(x{reps * per_copy}\)", out), out
    assert big_kib * 1024 < size / 4
    assert big_kib - small_kib < 32 * 1024          # grows with nothing like the file's size
