#!/usr/bin/env python3
"""Where a fresh guest's boot time goes: per-phase medians (min/max) over N boots.

    .venv/bin/python bench/boot_phases.py [-c configs/default.yaml] [-n 5] [--accel tcg]
        [--setup 'LABEL: key=value; key=value' ...] [--earlyprintk] [--session]

The config's kernel and image come from the cache through kharness's own builders
(kernel.build_kernel, image.build_image); they must already be built (run
`./harness.py build` and `./harness.py image` first, or pass --build). Each boot runs
the product's QEMU command line (vm.qemu_argv over vm.kernel_cmdline) in a fresh
temporary directory with fresh test/scratch disks, reads the serial console with
host monotonic times, logs in with kharness.guest.Guest as the harness does, runs
`true` (the first job); the kernel's own printk timestamps come from the console.

Phases of one boot (host: host monotonic clock; kernel: printk/uptime clock):
  pre-kernel   QEMU start -> the kernel's clock starts: QEMU set-up, firmware, loading
               the kernel, decompression, early setup (host time of the ready line
               minus the guest uptime it reports)
  decompress   with --earlyprintk only: "Decompressing Linux" -> "Booting the kernel"
               bytes on the console (host); the firmware part is QEMU start -> the first
  kernel init  kernel clock 0 -> "Run /sbin/kharness-init as init process" (printk)
  init->sshd   init starts -> sshd listens (the uptime kharness-init prints with KHARNESS-READY)
  ssh connect  KHARNESS-READY seen on the host -> Guest.connect returned (host)
  first job    connected -> `true` ran over ssh (host)
  total        QEMU start -> `true` ran (host): a fresh guest to its first job
  console      host time of the first console byte after QEMU start (without
               --earlyprintk that is the serial console registering: the kernel replays
               its buffer from the banner)

--setup compares other setups with the product's, boots interleaved (round r boots
every setup, in reversed order on odd rounds) so that a noisy machine hits all alike.
Keys: kernel=PATH (a bzImage or a PVH vmlinux), append=STR (added to the kernel command
line), cmdline=STR (replaces it), qemu=STR (QEMU arguments appended, shell-split),
drop=STR (QEMU arguments removed: each `-opt value` pair whose value starts with the
given text, e.g. drop=-device virtio-rng), image=PATH (another rootfs.img with the same
keys, or an image directory of the cache, e.g. an older recipe's, with its own keys). The product's own setup is always first, labelled "default".

--session also boots the product the way a run does (session.Session.guest_ready:
boot, ssh, the guest's job directory), timed from the call to its return.

Prints numbers; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kharness import cache, config, image, kernel, vm  # noqa: E402
from kharness.guest import Guest  # noqa: E402

TS = re.compile(r"^\[\s*(\d+\.\d+)\]")
RUN_INIT = re.compile(r"Run (\S+) as init process")
UPTIME = re.compile(r"\(uptime ([\d.]+) s\)")


@dataclass
class Setup:
    label: str
    kernel: Path
    rootfs: Path
    cmdline: str
    qemu: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    image: image.ImageArtifact | None = None      # another image's keys (image=DIR)


def parse_setup(text: str, default: Setup) -> Setup:
    label, _, rest = text.partition(":")
    s = Setup(label.strip(), default.kernel, default.rootfs, default.cmdline)
    for item in filter(None, (x.strip() for x in rest.split(";"))):
        key, _, value = item.partition("=")
        key = key.strip()
        if key == "kernel":
            s.kernel = Path(value).expanduser().resolve()
        elif key == "image":          # a rootfs.img with the config image's keys, or an image directory
            p = Path(value).expanduser().resolve()
            if p.is_dir():
                s.image = image.load_image(p.name) if p.parent == cache.entry("images", p.name).parent \
                    else None
                if s.image is None:
                    sys.exit(f"--setup {text!r}: {p} is not an image in the cache ({cache.cache_root()})")
                s.rootfs = s.image.path
            else:
                s.rootfs = p
        elif key == "append":
            s.cmdline += " " + value
        elif key == "cmdline":
            s.cmdline = value
        elif key == "qemu":
            s.qemu += shlex.split(value)
        elif key == "drop":
            s.drop.append(value)
        else:
            sys.exit(f"--setup {text!r}: unknown key {key!r} (kernel, image, append, cmdline, qemu, drop)")
    return s


def argv_of(s: Setup, spec: vm.VmSpec) -> list[str]:
    argv = vm.qemu_argv(spec)
    for d in s.drop:
        opt, _, val = d.partition(" ")
        out, i = [], 0
        while i < len(argv):
            if argv[i] == opt and i + 1 < len(argv) and argv[i + 1].startswith(val):
                i += 2
                continue
            out.append(argv[i])
            i += 1
        argv = out
    return argv + s.qemu


class Console:
    """The boot's console file, read every 2 ms: (host time, line) for each line, first byte time."""

    def __init__(self, path: Path, proc: subprocess.Popen):
        self.path, self.proc = path, proc
        self.lines: list[tuple[float, str]] = []
        self.first_byte: float | None = None
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        partial = ""
        with open(self.path, "rb") as f:
            while not self._stop.is_set():
                data = f.read(1 << 16)
                now = time.monotonic()
                if not data:
                    if self.proc.poll() is not None:
                        return
                    time.sleep(0.002)
                    continue
                with self.cond:
                    if self.first_byte is None:
                        self.first_byte = now
                    *done, partial = (partial + data.decode("utf-8", "replace").replace("\r", "")).split("\n")
                    self.lines += [(now, ln) for ln in done]
                    # earlyprintk's "Decompressing Linux... Parsing ELF... done." stays on one line
                    if partial and not any("Decompressing" in ln for _, ln in self.lines):
                        if "Decompressing" in partial:
                            self.lines.append((now, partial))
                    self.cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, ln in self.lines:
                    if text in ln:
                        return t
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self.cond.wait(min(left, 0.05))

    def first(self, text: str) -> tuple[float, str] | None:
        with self.cond:
            return next(((t, ln) for t, ln in self.lines if text in ln), None)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(2)


def boot_once(s: Setup, img: image.ImageArtifact, cfg, accel: str, earlyprintk: bool, work: Path) -> dict:
    for name in ("test", "scratch"):
        d = work / f"{name}.img"
        d.unlink(missing_ok=True)
        with open(d, "wb") as f:
            f.truncate(config.size_bytes(cfg.vm.disk_size))
    con = work / "console"
    con.write_bytes(b"")
    cmdline = s.cmdline + (" earlyprintk=serial,ttyS0,115200" if earlyprintk else "")
    spec = vm.VmSpec(kernel=s.kernel, rootfs=s.rootfs, disks=(work / "test.img", work / "scratch.img"),
                     memory=cfg.vm.memory, cpus=cfg.vm.cpus, accel=accel, cmdline=cmdline,
                     ssh_port=vm.free_port(), console=con, qmp=work / "qmp.sock", name="kharness-bench")
    argv = argv_of(s, spec)
    (work / "qemu.log").write_text(shlex.join(argv) + "\n")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(work / "qemu.log", "a"), stderr=subprocess.STDOUT)
    c = Console(con, p)
    r: dict = {}
    try:
        t_ready = c.wait_for(vm.READY_MARKER, cfg.vm.boot_timeout)
        if t_ready is None:
            tail = "\n".join(ln for _, ln in c.lines[-15:])
            raise RuntimeError(f"{s.label}: no {vm.READY_MARKER} (console tail:\n{tail}\n"
                               f"{(work / 'qemu.log').read_text()[-500:]})")
        keys = s.image or img
        g = Guest(spec.ssh_port, keys.host_key_pub, keys.client_key)
        g.connect(time.monotonic() + 60, alive=lambda: p.poll() is None)
        t_conn = time.monotonic()
        out = g.run("true", timeout=60)
        t_job = time.monotonic()
        assert out.exit_status == 0, out
        # The kernel's own lines with their printk timestamps: from the console (dmesg over ssh
        # would do too, but Guest.run keeps only the last 4 KiB of a command's output).
        with c.cond:
            dmesg = "\n".join(ln for _, ln in c.lines)
        cpus = g.run("nproc", timeout=60).stdout.strip()
        g.close()
        up_line = c.first("(uptime ")
        uptime = float(UPTIME.search(up_line[1]).group(1)) if up_line else None
        run_init = next((float(m.group(1)) for ln in dmesg.splitlines()
                         if RUN_INIT.search(ln) and (m := TS.match(ln))), None)
        t_k0 = up_line[0] - uptime if up_line and uptime is not None else None
        r = {"pre-kernel": t_k0 - t0 if t_k0 else None,
             "kernel init": run_init,
             "init->sshd": uptime - run_init if uptime is not None and run_init is not None else None,
             "ssh connect": t_conn - t_ready,
             "first job": t_job - t_conn,
             "total": t_job - t0,
             "console": (c.first_byte - t0) if c.first_byte else None,
             "cpus": cpus}
        dec, boot = c.first("Decompressing Linux"), c.first("Booting the kernel")   # earlyprintk only
        r["firmware"] = dec[0] - t0 if dec else None
        r["decompress"] = boot[0] - dec[0] if dec and boot else None
        gaps = []          # the biggest gaps between consecutive printk lines: where kernel init waits
        prev = None
        for ln in dmesg.splitlines():
            if m := TS.match(ln):
                ts = float(m.group(1))
                if prev is not None:
                    gaps.append((ts - prev[0], prev[1], ln))
                prev = (ts, ln)
        r["gaps"] = sorted(gaps, reverse=True)[:6]
        r["dmesg"] = dmesg
    finally:
        c.stop()
        p.kill()
        p.wait()
    return r


def session_boot(cfg, kernel_art, img, accel: str) -> float:
    from kharness import session
    with tempfile.TemporaryDirectory(prefix="kharness-bench-run.") as td:
        s = session.Session(cfg, Path(td), kernel_art, img, accel)
        try:
            t = time.monotonic()
            s.guest_ready()
            return time.monotonic() - t
        finally:
            s.close()


PHASES = ["firmware", "decompress", "pre-kernel", "kernel init", "init->sshd", "ssh connect",
          "first job", "total", "console"]


def fmt(vals: list[float]) -> str:
    if not vals:
        return f"{'-':>22}"
    return f"{statistics.median(vals):7.3f} [{min(vals):6.3f},{max(vals):6.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", default="configs/default.yaml")
    ap.add_argument("-n", "--boots", type=int, default=5, help="boots per setup (default 5)")
    ap.add_argument("--accel", default="tcg", choices=["tcg", "kvm"])
    ap.add_argument("--setup", action="append", default=[], metavar="'LABEL: key=value; ...'")
    ap.add_argument("--earlyprintk", action="store_true",
                    help="add earlyprintk=serial (all setups) to see the decompressor's own lines")
    ap.add_argument("--session", action="store_true", help="also time session.Session.guest_ready() N times")
    ap.add_argument("--build", action="store_true", help="build the kernel/image when they are not cached")
    ap.add_argument("--gaps", action="store_true", help="print the largest printk gaps of each setup's last boot")
    ap.add_argument("--keep", metavar="DIR", help="keep each boot's console and dmesg in DIR")
    args = ap.parse_args()
    cfg = config.load(args.config)
    logs = Path(tempfile.mkdtemp(prefix="kharness-bench-logs."))
    try:
        if not args.build:
            if image.load_image(image.image_key(cfg.image)) is None:
                sys.exit("the config's image is not in the cache: run `./harness.py image` first (or --build)")
        t = time.monotonic()
        kart, khit = kernel.build_kernel(cfg.kernel, logs)
        kt = time.monotonic() - t
        if not khit and not args.build:
            print(f"note: the kernel was not in the cache and was built now ({kt:.0f} s)")
        img, ihit = image.build_image(cfg.image, logs / "image.log")
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    default = Setup("default", kart.bzimage, img.path, vm.kernel_cmdline(cfg.vm.hung_task_timeout, cfg.vm.cmdline))
    setups = [default] + [parse_setup(t, default) for t in args.setup]
    print(f"kernel {kart.release} {kart.bzimage} (cache {'hit' if khit else 'miss'}), "
          f"image {img.key[:12]} (cache {'hit' if ihit else 'miss'}); accel {args.accel}; "
          f"{args.boots} boots per setup, interleaved; host {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.2f}")
    for s in setups:
        extra = f" qemu+{shlex.join(s.qemu)}" if s.qemu else ""
        extra += f" drop {s.drop}" if s.drop else ""
        print(f"  {s.label}: kernel {s.kernel}{extra}\n    cmdline: {s.cmdline}")
    results: dict[str, list[dict]] = {s.label: [] for s in setups}
    sess: list[float] = []
    failed: dict[str, int] = {}
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kharness-bench.") as td:
        work = Path(td)
        for rnd in range(args.boots):
            order = setups if rnd % 2 == 0 else setups[::-1]
            for s in order:
                try:
                    r = boot_once(s, img, cfg, args.accel, args.earlyprintk, work)
                except Exception as e:       # a boot that failed is a number too: say it, go on
                    failed[s.label] = failed.get(s.label, 0) + 1
                    print(f"  round {rnd + 1} {s.label:>12}: FAILED: {str(e).splitlines()[0]}", flush=True)
                    if keep and (work / "console").exists():
                        shutil.copyfile(work / "console", keep / f"{s.label}-{rnd + 1}.failed.console")
                    continue
                r["round"] = rnd
                results[s.label].append(r)
                print(f"  round {rnd + 1} {s.label:>12}: total {r['total']:.2f} s "
                      f"(pre-kernel {r['pre-kernel'] or 0:.2f}, kernel {r['kernel init'] or 0:.2f}, "
                      f"init->sshd {r['init->sshd'] or 0:.2f}, ssh {r['ssh connect']:.2f}, cpus {r['cpus']})",
                      flush=True)
                if keep:
                    (keep / f"{s.label}-{rnd + 1}.dmesg").write_text(r["dmesg"])
                    shutil.copyfile(work / "console", keep / f"{s.label}-{rnd + 1}.console")
            if args.session:
                sess.append(session_boot(cfg, kart, img, args.accel))
                print(f"  round {rnd + 1} {'session':>12}: guest_ready {sess[-1]:.2f} s", flush=True)
    print()
    print(f"{'phase (s)':14}" + "".join(f"{s.label + ' median [min,max]':>26}" for s in setups))
    for ph in PHASES:
        cols = [[r[ph] for r in results[s.label] if r.get(ph) is not None] for s in setups]
        if not any(cols):
            continue
        print(f"{ph:14}" + "".join(f"{fmt(c):>26}" for c in cols))
    print(f"{'boots':14}" + "".join(f"{len(results[s.label]):>16} ok, {failed.get(s.label, 0)} failed"
                                  for s in setups))
    if len(setups) > 1:       # paired: each round's difference against the default's boot of that round
        for s in setups[1:]:
            base = {b["round"]: b["total"] for b in results["default"]}
            d = [r["total"] - base[r["round"]] for r in results[s.label] if r["round"] in base]
            if d:
                print(f"paired total difference {s.label} - default: median {statistics.median(d):+.3f} s "
                      f"[{min(d):+.3f}, {max(d):+.3f}] over {len(d)} rounds")
    if sess:
        print(f"{'Session.guest_ready()':22} {fmt(sess)}  (boot + ssh + job directory, as a run does)")
    if args.gaps:
        for s in setups:
            print(f"\nlargest printk gaps, {s.label} (last boot):")
            for gap, a, b in results[s.label][-1]["gaps"]:
                print(f"  {gap:6.3f} s  after {a[:90]}\n            before {b[:90]}")


if __name__ == "__main__":
    main()
