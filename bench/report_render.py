"""Report render time for a run of N jobs (default 100), built from real recorded jobs.

The run is tests/data/runs/20261126T111800Z-selftest-broken (57 real jobs: 45 failures with
MISMATCH evidence, 12 passes) replicated onto extra variants until it has N jobs, plus the
real hang-canary jobs (console findings with a stack and a console excerpt) of the default
run. History holds --history earlier runs of the same config, so the history queries run
against a realistic table. Prints seconds per output and the page sizes. No assertions.

    python bench/report_render.py [--jobs 100] [--history 30] [--repeat 5]
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kharness.report import html, junit, record, render, runview, text  # noqa: E402
from kharness.report.history import History  # noqa: E402

RUNS = REPO / "tests" / "data" / "runs"
BROKEN, DEFAULT = "20261126T111800Z-selftest-broken", "20261126T121654Z-default"


def build_run(root: Path, name: str, n_jobs: int) -> Path:
    d = root / name
    shutil.copytree(RUNS / BROKEN, d)
    rec = record.read_run(d)
    canary = [j for j in record.read_run(RUNS / DEFAULT).jobs if j.test == "hang-canary"]
    for j in canary:      # the canary's window as a failure: a finding with a stack and an excerpt
        shutil.copytree(RUNS / DEFAULT / j.dir, d / j.dir)
        rec.jobs.append(replace(j, status="hang"))
    base = list(rec.jobs)
    copy = 0
    while len(rec.jobs) < n_jobs:
        copy += 1
        for j in base:
            if len(rec.jobs) >= n_jobs:
                break
            v = f"{j.variant}_copy{copy}"
            new_rel = j.dir.replace(f"jobs/{j.variant}/", f"jobs/{v}/", 1)
            if not (d / new_rel).exists():
                shutil.copytree(d / j.dir, d / new_rel)
            rec.jobs.append(replace(j, variant=v, id=j.id.replace(j.variant, v, 1), dir=new_rel))
    rec.jobs = rec.jobs[:n_jobs]
    rec.name = name
    record.write_run_record(rec)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--history", type=int, default=30, help="earlier runs of the config in history.sqlite")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = build_run(root, "20261126T235900Z-selftest-broken", a.jobs)
        rec = record.read_run(run)
        with History(root) as h:
            for i in range(a.history):           # earlier nights: the same record under older names
                h.record(replace(rec, name=f"202610{i % 28 + 1:02d}T{i:06d}Z-old",
                                 started=f"2026-10-{i % 28 + 1:02d}T00:{i % 60:02d}:00Z"))
        times: dict[str, list[float]] = {k: [] for k in ("load", "history", "junit", "html", "text", "index", "total")}
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            rec = record.read_run(run)
            t1 = time.perf_counter()
            with History(root) as h:
                h.record(rec)
                v = runview.view(rec, h)
                t2 = time.perf_counter()
                junit.write(run / "junit.xml", rec, runview.job_labels(v))
                t3 = time.perf_counter()
                html.write_report(run / "report.html", v)
                t4 = time.perf_counter()
                (run / "summary.txt").write_text(text.summary(v))
                t5 = time.perf_counter()
                html.write_index(root / "index.html", h)
                t6 = time.perf_counter()
            for k, x in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t6 - t0)):
                times[k].append(x)
        print(f"report render, {len(rec.jobs)} jobs ({sum(not j.ok for j in rec.jobs)} failing), "
              f"{a.history} earlier runs in history, median of {a.repeat}:")
        for k, xs in times.items():
            print(f"  {k:8} {statistics.median(xs) * 1000:8.1f} ms")
        for f in ("report.html", "junit.xml", "summary.txt"):
            print(f"  {f:12} {(run / f).stat().st_size / 1024:8.1f} KiB")
        print(f"  {'index.html':12} {(root / 'index.html').stat().st_size / 1024:8.1f} KiB")
        # The same through the entry point a run uses (record + history + all outputs):
        t0 = time.perf_counter()
        render.render_run(run)
        print(f"  render_run (as at the end of a run): {(time.perf_counter() - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
