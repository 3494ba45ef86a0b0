"""The reproducer catalogue: reproducers/manifest.yaml, and host-built static binaries.

Each entry names a C source (built here with gcc -static and uploaded) or a
shell script (uploaded as is), which filesystems it applies to, its default
arguments, its timeout and what it expects (pass, or hang for the canary).

$KHARNESS_REPRODUCERS adds catalogues kept elsewhere (colon-separated
directories, each with its own manifest.yaml and files): private reproducers,
or the harness's own fault self-tests (tests/data/faults/).
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import cache, proc
from .config import REPO
from .model import Variant
from .errors import UserError

REPRO_DIR = REPO / "reproducers"
CFLAGS = ["-O2", "-Wall", "-Werror", "-static", "-pthread"]


@dataclass(frozen=True)
class Reproducer:
    name: str
    description: str
    source: str | None = None         # C file in reproducers/
    script: str | None = None         # or a shell script in reproducers/
    filesystems: tuple[str, ...] = ("ext4", "xfs")
    needs: tuple[str, ...] = ()       # e.g. ("reflink",): variants whose mkfs options provide it
    args: tuple[str, ...] = ()
    timeout: int = 300
    expect: str = "pass"
    progress: int = 0                 # seconds an operation may stay in flight (0: progress_bound's default)
    dir: Path = field(default=REPRO_DIR, compare=False)    # where source/script live (not a manifest field)

    @property
    def progress_bound(self) -> int | None:
        """Seconds without progress before the job is a hang (C programs print the heartbeat;
        scripts do not): the manifest's `progress`, else a tenth of its timeout, at least 30 s."""
        if not self.source:
            return None
        return self.progress or max(30, self.timeout // 10)

    def applies_to(self, v: Variant) -> bool:
        if v.fstype not in self.filesystems and v.name not in self.filesystems:
            return False
        return all(_provides(v, need) for need in self.needs)

    def not_applicable_reason(self, v: Variant) -> str:
        if v.fstype not in self.filesystems and v.name not in self.filesystems:
            return f"{self.name} runs on {', '.join(self.filesystems)}, not {v.fstype}"
        missing = [n for n in self.needs if not _provides(v, n)]
        return f"{self.name} needs {', '.join(missing)}, which variant {v.name} does not set up"


def _provides(v: Variant, need: str) -> bool:
    if need == "reflink":
        return v.fstype == "xfs" and "reflink=1" in v.mkfs
    if need == "buffered_iomap":
        return "buffered_iomap" in v.mount
    return False


_FIELDS = {f for f in Reproducer.__dataclass_fields__} - {"dir"}
EXTRA_ENV = "KHARNESS_REPRODUCERS"


def extra_manifests() -> list[Path]:
    """manifest.yaml of every directory in $KHARNESS_REPRODUCERS (each must have one)."""
    out = []
    for d in filter(None, os.environ.get(EXTRA_ENV, "").split(":")):
        m = Path(d).expanduser() / "manifest.yaml"
        if not m.is_file():
            raise UserError(f"${EXTRA_ENV}: {d} has no manifest.yaml (it lists extra reproducer directories)")
        out.append(m)
    return out


def load(path: Path | None = None) -> dict[str, Reproducer]:
    """One manifest; without a path, the built-in catalogue plus $KHARNESS_REPRODUCERS."""
    if path is not None:
        return _load(path)
    out = _load(REPRO_DIR / "manifest.yaml")
    for m in extra_manifests():
        for name, r in _load(m).items():
            if name in out:
                raise UserError(f"{m}: {name}: already defined in {out[name].dir / 'manifest.yaml'}; rename one")
            out[name] = r
    return out


def _load(path: Path) -> dict[str, Reproducer]:
    entries = yaml.safe_load(path.read_text()) or []
    out: dict[str, Reproducer] = {}
    for i, e in enumerate(entries):
        unknown = set(e) - _FIELDS
        if unknown:
            raise UserError(f"{path}: entry {i} ({e.get('name')}): unknown field(s) {', '.join(sorted(unknown))}")
        e = dict(e)
        for k in ("filesystems", "needs", "args"):
            if k in e:
                e[k] = tuple(str(x) for x in e[k])
        r = Reproducer(**e, dir=path.parent)
        if bool(r.source) == bool(r.script):
            raise UserError(f"{path}: {r.name}: give exactly one of source: or script:")
        out[r.name] = r
    return out


def lookup(catalogue: dict[str, Reproducer], name: str) -> Reproducer:
    if name in catalogue:
        return catalogue[name]
    close = difflib.get_close_matches(name, list(catalogue), n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(catalogue))}"
    where = "reproducers/manifest.yaml" + (f" or ${EXTRA_ENV}" if os.environ.get(EXTRA_ENV) else "")
    raise UserError(f"unknown test {name!r} (not in {where}); {hint}")


def build(r: Reproducer, log: Path) -> Path:
    """The file to upload: a script as is, or the C source built static (cached by content)."""
    if r.script:
        return r.dir / r.script
    src = r.dir / r.source
    compiler = proc.capture(["gcc", "--version"]).splitlines()[0]
    include = [r.dir] + ([REPRO_DIR] if r.dir != REPRO_DIR else [])   # common.h of the built-in catalogue
    headers = [h.read_bytes() for d in include for h in sorted(d.glob("*.h"))]
    key = cache.digest(src.read_bytes(), *headers, compiler, *CFLAGS)
    binary = cache.entry("bin", key) / r.name
    if binary.exists():
        return binary
    with cache.publishing("bin", key) as tmp:
        proc.run(["gcc", *CFLAGS, *(a for d in include for a in ("-I", d)), "-o", tmp / r.name, src], log)
    return binary

