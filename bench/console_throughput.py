"""Console analyzer throughput on a large synthetic log.

The log is the real fixtures (tests/data/console/*.log) concatenated many times, with
runs of ordinary boot-log lines ("noise", taken from the clean boot fixture) between them.
Prints MB/s for: the mixed log, a report-free log (the common case: a long quiet run),
and a report-dense log (fixtures back to back).  No assertions.

    python bench/console_throughput.py [--mb 64]
"""

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kharness.console import ConsoleAnalyzer  # noqa: E402

DATA = REPO / "tests" / "data" / "console"
CHUNK = 1 << 20


def run(text: str) -> tuple[float, int, int]:
    data = text.encode()
    a = ConsoleAnalyzer()
    t0 = time.perf_counter()
    for i in range(0, len(text), CHUNK):
        a.feed(text[i:i + CHUNK])
    a.finish()
    dt = time.perf_counter() - t0
    return len(data) / dt / 1e6, len(a.findings), sum(f.count for f in a.findings)


def build(target: int, fixtures: list[str], noise: list[str], noise_runs: int, rnd: random.Random) -> str:
    parts, size = [], 0
    while size < target:
        for fx in fixtures:
            if noise_runs:
                start = rnd.randrange(len(noise))
                block = "".join(noise[(start + i) % len(noise)] for i in range(noise_runs))
                parts.append(block)
                size += len(block)
            if fx:
                parts.append(fx)
                size += len(fx)
    return "".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=64, help="size of each synthetic log in MB")
    args = ap.parse_args()
    rnd = random.Random(1)
    logs = sorted(DATA.glob("*.log"))
    fixtures = [p.read_text(errors="replace") for p in logs]
    noise = (DATA / "clean-boot.log").read_text(errors="replace").splitlines(keepends=True)
    target = args.mb * 1_000_000
    print(f"{len(logs)} fixtures, {sum(map(len, fixtures)) / 1e3:.0f} KB; logs of {args.mb} MB, "
          f"fed in {CHUNK >> 10} KiB chunks")
    for name, text in (
        ("mixed (fixtures + 2000 noise lines each)", build(target, fixtures, noise, 2000, rnd)),
        ("quiet (noise only)", build(target, [""], noise, 5000, rnd)),
        ("dense (fixtures only)", build(target, fixtures, noise, 0, rnd)),
    ):
        mbs, n, total = run(text)
        print(f"{name:45s} {mbs:8.1f} MB/s   {n} distinct findings, {total} reports")


if __name__ == "__main__":
    main()
