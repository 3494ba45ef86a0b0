#!/usr/bin/env python3
"""Kernel build times: cold, cache hit, incremental after a one-line patch change.

    .venv/bin/python bench/build_times.py [-c configs/default.yaml] [--cold]

--cold uses an empty private cache (no source tree, no build tree, no ccache) for
the first build, like a fresh machine; without it the first number is whatever
the current cache gives. Prints numbers; asserts nothing.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kharness import config, kernel, series  # noqa: E402


def timed(fn):
    t = time.monotonic()
    out = fn()
    return time.monotonic() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--config", default="configs/default.yaml")
    ap.add_argument("--cold", action="store_true")
    args = ap.parse_args()
    cfg = config.load(args.config)
    tmp = Path(tempfile.mkdtemp(prefix="kharness-bench."))
    if args.cold:
        os.environ["KHARNESS_CACHE"] = str(tmp / "cache")
    logs = tmp / "logs"
    try:
        t_first, (art, hit) = timed(lambda: kernel.build_kernel(cfg.kernel, logs))
        print(f"first build:  {t_first:7.1f} s  ({'cache hit' if hit else str(art.meta['objects_compiled']) + ' objects'})"
              f"{'  [cold: empty cache, no ccache]' if args.cold else ''}")
        t_hit, (_, hit) = timed(lambda: kernel.build_kernel(cfg.kernel, logs))
        print(f"cache hit:    {t_hit:7.2f} s  (hit={hit})")
        # A one-line change to a patch: copy the patches dir, extend the kharness-id patch's file.
        patches = tmp / "patches"
        shutil.copytree(series.PATCHES_DIR, patches)
        series.PATCHES_DIR = patches
        p = patches / "kharness-id" / "0001-kharness-mark-release.patch"
        p.write_text(p.read_text().replace("+-kharness\n", "+-kharness-bench\n"))
        t_inc, (art2, hit) = timed(lambda: kernel.build_kernel(cfg.kernel, logs))
        print(f"incremental:  {t_inc:7.1f} s  ({art2.meta['objects_compiled']} objects, release {art2.release}, hit={hit})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
