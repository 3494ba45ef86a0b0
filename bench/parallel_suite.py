"""The default suite's wall time at -j 1 and -j N, its verdicts compared, and a projection
for a bigger box from the per-job times measured.

    python bench/parallel_suite.py [-c configs/default.yaml] [-j 2] [--cpus-parallel 1]
                                   [--project-cores 16] [--project-boot 2.0]

Runs `harness.py run -c CFG -j 1` and then `-j N` (with vm.cpus set to --cpus-parallel for
the parallel run: on a 2-core machine, two guests of 1 vCPU each show correctness and the
harness's overhead, not a speed-up), each into a private results directory, and prints:

  wall time of each whole run, boots, the sum of job durations, and per guest of the -j N
  run its jobs' total time;
  whether the two runs' verdicts (job, status, message) are the same;
  a projection for a box with --project-cores cores under KVM: guests = cores // vm.cpus
  (the harness's auto rule, memory permitting), each job's time from the -j 1 run (the
  reproducers are bounded by their own -t/-n, so under KVM they take about as long; this is
  an upper bound where a job is CPU-bound), split longest first (shard.assign, as -j
  splits), plus one boot of --project-boot seconds per guest and per restart after a hang.

It prints numbers and asserts nothing. The kernel and image should be in the cache.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kharness import shard  # noqa: E402


def run(cfg: dict, tmp: Path, name: str, j: int) -> tuple[float, dict, Path, int]:
    path = tmp / f"{name}.yaml"
    cfg = {**cfg, "results": str(tmp / name)}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "harness.py"), "run", "-c", str(path), "-j", str(j)],
                          cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - start
    run_dir = (tmp / name / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    return wall, summary, run_dir, proc.returncode


def verdicts(s: dict) -> list[tuple]:
    return [(j["job"], j["status"], j["message"]) for j in s["jobs"]] + [(n["job"], "not run", "") for n in s["not_run"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--config", default=str(REPO / "configs" / "default.yaml"))
    ap.add_argument("-j", type=int, default=2, help="guests of the parallel run (default 2)")
    ap.add_argument("--cpus-parallel", type=int, default=1, help="vm.cpus of the parallel run (default 1)")
    ap.add_argument("--project-cores", type=int, default=16)
    ap.add_argument("--project-boot", type=float, default=2.0, help="seconds a KVM guest takes to boot (assumed)")
    args = ap.parse_args()
    base = yaml.safe_load(Path(args.config).read_text())
    with tempfile.TemporaryDirectory(prefix="kh-par-") as t:
        tmp = Path(t)
        serial = run(base, tmp, "serial", 1)
        par_cfg = {**base, "vm": {**base.get("vm", {}), "cpus": args.cpus_parallel}}
        parallel = run(par_cfg, tmp, "parallel", args.j)
        rows = []
        for label, (wall, s, run_dir, rc) in (("-j 1", serial), (f"-j {args.j}", parallel)):
            job_time = sum(j["duration"] or 0 for j in s["jobs"])
            rows.append((label, wall, rc, s["boots"], job_time, len(s["jobs"])))
        print(f"config {args.config}; -j {args.j} with vm.cpus {args.cpus_parallel}")
        print(f"{'run':6} {'wall s':>8} {'exit':>4} {'boots':>5} {'sum of job s':>12} {'jobs':>4}")
        for label, wall, rc, boots, job_time, n in rows:
            print(f"{label:6} {wall:8.1f} {rc:4d} {boots:5d} {job_time:12.1f} {n:4d}")
        s2 = parallel[1]
        per_guest: dict[str, float] = {}
        for j in s2["jobs"]:
            per_guest[j["console_file"]] = per_guest.get(j["console_file"], 0.0) + (j["duration"] or 0)
        for c, secs in sorted(per_guest.items()):
            print(f"  -j {args.j}: {c}: {secs:.1f} s of jobs")
        same = verdicts(serial[1]) == verdicts(s2)
        print(f"verdicts equal: {same}")
        if not same:
            for a, b in zip(verdicts(serial[1]), verdicts(s2)):
                if a != b:
                    print(f"  -j 1 {a}  vs  -j {args.j} {b}")

        s1 = serial[1]
        cpus = base.get("vm", {}).get("cpus", 2)
        guests = max(1, args.project_cores // cpus)
        weights = {}
        restarts = 0
        for j in s1["jobs"]:
            weights[j["job"]] = (j["duration"] or 0) + (args.project_boot if j["status"] in ("hang", "crash") or
                                                        (j["message"] or "").startswith("expected hang") else 0)
            restarts += weights[j["job"]] != (j["duration"] or 0)
        where = shard.assign(weights, guests)
        loads = [sum(w for k, w in weights.items() if where[k] == g) for g in range(1, guests + 1)]
        makespan = max(loads) + args.project_boot
        print(f"projection: {args.project_cores} cores, vm.cpus {cpus} -> {guests} guests under KVM; "
              f"{len(weights)} jobs, {sum(weights.values()):.0f} s of job time (+{restarts} restarts of "
              f"{args.project_boot} s); longest job {max(weights.values()):.1f} s; "
              f"wall about {makespan:.0f} s (serial here: {serial[0]:.0f} s, x{serial[0] / makespan:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
