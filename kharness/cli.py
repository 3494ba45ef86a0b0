"""Command line: parse, dispatch, and turn errors into one line and an exit status.

Exit status: 0 all passed, 1 some test failed, 2 bad input or infrastructure
error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import traceback
from pathlib import Path

from . import config, ui
from .errors import InfraError, UserError

DEFAULT_CONFIG = "configs/default.yaml"
MAX_DURATION = 7 * 24 * 3600        # --duration: a week per job at most


def _duration(text: str) -> int:
    """Seconds, or a number with s/m/h: 90, 90s, 10m, 2h."""
    m = re.fullmatch(r"(\d{1,12})([smh]?)", text.strip())
    if not m or int(m.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 10m or 2h")
    seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds > MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than the limit of {MAX_DURATION // 3600}h (a week)")
    return seconds


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    if n > config.MAX_REPEAT:
        raise argparse.ArgumentTypeError(f"must be at most {config.MAX_REPEAT}, got {n} (every repeat is a job)")
    return n


def _guests(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if not 1 <= n <= config.MAX_GUESTS:
        raise argparse.ArgumentTypeError(f"give 1 to {config.MAX_GUESTS} guests, got {n}")
    return n


def _shard(text: str) -> tuple[int, int]:
    from .shard import parse
    try:
        return parse(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: " + str(e).removeprefix(f"--shard {text}: "))


def _confidence(text: str) -> float:
    try:
        c = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 0.95")
    if not 0.5 <= c <= 0.9999:
        raise argparse.ArgumentTypeError(f"{text}: give a value from 0.5 to 0.9999, e.g. 0.95")
    return c


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own convention, minus the usage dump)
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="harness.py", description="Build, boot and judge kernels for iomap zero-range races.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_config(sp):
        sp.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"run config (default {DEFAULT_CONFIG})")
        return sp

    b = with_config(sub.add_parser("build", help="build the config's kernel (or find it in the cache)"))
    which = b.add_mutually_exclusive_group()
    which.add_argument("--series", action="append", help="apply this series instead of the config's (repeatable)")
    which.add_argument("--no-series", action="store_true", help="build the bare source, no series")

    with_config(sub.add_parser("image", help="build the guest root filesystem image (or find it in the cache)"))

    r = with_config(sub.add_parser("run", help="build, boot, run the config's jobs, write results"))
    r.add_argument("--only", action="append", help="run only these tests (repeatable)")
    r.add_argument("--accel", choices=["auto", "kvm", "tcg"], help="override vm.accel")
    r.add_argument("--repeat", type=_positive, help="override repeat")
    r.add_argument("--duration", type=_duration, help="run each reproducer this long (90s, 10m, 2h)")
    r.add_argument("--shard", type=_shard, metavar="I/N",
                   help="run only shard I of N (deterministic split; merge with `report --merge`)")
    r.add_argument("-j", "--jobs", dest="guests", type=_guests, metavar="N",
                   help="run on N guests at once (override vm.parallel; default: what the host allows)")

    n = with_config(sub.add_parser("nightly", help="one unattended run: lock, optional git fetch, run, retention, summary.txt"))
    n.add_argument("--accel", choices=["auto", "kvm", "tcg"], help="override vm.accel")

    rep = sub.add_parser("report", help="(re)render junit.xml, report.html and summary.txt of run directories")
    rep.add_argument("runs", nargs="+", metavar="RUN_DIR")
    rep.add_argument("--merge", action="store_true", help="merge these shard directories into one run (-o)")
    rep.add_argument("-o", "--output", help="with --merge: the new merged run directory")

    rp = with_config(sub.add_parser("repro", help="run one reproducer by name"))
    rp.add_argument("name")
    rp.add_argument("--fs", action="append", help="variant name(s) to run on (default: every applicable)")
    rp.add_argument("--repeat", type=_positive, default=None)
    rp.add_argument("--duration", type=_duration, help="run for this long instead of the default iterations (10m)")
    rp.add_argument("--accel", choices=["auto", "kvm", "tcg"])
    rp.add_argument("-j", "--jobs", dest="guests", type=_guests, metavar="N",
                    help="run on N guests at once (each test's repeats stay on one guest)")

    bi = with_config(sub.add_parser("bisect", help="which patch of the series makes a job fail (copes with flaky races)"))
    bi.add_argument("--job", help="VARIANT.TEST to bisect, as `list` and junit.xml name it")
    bi.add_argument("--signature", help="the failure that counts (part of its title; default: the bad end's first failure)")
    bi.add_argument("--confidence", type=_confidence, default=0.95, help="per-step confidence (default 0.95)")
    bi.add_argument("--from", dest="from_run", metavar="RUN_DIR", help="bisect this run's first new failure (its config and job)")
    bi.add_argument("--resume", metavar="BISECT_DIR", help="continue an interrupted bisection from its bisect.json")
    bi.add_argument("--accel", choices=["auto", "kvm", "tcg"])

    with_config(sub.add_parser("list", help="what the config would run"))
    sh = with_config(sub.add_parser("shell", help="boot the config's VM and open a shell in the guest"))
    sh.add_argument("--accel", choices=["auto", "kvm", "tcg"])

    c = sub.add_parser("console", help="find kernel problems in console/dmesg logs")
    c.add_argument("logs", nargs="+")
    c.add_argument("--json", action="store_true", help="one JSON object per file")
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _once(args) -> None:
    """A name given twice on the command line is a mistake (it would make two jobs of one id)."""
    for opt in ("only", "fs", "series"):
        names = getattr(args, opt, None) or []
        for i, n in enumerate(names):
            if n in names[:i]:
                raise UserError(f"--{opt} {n}: given twice; name it once (--repeat runs a job again)")


def _internal_error(e: BaseException) -> int:
    """An exception nobody expected is a bug in kharness: one line, exit 2 (never 1, which means
    "a job failed"), and the full traceback in a file for the bug report."""
    where = "not written"
    try:
        fd, name = tempfile.mkstemp(prefix="kharness-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write("".join(traceback.format_exception(e)))
        where = name
    except OSError:
        pass
    first = (str(e).splitlines() or [""])[0][:300]
    print(f"harness.py: internal error: {type(e).__name__}{': ' + first if first else ''} "
          f"(a bug in kharness; traceback: {where})", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM takes the same path as Ctrl-C, so every cleanup handler runs.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _once(args)
        return _dispatch(args)
    except UserError as e:
        print(f"harness.py: error: {e}", file=sys.stderr)
        return 2
    except InfraError as e:
        print(f"harness.py: infrastructure error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness.py: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # `./harness.py list | head`
        sys.stderr.close()
        return 0
    except Exception as e:
        return _internal_error(e)


def _dispatch(args) -> int:
    if args.command == "console":
        from . import console_cli
        return console_cli.main(args.logs, args.json)
    if args.command == "report":
        return cmd_report(args)
    from . import suites    # noqa: F401  registers the suites' config sections (fstests:) before loading
    if args.command == "bisect":
        return cmd_bisect(args)
    cfg = config.load(args.config)
    if args.command == "build":
        return cmd_build(cfg, args)
    if args.command == "image":
        return cmd_image(cfg)
    from . import runner
    if args.command == "list":
        return runner.cmd_list(cfg)
    if args.command == "run":
        return runner.cmd_run(cfg, only=args.only, accel=args.accel, repeat=args.repeat, duration=args.duration,
                              shard=args.shard, parallel=args.guests)
    if args.command == "nightly":
        from . import nightly
        return nightly.cmd_nightly(cfg, accel=args.accel)
    if args.command == "repro":
        return runner.cmd_repro(cfg, args.name, fs=args.fs, repeat=args.repeat, accel=args.accel,
                                duration=args.duration, parallel=args.guests)
    if args.command == "shell":
        return runner.cmd_shell(cfg, accel=args.accel)
    raise AssertionError(args.command)


def cmd_report(args) -> int:
    from . import results
    from .report import merge, record
    from .report.history import DB_NAME, History
    if args.merge:
        if not args.output:
            raise UserError("report --merge: give the merged run directory with -o, e.g. -o results/merged")
        if (Path(args.output).parent / DB_NAME).exists():
            History(Path(args.output).parent).close()     # the history the merged run goes into
        out = merge.merge([Path(d) for d in args.runs], Path(args.output))
        if (out / "baseline").is_dir():
            results.render_reports(out / "baseline")
        dirs = [out]
    else:
        if args.output:
            raise UserError("report: -o is for --merge; a run's reports are written into its own directory")
        dirs = [Path(d) for d in args.runs]
        recs = [record.load(d) for d in dirs]      # every directory checked before any is rewritten
        for rec in recs:
            if rec.kind not in record.NO_HISTORY and (rec.dir.parent / DB_NAME).exists():
                History(rec.dir.parent).close()     # and the history each one is recorded in
    worst = 0
    for d in dirs:
        v = results.render_reports(d)
        if v is None:
            return 2
        ui.out((d / "summary.txt").read_text().rstrip("\n"))
        worst = max(worst, 1 if v.rec.failed else 0)
    return worst


def cmd_bisect(args) -> int:
    from . import bisect_run
    if args.resume:
        if args.job or args.from_run or args.signature:
            raise UserError("bisect --resume: the bisection's job and signature are in its bisect.json; "
                            "give --resume alone (with --accel if needed)")
        return bisect_run.resume(Path(args.resume), args.accel)
    config_file, job = args.config, args.job
    if args.from_run:
        if args.job:
            raise UserError("bisect: give --job or --from, not both")
        config_file, job = bisect_run.job_from_run(Path(args.from_run))
    elif not job:
        raise UserError("bisect: which job? give --job VARIANT.TEST (e.g. --job ext4.zero-range-vs-sync-range) "
                        "or --from results/<run>")
    cfg = config.load(config_file)
    return bisect_run.start(cfg, job, args.signature, args.confidence, args.accel)


def cmd_build(cfg: config.RunConfig, args) -> int:
    from . import kernel, results
    series = [] if args.no_series else args.series
    kernel.preflight(cfg.kernel, series_override=series)   # bad input: one line before anything is created
    log_dir = results.results_root(cfg) / "build-logs"     # (the build log's directory must be writable, too)
    ui.stage(f"kernel for {cfg.name}")
    art, hit = kernel.build_kernel(cfg.kernel, log_dir, series_override=series)
    ui.info(f"{'cache hit' if hit else 'built'}: {art.release}")
    ui.out(f"kernel: {art.bzimage}")
    ui.out(f"release: {art.release}")
    ui.out(f"cache: {'hit' if hit else 'miss'}")
    return 0


def cmd_image(cfg: config.RunConfig) -> int:
    from . import image, results
    image.preflight(cfg.image)                              # bad input: one line before a lock or a log exists
    log_dir = results.results_root(cfg) / "build-logs"
    ui.stage("guest image")
    with ui.progress("root filesystem") as p:
        art, hit = image.build_image(cfg.image, log_dir / "image-build.log", progress=p.update)
    ui.out(f"image: {art.path}")
    ui.out(f"cache: {'hit' if hit else 'miss'}")
    return 0
