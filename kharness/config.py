"""Run configuration: YAML -> typed dataclasses, with errors naming file, key and line.

The YAML is composed with yaml.SafeLoader into nodes (which keep their line
numbers) and walked against the dataclasses below. Every problem is a UserError
of one line: `configs/x.yaml:12: kernel.seris: unknown key (did you mean 'series'?)`.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import UserError
from .model import Variant
from .proof import PROOFS

REPO = Path(__file__).resolve().parent.parent


@dataclass
class DebianPackage:
    """A kernel source from a Debian package (issue 9): its .deb holds usr/src/<package>.tar.xz."""
    package: str                        # linux-source-7.2
    suite: str = "sid"                  # a suite of the host's own Debian mirror: sid, trixie, bookworm-backports
    version: str | None = None          # pin e.g. 7.2.13-1; default: the suite's current version


@dataclass
class SkipPatches:
    """Patches of a thread left out, and why (the report shows the reason)."""
    patches: str                        # "1-8", "15", "15, 16"
    reason: str                         # "upstream in 7.2"


@dataclass
class ThreadSeries:
    """A series taken from a mailing-list thread by its cover letter's Message-ID (issue 13)."""
    thread: str                         # Message-ID of the cover letter (with or without <>)
    name: str                           # the series' name in kernel.json and reports
    revision: int = 1                   # the vN to take; other revisions in the thread are left out
    source: str = "b4"                  # b4 (online) | an mbox/.mbx file | a directory of mails | a public-inbox git
    source_env: str | None = None       # an environment variable that, when set, replaces `source`
    skip: list[SkipPatches] = field(default_factory=list)
    apply: str = "strict"               # strict: git am --3way | fuzzy: patch -F<fuzz> where git am fails
    fuzz: int = 2                       # with apply: fuzzy, GNU patch's -F


@dataclass
class KernelConfig:
    """Where the kernel comes from and how it is configured (issue 2)."""
    tarball: str | None = None          # /usr/src/linux-source-6.12.tar.xz
    git: str | None = None              # path of a git tree (never modified)
    debian: DebianPackage | None = None  # {package: linux-source-7.2, suite: sid}, fetched with apt into the cache
    ref: str = "HEAD"                   # branch, tag or commit in `git`
    series: list[str | ThreadSeries] = field(default_factory=list)  # patches/<name>/ or a thread, in order
    base_config: str = "tinyconfig"     # tinyconfig | defconfig | path to a .config
    fragments: list[str] = field(default_factory=list)   # configs/kconfig/<name>.config
    jobs: int = 0                       # make -j; 0 = all cores
    cc: str = "gcc"
    ccache: bool = True


@dataclass
class ImageConfig:
    """The guest root filesystem (recipe in kvm/)."""
    suite: str | None = None            # default: the host's Debian release
    mirror: str | None = None           # default: debootstrap's own default
    size: str = "2G"


@dataclass
class VmConfig:
    memory: str = "2G"
    cpus: int = 2
    accel: str = "auto"                 # auto | kvm | tcg
    disk_size: str = "4G"               # test and scratch disks (sparse)
    boot_timeout: int = 120             # seconds from QEMU start to sshd answering (TCG)
    kvm_banner_timeout: int = 20        # auto: no "Linux version" within this -> TCG
    hung_task_timeout: int = 10         # kernel.hung_task_timeout_secs in the guest
    cmdline: str = ""                   # appended to the kernel command line


@dataclass
class BaselineConfig:
    """The same jobs on the same base without the series: labels regression/fixed/stable."""
    series: list[str | ThreadSeries] = field(default_factory=list)  # the baseline kernel's series (default: none)


@dataclass
class NightlyConfig:
    """`harness.py nightly` (issue 7): what happens around the run."""
    keep: int = 14                      # nightly run directories kept; older ones are pruned
    fetch: bool = False                 # `git fetch` in kernel.git first (its remote-tracking refs only)


@dataclass
class RunConfig:
    name: str
    kernel: KernelConfig = field(default_factory=KernelConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    vm: VmConfig = field(default_factory=VmConfig)
    variants: list[Variant] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)   # reproducer names (reproducers/manifest.yaml)
    repeat: int = 1
    warn_is_failure: bool = True
    warn_action: str = "stop"           # a WARNING that fails the job ends it at once; continue: run on
    results: str = "results"
    suites: dict[str, Any] = field(default_factory=dict)   # suites' own sections (SECTIONS), by key
    baseline: BaselineConfig | None = None  # also run the jobs on the base without the series
    nightly: NightlyConfig = field(default_factory=NightlyConfig)
    path: Path | None = None            # the file this came from (not a YAML key)


_NOT_KEYS = {"path", "suites"}


@dataclass(frozen=True)
class Section:
    """A top-level config section that a suite owns (kharness/suites.py registers them)."""
    cls: type                                   # the dataclass the YAML mapping is read into
    check: Callable[[RunConfig, Path], None]    # checks against the rest of the config (UserError)


SECTIONS: dict[str, Section] = {}


def register_section(name: str, cls: type, check: Callable[[RunConfig, Path], None]) -> None:
    SECTIONS[name] = Section(cls, check)
_VALID = {"vm.accel": {"auto", "kvm", "tcg"}, "apply": {"strict", "fuzzy"}, "warn_action": {"stop", "continue"}}
_SIZE = re.compile(r"^\d+[KMGT]?$")
# Run and variant names become path components on the host (results/<stamp>-<name>/,
# jobs/<variant>/) and in the guest (/mnt/test/<variant>.<job>, removed with rm -rf):
# no '/', no leading '.', nothing a shell or a path would read specially.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _build(tp, node: yaml.Node, key: str, path: Path):
    # Nodes are only composed, never constructed, so a !!python/... tag runs nothing; still,
    # refuse it (and local !tags) rather than read the tagged node as plain data.
    if not node.tag.startswith("tag:yaml.org,2002:") or node.tag.startswith("tag:yaml.org,2002:python/"):
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise UserError(f"{_where(path, node)}: {key or 'top level'}: YAML tag {tag} is not allowed in a config "
                        "(plain values only)")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        inner = [a for a in args if a is not type(None)]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return None
        if isinstance(node, yaml.MappingNode):      # str | ThreadSeries: a mapping is the dataclass
            inner = [a for a in inner if dataclasses.is_dataclass(a)] or inner
        return _build(inner[0], node, key, path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(node, yaml.MappingNode):
            raise UserError(f"{_where(path, node)}: {key or 'top level'}: expected a mapping of keys")
        return _build_dataclass(tp, node, key, path)
    if origin is list:
        if not isinstance(node, yaml.SequenceNode):
            raise UserError(f"{_where(path, node)}: {key}: expected a list, e.g. [a, b]")
        return [_build(args[0], item, f"{key}[{i}]", path) for i, item in enumerate(node.value)]
    if not isinstance(node, yaml.ScalarNode):
        raise UserError(f"{_where(path, node)}: {key}: expected a single {tp.__name__} value")
    value = node.value
    tag = node.tag
    if tp is bool:
        if not tag.endswith(":bool"):
            raise UserError(f"{_where(path, node)}: {key}: expected true or false, got {value!r}")
        return value.lower() in ("true", "yes", "on")
    if tp is int:
        if not tag.endswith(":int"):
            raise UserError(f"{_where(path, node)}: {key}: expected a whole number, got {value!r}")
        return int(value, 0)
    if tp is str:
        if tag.endswith(":null"):
            raise UserError(f"{_where(path, node)}: {key}: needs a value")
        return str(value)
    raise AssertionError(f"unsupported config type {tp}")


def _build_dataclass(cls, node: yaml.MappingNode, prefix: str, path: Path):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _NOT_KEYS]
    sections = SECTIONS if cls is RunConfig else {}
    names += list(sections)
    kwargs: dict[str, Any] = {}
    suites: dict[str, Any] = {}
    for knode, vnode in node.value:
        k = knode.value
        full = f"{prefix}.{k}" if prefix else k
        if k in kwargs or k in suites:
            raise UserError(f"{_where(path, knode)}: {full}: given twice; keep one")
        if k in sections:
            suites[k] = _build(sections[k].cls | None, vnode, full, path)
            continue
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(names)})"
            raise UserError(f"{_where(path, knode)}: {full}: unknown key{hint}")
        kwargs[k] = _build(hints[k], vnode, full, path)
        rule = _VALID.get(full, _VALID.get(k) if cls is ThreadSeries else None)
        if rule and kwargs[k] not in rule:
            raise UserError(f"{_where(path, vnode)}: {full}: must be one of {', '.join(sorted(rule))}")
    for f in dataclasses.fields(cls):
        if f.name in _NOT_KEYS:
            continue
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in kwargs:
            full = f"{prefix}.{f.name}" if prefix else f.name
            raise UserError(f"{_where(path, node)}: {full}: required key is missing")
    if sections:
        kwargs["suites"] = {k: v for k, v in suites.items() if v is not None}
    return cls(**kwargs)


def load(path: str | Path) -> RunConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found (configs/ has: "
                        f"{', '.join(sorted(p.name for p in (REPO / 'configs').glob('*.yaml')))})")
    except OSError as e:
        raise UserError(f"{path}: cannot read config: {e.strerror}")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else "?"
        raise UserError(f"{path}:{line}: malformed YAML: {e.problem or e.context}")
    if node is None:
        raise UserError(f"{path}: config is empty (needs at least `name:`)")
    cfg = _build(RunConfig, node, "", path)
    cfg.path = path
    _check(cfg, node, path)
    return cfg


def _check(cfg: RunConfig, node: yaml.Node, path: Path) -> None:
    k = cfg.kernel
    if bool(k.tarball) + bool(k.git) + bool(k.debian) != 1:
        raise UserError(f"{path}: kernel: give exactly one source, `kernel.tarball: FILE`, `kernel.git: PATH` "
                        f"or `kernel.debian: {{package: linux-source-7.2, suite: sid}}`")
    for label, value in (("image.size", cfg.image.size), ("vm.disk_size", cfg.vm.disk_size),
                         ("vm.memory", cfg.vm.memory)):
        if not _SIZE.match(value):
            raise UserError(f"{path}: {label}: {value!r} is not a size like 512M or 4G")
    if not _NAME.match(cfg.name):
        raise UserError(f"{path}: name: {cfg.name!r} must be letters, digits and _ . + - "
                        "(it names the results directory)")
    if cfg.repeat < 1:
        raise UserError(f"{path}: repeat: must be at least 1, got {cfg.repeat}")
    if cfg.nightly.keep < 1:
        raise UserError(f"{path}: nightly.keep: must be at least 1, got {cfg.nightly.keep}")
    if cfg.nightly.fetch and not cfg.kernel.git:
        raise UserError(f"{path}: nightly.fetch: only a `kernel.git` tree can be fetched; remove it or use kernel.git")
    if cfg.vm.cpus < 1:
        raise UserError(f"{path}: vm.cpus: must be at least 1, got {cfg.vm.cpus}")
    seen = set()
    for v in cfg.variants:
        if v.name in seen:
            raise UserError(f"{path}: variants: name {v.name!r} is used twice")
        seen.add(v.name)
        if not _NAME.match(v.name):
            raise UserError(f"{path}: variants[{v.name}].name: must be letters, digits and _ . + - "
                            "(it names a directory on the host and in the guest)")
        for label, value in (("mkfs", v.mkfs), ("mount", v.mount)):
            try:
                shlex.split(value)          # the options reach mkfs/mount as these words, never through a shell
            except ValueError as e:
                raise UserError(f"{path}: variants[{v.name}].{label}: {value!r} cannot be split into "
                                f"options ({e}); quote each option whole")
        if v.proof and v.proof not in PROOFS:
            raise UserError(f"{path}: variants[{v.name}].proof: {v.proof!r} is not a known proof "
                            f"({', '.join(sorted(PROOFS))})")
        if v.fstype not in ("ext4", "xfs"):
            raise UserError(f"{path}: variants[{v.name}].fstype: {v.fstype!r} is not supported (ext4 or xfs)")
    entries = [("kernel.series", e) for e in k.series]
    entries += [("baseline.series", e) for e in (cfg.baseline.series if cfg.baseline else [])]
    names = [e.name if isinstance(e, ThreadSeries) else e for _, e in entries if _ == "kernel.series"]
    for label, e in entries:
        if not isinstance(e, ThreadSeries):
            continue
        if not _NAME.match(e.name):
            raise UserError(f"{path}: {label}: thread name {e.name!r} must be letters, digits and _ . + -")
        if e.revision < 1:
            raise UserError(f"{path}: {label}[{e.name}].revision: must be at least 1, got {e.revision}")
        if e.apply == "fuzzy" and not 0 <= e.fuzz <= 10:
            raise UserError(f"{path}: {label}[{e.name}].fuzz: must be 0 to 10 (GNU patch -F), got {e.fuzz}")
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise UserError(f"{path}: kernel.series: {dup!r} is named twice; a series is applied once")
    for name, section in SECTIONS.items():
        if name in cfg.suites:
            section.check(cfg, path)


def select_variants(cfg: RunConfig, names: list[str] | None) -> list[Variant]:
    """The config's variants, or those named with --fs (each must exist)."""
    if not names:
        return list(cfg.variants)
    by_name = {v.name: v for v in cfg.variants}
    for n in names:
        if n not in by_name:
            raise UserError(f"--fs {n}: no such variant in {cfg.path} (variants: {', '.join(by_name) or 'none'})")
    return [by_name[n] for n in names]


def size_bytes(size: str) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(size[:-1]) * mult[size[-1]] if size[-1] in mult else int(size)


def repo_path(p: str) -> Path:
    """A path from a config: absolute or ~ as given, else relative to the repository."""
    q = Path(p).expanduser()
    return q if q.is_absolute() else REPO / q
