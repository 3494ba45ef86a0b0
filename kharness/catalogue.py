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
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import cache, files, proc
from .config import REPO, compose, name_problem
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


EXPECT = ("pass", "fail", "hang", "crash", "warn")
MAX_MANIFEST_BYTES = 1 << 20


def extra_manifests() -> list[Path]:
    """manifest.yaml of every directory in $KHARNESS_REPRODUCERS (each must have one)."""
    out = []
    for d in filter(None, os.environ.get(EXTRA_ENV, "").split(":")):
        m = Path(d).expanduser() / "manifest.yaml"
        try:
            found = m.is_file()
        except OSError as e:            # a name too long, a loop of symlinks
            raise UserError(f"${EXTRA_ENV}: {d[:200]}: {e.strerror}; it lists extra reproducer directories")
        if not found:
            if os.path.lexists(m):
                files.check_regular(m, "reproducer manifest")
            raise UserError(f"${EXTRA_ENV}: {d} has no manifest.yaml (it lists extra reproducer directories)")
        out.append(m)
    return out


def load(path: Path | None = None) -> dict[str, Reproducer]:
    """One manifest; without a path, the built-in catalogue plus $KHARNESS_REPRODUCERS."""
    if path is not None:
        return _check_files(_load(path))
    out = _load(REPRO_DIR / "manifest.yaml")
    for m in extra_manifests():
        for name, r in _load(m).items():
            if name in out:
                raise UserError(f"{m}: {name}: already defined in {out[name].dir / 'manifest.yaml'}; rename one")
            out[name] = r
    return _check_files(out)


def _check_files(cat: dict[str, Reproducer]) -> dict[str, Reproducer]:
    """Every entry's source or script is a file beside its manifest (not found mid-run, at upload)."""
    for r in cat.values():
        file = r.source or r.script
        if "/" in file or file.startswith(".") or not (r.dir / file).is_file():
            raise UserError(f"{r.dir / 'manifest.yaml'}: {r.name}: {'source' if r.source else 'script'} {file!r} "
                            f"is not a file in {r.dir}")
    return cat


def _field(path: Path, where: str, name: str, k: str, node, tp):
    """One manifest field's value, of the type the Reproducer field has (one line if not)."""
    at = f"{path}:{node.start_mark.line + 1}: {name}.{k}"
    if typing.get_origin(tp) is tuple:
        if not isinstance(node, yaml.SequenceNode) or not all(isinstance(x, yaml.ScalarNode) for x in node.value):
            raise UserError(f"{at}: expected a list of words, e.g. [ext4, xfs]")
        return tuple(x.value for x in node.value)
    if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
        raise UserError(f"{at}: expected a single value")
    if tp is int:
        if not node.tag.endswith(":int") or not node.value.isdigit() or not 1 <= len(node.value) <= 7:
            raise UserError(f"{at}: expected a whole number of seconds in plain digits, got {node.value!r}")
        return int(node.value)
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in node.value):
        raise UserError(f"{at}: {node.value[:60]!r} contains a newline or control character")
    return node.value


def _load(path: Path) -> dict[str, Reproducer]:
    """One manifest.yaml: a list of entries, each a mapping of known fields of the right type."""
    node = compose(files.read_text(path, "reproducer manifest", MAX_MANIFEST_BYTES), path)
    if node is None:
        return {}
    if not isinstance(node, yaml.SequenceNode):
        raise UserError(f"{path}:{node.start_mark.line + 1}: a reproducer manifest is a list of entries "
                        f"(- name: ..., source: or script: ..., description: ...)")
    hints = typing.get_type_hints(Reproducer)
    out: dict[str, Reproducer] = {}
    for i, enode in enumerate(node.value):
        where = f"{path}:{enode.start_mark.line + 1}"
        if not isinstance(enode, yaml.MappingNode):
            raise UserError(f"{where}: entry {i}: expected a mapping (name:, source: or script:, description:)")
        raw = {}
        for knode, vnode in enode.value:
            k = knode.value if isinstance(knode, yaml.ScalarNode) else None
            if k not in _FIELDS:
                raise UserError(f"{_line(path, knode)}: entry {i}: unknown field {str(k)[:60]!r} "
                                f"(fields: {', '.join(sorted(_FIELDS))})")
            if k in raw:
                raise UserError(f"{_line(path, knode)}: entry {i}: {k} given twice; keep one")
            raw[k] = vnode
        if "name" not in raw:
            raise UserError(f"{where}: entry {i}: needs a name:")
        name = _field(path, where, f"entry {i}", "name", raw["name"], str)
        if why := name_problem(name):
            raise UserError(f"{_line(path, raw['name'])}: entry {i}: name {name[:64]!r} {why}")
        e = {k: _field(path, where, name, k, v, hints[k]) for k, v in raw.items()}
        if "description" not in e:
            raise UserError(f"{where}: {name}: needs a description: (one line, for `harness.py list`)")
        r = Reproducer(**e, dir=path.parent)
        if bool(r.source) == bool(r.script):
            raise UserError(f"{where}: {r.name}: give exactly one of source: or script:")
        if r.timeout < 1:
            raise UserError(f"{where}: {r.name}.timeout: must be at least 1 second, got {r.timeout}")
        if r.expect not in EXPECT:
            raise UserError(f"{where}: {r.name}.expect: {r.expect!r} is not one of {', '.join(EXPECT)}")
        if r.name in out:
            raise UserError(f"{where}: {r.name}: defined twice in this manifest; rename one")
        out[r.name] = r
    return out


def _line(path: Path, node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


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

