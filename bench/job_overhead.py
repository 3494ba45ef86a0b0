#!/usr/bin/env python3
"""One fresh-guest job, whole process, paired against a minimal prototype in the same run.

    .venv/bin/python bench/job_overhead.py [-n 5] [-c configs/default.yaml] [--test zero-range-basic]
        [--fs ext4] [--against TREE ...] [--no-trace | --trace-only] [--job-prototype] [--profile] [--keep DIR]

Each round runs these whole processes, the order rotated by one each round and reversed
every other round (every kind takes every place), so that a noisy machine hits all alike:

  prototype    a shell script: fresh sparse test/scratch disks, the harness's own QEMU command
               line (kharness.vm.qemu_argv over vm.kernel_cmdline; the config's kernel and image
               from the cache, through kernel.build_kernel / image.build_image), wait for
               KHARNESS-READY in the console file, OpenSSH `ssh -i <image client key>
               -o UserKnownHostsFile=<pinned host key> -p PORT root@127.0.0.1 true`, kill QEMU:
               the least any harness does to run one command in a fresh guest.
  job-proto    with --job-prototype: the prototype doing the job's work by hand in one OpenSSH
               command: mkfs and mount the test disk as the variant says, the reproducer's binary
               (kharness.catalogue.build) sent on stdin, run with its manifest arguments in a
               directory on the test fs. harness / job-proto is what the harness adds to a job.
  harness      `./harness.py repro TEST --fs FS -c CONFIG`, CONFIG a copy of -c whose `results:`
               is a private directory (the checkout's results/ and history stay as they are).
  againstN     the same command from another tree (--against TREE, e.g. a `git archive` of the
               previous commit with .venv linked): a paired comparison of two versions.
  traced       `harness` again, with a sitecustomize on PYTHONPATH (the process is still
               ./harness.py, launcher and all) that timestamps the harness's own steps: functions
               wrapped as their modules are imported, main-thread imports wherever they happen.
               traced-againstN: the same for each --against tree. Their wall times are printed
               too: next to the untraced runs they show what tracing costs.

Prints each run's wall time, the medians, the ratio of the medians (harness / prototype),
the paired differences against each --against tree, and the per-phase medians of the traced
runs (process start, imports, cache lookups, boot, ssh connect, tools disk, tools mount + mkfs,
the job, settle, verdict, reports, exit). --profile adds a cProfile of cli.main in each
traced run (KEEP/traced-N.prof). Prints numbers; asserts nothing. The machine is shared:
the load average is printed with each round.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRACE_ENV = "KHARNESS_BENCH_TRACE"          # the traced run: where its trace goes
PROFILE_ENV = "KHARNESS_BENCH_PROFILE"      # ... and its cProfile of cli.main (--profile)


# ------------------------------------------------------------------ the traced child

class Tracer:
    """Timestamps around the harness's own steps: functions wrapped as their modules are
    imported (an import hook, so imports happen where the harness does them), and the
    time spent importing modules, wherever that is."""

    # (module, attribute path, label); a label with {cmd} is given the command's first word
    TARGETS = [
        ("kharness.config", "load", "config load"),
        ("kharness.runner", "plan", "plan"),
        ("kharness.runner", "preflight", "preflight"),
        ("kharness.kernel", "build_kernel", "kernel cache lookup"),
        ("kharness.image", "build_image", "image cache lookup"),
        ("kharness.runner", "start_session", "sessions"),
        ("kharness.vm", "Vm.start", "QEMU start"),
        ("kharness.vm", "wait_boot", "boot (to ready marker)"),
        ("kharness.guest", "Guest.__init__", "ssh keys"),
        ("kharness.guest", "Guest.connect", "ssh connect"),
        ("kharness.guest", "Guest.run", "ssh run"),
        ("kharness.guest", "Guest.put", "sftp put"),            # trees before the tools disk (--against)
        ("kharness.guest", "Guest.put_text", "sftp put_text"),
        ("kharness.guest", "Guest.run_script", "ssh run_script"),
        ("kharness.session", "Session._mkdir", "mkdir"),        # trees before the tools disk (--against)
        ("kharness.session", "Session.prepare", "mkfs+mount"),
        ("kharness.catalogue", "build", "binary build (cache)"),
        ("kharness.tools_disk", "disk", "tools disk"),
        ("kharness.lifecycle", "_settle", "settle"),
        ("kharness.lifecycle", "copy_windows", "window copy"),
        ("kharness.verdict", "judge", "verdict"),
        ("kharness.results", "write_job", "verdict.json"),
        ("kharness.session", "Session.close", "session close"),
        ("kharness.session", "Session.stop", "QEMU stop"),
        ("kharness.results", "write_run", "write run"),
        ("kharness.results", "render_reports", "reports"),
        ("kharness.report.history", "History.__init__", "history open"),
        ("kharness.report.history", "History.record", "history record"),
        ("kharness.results", "print_table", "table"),
    ]

    def __init__(self):
        self.events: list[dict] = []          # label, t0, t1, depth (of the calling thread), thread
        self.imports = 0.0                    # seconds in outermost imports, main thread
        self.import_spans: list[tuple[float, float]] = []
        self.background_imports = 0.0         # other threads' (the warm-up's): they overlap the boot
        self._import_depth: dict[int, int] = {}
        self._depth: dict[int, int] = {}
        self.marks: dict[str, float] = {}

    def wrap(self, fn, label):
        import functools
        import threading
        tracer = self

        @functools.wraps(fn)
        def wrapper(*a, **kw):
            tid = threading.get_ident()
            d = tracer._depth.get(tid, 0)
            tracer._depth[tid] = d + 1
            lab = label
            if label == "ssh run":
                cmd = a[1] if len(a) > 1 else kw.get("command", "")
                lab = f"ssh run: {_short_cmd(cmd)}"
            t0 = time.monotonic()
            try:
                return fn(*a, **kw)
            finally:
                t1 = time.monotonic()
                tracer._depth[tid] = d
                tracer.events.append({"label": lab, "t0": t0, "t1": t1, "depth": d,
                                      "main": threading.current_thread() is threading.main_thread()})
        wrapper.__kh_traced__ = True
        return wrapper

    def patch(self, module) -> None:
        if module.__name__ == "kharness.cli":
            self._patch_main(module)
        elif module.__name__ == "kharness.vm":
            self._patch_console(module)
        for modname, attr, label in self.TARGETS:
            if modname != module.__name__:
                continue
            owner, _, name = attr.rpartition(".")
            obj = getattr(module, owner) if owner else module
            fn = getattr(obj, name, None)
            if fn is None or getattr(fn, "__kh_traced__", False):
                continue
            setattr(obj, name, self.wrap(fn, label))

    def _patch_main(self, cli) -> None:
        """cli.main: when it returns (the rest is exit), and its cProfile with --profile."""
        main, tracer = cli.main, self

        def traced_main(*a, **kw):
            tracer.marks["cli imported"] = time.monotonic()
            prof = None
            if os.environ.get(PROFILE_ENV):
                import cProfile
                prof = cProfile.Profile()
                prof.enable()
            try:
                return main(*a, **kw)
            finally:
                if prof:
                    prof.disable()
                    prof.dump_stats(os.environ[PROFILE_ENV])
                tracer.marks["main returned"] = time.monotonic()
        cli.main = traced_main

    def _patch_console(self, vm) -> None:
        """When the host saw the ready marker and the job's end marker (vm.ConsoleStream.write)."""
        write, marks = vm.ConsoleStream.write, self.marks

        def traced_write(stream, text):
            write(stream, text)
            if "ready seen" not in marks and "ready" in stream.marks:
                marks["ready seen"] = time.monotonic()
            if "end marker seen" not in marks and any(m.startswith("end ") for m in stream.marks):
                marks["end marker seen"] = time.monotonic()
        vm.ConsoleStream.write = traced_write

    def install(self) -> None:
        import importlib.abc
        import importlib.machinery
        import threading
        tracer = self
        targets = {m for m, _, _ in self.TARGETS} | {"kharness.cli", "kharness.vm"}

        class Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                    return spec
                real = spec.loader

                class Loader:
                    """The module's own loader, with its exec_module timed (and the module patched)."""
                    def __getattr__(self, attr):
                        return getattr(real, attr)

                    def create_module(self, s):
                        return real.create_module(s)

                    def exec_module(self, module):
                        tid = threading.get_ident()
                        depth = tracer._import_depth.get(tid, 0)
                        tracer._import_depth[tid] = depth + 1
                        t0 = time.monotonic()
                        try:
                            real.exec_module(module)
                        finally:
                            tracer._import_depth[tid] = depth
                            if depth == 0:          # outermost imports only: nested ones are in them
                                t1 = time.monotonic()
                                if threading.current_thread() is threading.main_thread():
                                    tracer.imports += t1 - t0
                                    tracer.import_spans.append((t0, t1))
                                else:
                                    tracer.background_imports += t1 - t0
                        if name in targets:
                            tracer.patch(module)
                spec.loader = Loader()
                return spec

        sys.meta_path.insert(0, Finder())


def _short_cmd(cmd: str) -> str:
    if "/run-job" in cmd:
        return "run-job (the job)"
    if "mkfs" in cmd:
        return "mkfs+mount"
    if cmd.startswith("cat "):
        return "proof read"
    return cmd.split()[0] if cmd.split() else "?"


def start_trace(out: str) -> None:
    """In the traced harness process, from the sitecustomize the bench puts on its PYTHONPATH
    (so the process is ./harness.py itself, launcher and all): install the import hook and
    the wrappers; the trace is written at exit."""
    import atexit
    import json
    tracer = Tracer()
    tracer.marks["python up"] = time.monotonic()
    tracer.install()

    def dump():
        if "main returned" not in tracer.marks:      # a child process (gcc, ...) of the harness: not ours
            return
        Path(out).write_text(json.dumps({"events": tracer.events, "marks": tracer.marks,
                                         "imports": tracer.imports, "import_spans": tracer.import_spans,
                                         "background_imports": tracer.background_imports}))
    atexit.register(dump)


SITECUSTOMIZE = """# written by bench/job_overhead.py: trace this process (a harness run) into $%s
import importlib.util, os, sys
if os.environ.get(%r):
    _spec = importlib.util.spec_from_file_location("_kharness_bench_trace", %r)
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    _mod.start_trace(os.environ[%r])
"""


# ------------------------------------------------------------------ the parent

PROTO = r"""#!/bin/sh
# The prototype: QEMU, wait for the ready marker, OpenSSH `true`, kill.
d={work}
t0=$(date +%s.%N)
rm -f $d/test.img $d/scratch.img $d/console $d/qmp.sock
truncate -s {disk} $d/test.img $d/scratch.img
: > $d/console
{qemu} > $d/qemu.log 2>&1 &
q=$!
until grep -q KHARNESS-READY $d/console; do
    kill -0 $q 2>/dev/null || {{ echo "QEMU exited" >&2; exit 1; }}
    sleep 0.05
done
t1=$(date +%s.%N)
ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile=$d/known_hosts -o LogLevel=ERROR -p {port} root@127.0.0.1 {remote} {stdin}
rc=$?
t2=$(date +%s.%N)
kill $q; wait $q 2>/dev/null
echo "proto-times $t0 $t1 $t2"
exit $rc
"""


def private_config(src: Path, results_dir: Path, dest: Path) -> Path:
    """The config with its top-level `results:` replaced by a private directory."""
    import re
    lines = [ln for ln in src.read_text().splitlines() if not re.match(r"results\s*:", ln)]
    dest.write_text("\n".join(lines) + f"\nresults: {results_dir}\n")
    return dest


def job_command(cfg, fs: str, test: str, log: Path) -> tuple[str, Path]:
    """The job prototype's remote command and the binary it reads on stdin: the variant's mkfs
    and mount of the test disk, the reproducer with its manifest arguments on the test fs."""
    import shlex
    from kharness import catalogue
    from kharness.session import TEST_MNT, test_fs_argv
    v = next(v for v in cfg.variants if v.name == fs)
    t = catalogue.load()[test]
    if not t.source:
        sys.exit(f"--job-prototype: {test} is a script; give a C reproducer")
    mkfs, mount = test_fs_argv(v)          # what the harness runs for the variant
    cmd = (f"{shlex.join(mkfs)} && {shlex.join(mount)} && cat > /root/{t.name} && "
           f"chmod +x /root/{t.name} && mkdir {TEST_MNT}/job && cd {TEST_MNT}/job && "
           f"/root/{t.name} {shlex.join(t.args)} >/dev/null")
    return shlex.quote(cmd), catalogue.build(t, log)


def prototype_script(cfg, kart, img, work: Path, port: int, job: tuple[str, Path] | None = None) -> Path:
    """proto.sh for one run: the product's QEMU command line with this run's port, concrete;
    with job (job_command's), the job's work instead of `true`."""
    import shlex
    from kharness import vm
    work.mkdir(parents=True, exist_ok=True)
    spec = vm.VmSpec(kernel=kart.bzimage, rootfs=img.path, disks=(work / "test.img", work / "scratch.img"),
                     memory=cfg.vm.memory, cpus=cfg.vm.cpus, accel="tcg",
                     cmdline=vm.kernel_cmdline(cfg.vm.hung_task_timeout, cfg.vm.cmdline),
                     ssh_port=port, console=work / "console", qmp=work / "qmp.sock", name="kharness-proto")
    (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {img.host_key_pub.strip()}\n")
    script = work / "proto.sh"
    script.write_text(PROTO.format(work=shlex.quote(str(work)), disk=cfg.vm.disk_size,
                                   qemu=shlex.join(vm.qemu_argv(spec)), port=port,
                                   key=shlex.quote(str(img.client_key)),
                                   remote=job[0] if job else "true",
                                   stdin=f"< {shlex.quote(str(job[1]))}" if job else "< /dev/null"))
    return script


def timed(argv: list[str], log: Path, env: dict | None = None) -> tuple[float, int]:
    import subprocess
    t = time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                            env=env).returncode
    return time.monotonic() - t, rc


def run_dir_of(log: Path) -> Path | None:
    import re
    m = re.search(r"^results: (\S+)", log.read_text(errors="replace"), re.M)
    return Path(m.group(1)) if m else None


def phases(trace: dict, t_popen: float, t_exit: float, guest_seconds: float | None) -> dict[str, float]:
    """One traced run's phases, seconds. Main-thread events at depth 0/1 are the steps;
    imports are counted wherever they happen and taken out of the step they happened in."""
    ev = [e for e in trace["events"] if e["main"]]
    marks = trace["marks"]
    spans = trace["import_spans"]

    def imports_in(t0, t1):
        return sum(max(0.0, min(b, t1) - max(a, t0)) for a, b in spans)

    def total(label, pred=lambda e: True):
        return sum(e["t1"] - e["t0"] for e in ev if e["label"] == label and pred(e))

    def excl(label, pred=lambda e: True):
        return sum(e["t1"] - e["t0"] - imports_in(e["t0"], e["t1"]) for e in ev if e["label"] == label and pred(e))

    p: dict[str, float] = {}
    p["process start (+venv re-exec)"] = marks["python up"] - t_popen
    p["imports (main thread, wherever)"] = trace["imports"]
    p["config load + plan"] = excl("config load") + excl("plan")
    p["preflight"] = excl("preflight")
    p["kernel cache lookup"] = excl("kernel cache lookup")
    p["image cache lookup"] = excl("image cache lookup")
    p["QEMU start (Popen)"] = total("QEMU start")
    p["boot (QEMU start -> ready seen)"] = total("boot (to ready marker)")
    p["ssh connect"] = excl("ssh connect") + excl("ssh keys")
    p["tools mount + mkfs + mount"] = excl("mkfs+mount")
    p["binary build (cache)"] = excl("binary build (cache)")
    p["job dir + sftp uploads (trees before the tools disk)"] = excl("mkdir") + \
        excl("sftp put_text", lambda e: e["depth"] == 0) + excl("sftp put", lambda e: e["depth"] == 0)
    p["tools disk (cache lookup or mke2fs)"] = excl("tools disk")
    job = total("ssh run: run-job (the job)")
    p["job: command in guest"] = guest_seconds or 0.0
    p["job: around it (ssh, run-job, polls)"] = job - (guest_seconds or 0.0)
    p["settle (end marker wait)"] = total("settle")
    p["window copy + verdict + verdict.json"] = excl("window copy") + excl("verdict") + excl("verdict.json")
    p["QEMU stop + session close"] = total("session close", lambda e: e["depth"] == 0) + \
        total("QEMU stop", lambda e: e["depth"] == 0)
    p["write run (summary.json)"] = excl("write run") - excl("reports") - excl("table")
    p["reports render + history"] = excl("reports")
    p["table"] = excl("table")
    p["exit (main returned -> process gone)"] = t_exit - marks["main returned"]
    p["total (wall)"] = t_exit - t_popen
    accounted = sum(v for k, v in p.items() if k != "total (wall)")     # the lines so far
    p["other (not attributed)"] = p["total (wall)"] - accounted
    p["(imports in background threads: overlap)"] = trace.get("background_imports", 0.0)
    p["harness's own (wall - boot - job in guest)"] = p["total (wall)"] - p["boot (QEMU start -> ready seen)"] \
        - p["job: command in guest"]
    return p


def main() -> None:
    import argparse
    import json
    import re
    import shlex
    import shutil
    import statistics
    import tempfile
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--rounds", type=int, default=5)
    ap.add_argument("-c", "--config", default="configs/default.yaml")
    ap.add_argument("--test", default="zero-range-basic")
    ap.add_argument("--fs", default="ext4")
    ap.add_argument("--no-trace", action="store_true", help="skip the traced runs")
    ap.add_argument("--trace-only", action="store_true",
                    help="skip the untraced harness runs (the ratio is then the traced runs'): for comparing "
                         "versions by their own time, which the boot's variance under load does not blur")
    ap.add_argument("--against", metavar="TREE", action="append", default=[],
                    help="also run the harness from another checkout TREE (e.g. `git archive` of the previous "
                         "commit), in the same rounds: a paired comparison of two versions (repeatable: give "
                         "them newest first, and each step between adjacent trees is paired too)")
    ap.add_argument("--job-prototype", action="store_true",
                    help="also run the prototype doing the job's own work (mkfs, mount, the binary piped in over ssh, the reproducer)")
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile the traced runs' main thread (KEEP/trace-N.prof; needs --keep)")
    ap.add_argument("--keep", metavar="DIR", help="keep every run's log and the private results here")
    args = ap.parse_args()

    from kharness import config, image, kernel
    cfg_path = (REPO / args.config) if not Path(args.config).is_absolute() else Path(args.config)
    from kharness import suites  # noqa: F401  (registers config sections)
    cfg = config.load(str(cfg_path))
    if image.load_image(image.image_key(cfg.image)) is None:
        sys.exit("the config's image is not in the cache: run `./harness.py image` first")
    scratch = Path(tempfile.mkdtemp(prefix="kharness-ovh."))
    kart, khit = kernel.build_kernel(cfg.kernel, scratch)
    img, _ = image.build_image(cfg.image, scratch / "image.log")
    if not khit:
        print("note: the kernel was not in the cache and was built now")
    work = Path(args.keep).resolve() if args.keep else scratch
    work.mkdir(parents=True, exist_ok=True)
    from kharness import vm
    results_dir = work / "results"
    pcfg = private_config(cfg_path, results_dir, work / cfg_path.name)
    proto = prototype_script(cfg, kart, img, work / "proto", vm.free_port())     # shown once; rewritten per run
    harness_argv = [str(REPO / "harness.py"), "repro", args.test, "--fs", args.fs, "-c", str(pcfg)]
    print(f"kernel {kart.release} {kart.bzimage}\nimage {img.path}\nprototype {proto}\n"
          f"harness: {shlex.join(harness_argv)}\nhost {os.cpu_count()} cpus; {args.rounds} rounds, order rotated")

    against = {f"against{i + 1}": Path(t).resolve() for i, t in enumerate(args.against)}
    for k, t in against.items():
        print(f"{k}: {t / 'harness.py'} (same arguments)")
    job = job_command(cfg, args.fs, args.test, scratch / "build.log") if args.job_prototype else None
    kinds = ["prototype"] + (["job-proto"] if job else []) + ([] if args.trace_only else ["harness"] + list(against))
    if not args.no_trace or args.trace_only:
        kinds += ["traced"] + [f"traced-{k}" for k in against]
    site = work / "trace-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE % (TRACE_ENV, TRACE_ENV, str(Path(__file__).resolve()),
                                                            TRACE_ENV))
    walls: dict[str, dict[int, float]] = {k: {} for k in kinds}        # kind -> round -> seconds
    failed: dict[str, int] = {}
    traced: dict[str, dict[int, dict[str, float]]] = {k: {} for k in kinds if k.startswith("traced")}
    guest_secs: list[float] = []
    boot_secs: list[float] = []
    proto_phases: list[tuple[float, float, float]] = []   # to the ready marker, ssh true, the rest
    for rnd in range(args.rounds):
        # rotated each round and reversed every other one: every kind takes every place, and
        # not always the same one follows the prototype (whose QEMU has just exited)
        order = kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]
        order = order if rnd % 2 == 0 else order[::-1]
        load = os.getloadavg()[0]
        line = []
        for kind in order:
            log = work / f"{kind}-{rnd + 1}.log"
            if kind in ("prototype", "job-proto"):
                proto = prototype_script(cfg, kart, img, work / "proto", vm.free_port(),
                                         job if kind == "job-proto" else None)
                wall, rc = timed(["sh", str(proto)], log)
                if kind == "prototype" and rc == 0 and \
                        (m := re.search(r"proto-times (\S+) (\S+) (\S+)", log.read_text())):
                    t0, t1, t2 = map(float, m.groups())
                    proto_phases.append((t1 - t0, t2 - t1, wall - (t2 - t0)))
            elif kind == "harness" or kind in against:
                argv = harness_argv if kind == "harness" else [str(against[kind] / "harness.py"), *harness_argv[1:]]
                wall, rc = timed(argv, log)
                gs, bs = _record_times(run_dir_of(log))
                if kind == "harness" and rc == 0:
                    guest_secs += [gs] if gs is not None else []
                    boot_secs += [bs] if bs is not None else []
            else:
                tree = REPO if kind == "traced" else against[kind.removeprefix("traced-")]
                out = work / f"{kind}-{rnd + 1}.json"
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get(
                    "PYTHONPATH")])), **{TRACE_ENV: str(out)})
                if args.profile:
                    env[PROFILE_ENV] = str(work / f"{kind}-{rnd + 1}.prof")
                t0 = time.monotonic()
                wall, rc = timed([str(tree / "harness.py"), *harness_argv[1:]], log, env)
                gs, _ = _record_times(run_dir_of(log))
                if rc == 0 and out.exists():
                    traced[kind][rnd] = phases(json.loads(out.read_text()), t0, t0 + wall, gs)
            if rc == 0:
                walls[kind][rnd] = wall
            else:       # not a comparable time (a prototype's QEMU that lost its port, a failed run)
                failed[kind] = failed.get(kind, 0) + 1
                if kind in ("prototype", "job-proto"):
                    shutil.copyfile(work / "proto" / "qemu.log", log.with_suffix(".qemu.log"))
            line.append(f"{kind} {wall:6.2f} s" + ("" if rc == 0 else f" (exit {rc}, left out; see {log})"))
        print(f"round {rnd + 1} (load {load:4.2f}): " + ", ".join(line), flush=True)

    def med(v):
        return statistics.median(v) if v else float("nan")

    def pairs(a: dict, b: dict, f) -> list[float]:
        """f(a, b) for the rounds both have."""
        return [f(a[r], b[r]) for r in sorted(a) if r in b]

    def span(v):
        return f"median {med(v):+.3f} [{min(v, default=float('nan')):+.3f}, {max(v, default=float('nan')):+.3f}]"

    print()
    if failed:
        print("left out (nonzero exit): " + ", ".join(f"{k} {n}" for k, n in failed.items()))
    for kind in kinds:
        v = list(walls[kind].values())
        print(f"{kind:16} median {med(v):6.2f} s  [{min(v, default=0):6.2f}, {max(v, default=0):6.2f}]  "
              f"runs: {', '.join(f'{x:.2f}' for x in v)}")
    main_kind = "traced" if args.trace_only else "harness"
    for k in against:
        other = f"traced-{k}" if args.trace_only else k
        d = pairs(walls[main_kind], walls[other], lambda a, b: a - b)
        print(f"paired {main_kind} - {other}: {span(d)} s over {len(d)} rounds; ratio of medians {other}/prototype "
              f"{med(list(walls[other].values())) / med(list(walls['prototype'].values())):.3f}")
    ratio = med(list(walls[main_kind].values())) / med(list(walls["prototype"].values()))
    paired = pairs(walls[main_kind], walls["prototype"], lambda h, p: h / p)
    print(f"ratio of medians {main_kind}/prototype: {ratio:.3f}  (per round: "
          f"{', '.join(f'{x:.2f}' for x in paired)}; median {med(paired):.3f})")
    if job and walls["job-proto"]:
        ratio_job = med(list(walls[main_kind].values())) / med(list(walls["job-proto"].values()))
        paired_job = pairs(walls[main_kind], walls["job-proto"], lambda h, p: h / p)
        print(f"ratio of medians {main_kind}/job-proto: {ratio_job:.3f}  (per round: "
              f"{', '.join(f'{x:.2f}' for x in paired_job)}; median {med(paired_job):.3f})")
    if proto_phases:
        print("prototype runs: " + ", ".join(f"{what} median {med([p[i] for p in proto_phases]):.2f} s"
                                             for i, what in enumerate(("start to ready marker", "ssh true",
                                                                       "the rest (sh, disks, kill)"))))
    if guest_secs:
        print(f"harness runs: the job's own time in the guest median {med(guest_secs):.2f} s, "
              f"boot to ssh ready median {med(boot_secs):.2f} s (summary.json)")
    names = [n for n in traced if traced[n]]
    if names:
        print(f"\nphases of the traced runs, seconds: median [min, max] of the rounds that ran"
              + "".join(f"; {n} = {REPO if n == 'traced' else against[n.removeprefix('traced-')]}" for n in names))
        print(f"  {'phase':44}" + "".join(f"{n:>26}" for n in names))
        for k in next(iter(traced[names[0]].values())):
            cols = []
            for n in names:
                vals = [t[k] for t in traced[n].values()]
                cols.append(f"{med(vals):7.3f} [{min(vals):6.3f},{max(vals):6.3f}]")
            print(f"  {k:44}" + "".join(f"{c:>26}" for c in cols))
        own = "harness's own (wall - boot - job in guest)"
        for n in names:
            if n != "traced" and "traced" in names:
                d = pairs(traced["traced"], traced[n], lambda a, b: a[own] - b[own])
                print(f"paired harness's own time, traced - {n}: {span(d)} s over {len(d)} rounds")
        for a, b in zip(names[1:], names[2:]):      # several --against trees, newest first: each step
            d = pairs(traced[a], traced[b], lambda x, y: x[own] - y[own])
            print(f"paired harness's own time, {a} - {b}: {span(d)} s over {len(d)} rounds")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)


def _record_times(run_dir: Path | None) -> tuple[float | None, float | None]:
    """(the job's guest seconds, the boot's seconds) from the run's summary.json."""
    import json
    if not run_dir:
        return None, None
    try:
        s = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None, None
    jobs = s.get("jobs") or []
    gs = jobs[0].get("guest_seconds") if jobs else None
    bs = (s.get("boot_seconds") or [None])[0]
    return gs, bs


if __name__ == "__main__":
    main()
