"""The reproducer catalogue: reproducers/manifest.yaml, and host-built static binaries.

Each entry names a C source (built here with gcc -static and uploaded) or a
shell script (uploaded as is), which filesystems it applies to, its default
arguments, its timeout and what it expects (pass, or hang for the canary).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import cache, proc
from .config import REPO, Variant
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


_FIELDS = {f for f in Reproducer.__dataclass_fields__}


def load(path: Path | None = None) -> dict[str, Reproducer]:
    path = path or REPRO_DIR / "manifest.yaml"
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
        r = Reproducer(**e)
        if bool(r.source) == bool(r.script):
            raise UserError(f"{path}: {r.name}: give exactly one of source: or script:")
        out[r.name] = r
    return out


def lookup(catalogue: dict[str, Reproducer], name: str) -> Reproducer:
    if name in catalogue:
        return catalogue[name]
    close = difflib.get_close_matches(name, list(catalogue), n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(catalogue))}"
    raise UserError(f"unknown test {name!r} (not in reproducers/manifest.yaml); {hint}")


def build(r: Reproducer, log: Path) -> Path:
    """The file to upload: a script as is, or the C source built static (cached by content)."""
    if r.script:
        return REPRO_DIR / r.script
    src = REPRO_DIR / r.source
    compiler = proc.capture(["gcc", "--version"]).splitlines()[0]
    headers = [h.read_bytes() for h in sorted(REPRO_DIR.glob("*.h"))]
    key = cache.digest(src.read_bytes(), *headers, compiler, *CFLAGS)
    binary = cache.entry("bin", key) / r.name
    if binary.exists():
        return binary
    with cache.publishing("bin", key) as tmp:
        proc.run(["gcc", *CFLAGS, "-I", REPRO_DIR, "-o", tmp / r.name, src], log)
    return binary

