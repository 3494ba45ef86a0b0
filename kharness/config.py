"""Run configuration: YAML -> typed dataclasses, with errors naming file, key and line.

The YAML is composed with yaml.SafeLoader into nodes (which keep their line
numbers) and walked against the dataclasses below. Every problem is a UserError
of one line: `configs/x.yaml:12: kernel.seris: unknown key (did you mean 'series'?)`.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import shlex
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from . import files
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
    parallel: int = 0                   # guests at once (run -j N); 0: what the host's cores and memory allow


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
    lines: dict[str, int] = field(default_factory=dict, repr=False)   # "vm.disk_size" -> its line (not a key)


_NOT_KEYS = {"path", "suites", "lines"}


@dataclass(frozen=True)
class Section:
    """A top-level config section that a suite owns (kharness/suites.py registers them)."""
    cls: type                                   # the dataclass the YAML mapping is read into
    check: Callable[[RunConfig, Path], None]    # checks against the rest of the config (UserError)


SECTIONS: dict[str, Section] = {}


def register_section(name: str, cls: type, check: Callable[[RunConfig, Path], None]) -> None:
    SECTIONS[name] = Section(cls, check)
_VALID = {"vm.accel": {"auto", "kvm", "tcg"}, "apply": {"strict", "fuzzy"}, "warn_action": {"stop", "continue"}}
_SIZE = re.compile(r"\d+[KMGT]?")
# Run and variant names become path components on the host (results/<stamp>-<name>/,
# jobs/<variant>/) and in the guest (/mnt/test/<variant>.<job>, removed with rm -rf):
# no '/', no leading '.', nothing a shell or a path would read specially, and short enough
# that a run directory's name (stamp, name, test, shard) stays far below NAME_MAX (255).
NAME_MAX = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
MAX_CONFIG_BYTES = 1 << 20
MAX_REPEAT = 1000                       # repeat: and --repeat (each iteration is a job of its own)
MAX_JOBS = 10000                        # jobs one plan may make (variants x tests x repeat): more is a slip
MAX_GUESTS = 256                        # vm.parallel and -j: guests at once
MAX_INT = 1_000_000                     # any other whole number in a config (seconds, counts)
# Whole numbers with their own range (lo, hi); every other int in a config is 0..MAX_INT.
_RANGE = {
    (KernelConfig, "jobs"): (0, 4096),
    (ThreadSeries, "revision"): (1, 1000),
    (VmConfig, "cpus"): (1, 255),                   # QEMU's pc machine
    (VmConfig, "parallel"): (0, MAX_GUESTS),
    (VmConfig, "boot_timeout"): (1, 86400),
    (VmConfig, "kvm_banner_timeout"): (1, 3600),
    (VmConfig, "hung_task_timeout"): (1, 86400),    # 0 would turn hang detection off
    (RunConfig, "repeat"): (1, MAX_REPEAT),
    (NightlyConfig, "keep"): (1, 100000),
}
# Sizes (512M, 4G) and the least each can be.
_SIZES = {(ImageConfig, "size"): 64 << 20, (VmConfig, "memory"): 64 << 20, (VmConfig, "disk_size"): 16 << 20}
MAX_SIZE = 1 << 50                      # 1024T
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# YAML 1.1 reads these as numbers that YAML 1.2 and people read otherwise: 010 is 8, 1:30 is 90, 1_0 is 10.
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)|0x[0-9a-fA-F]+|0b[01]+")
MAX_DIGITS = 18                         # longer than any limit here (and int() refuses 4300 digits)
# Names handed to apt and debootstrap as arguments (debsrc.py checks them with these, too): a
# name that starts with '-' would be an option, one with '/' or '..' a path.
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9.+-]+")
DEBIAN_SUITE = re.compile(r"[a-z0-9][a-z0-9.+-]*")
DEBIAN_VERSION = re.compile(r"[0-9][A-Za-z0-9.+~:-]*")
_MIRROR = re.compile(r"(https?|ftp|file)://[^\s]+")


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def at(cfg: RunConfig, key: str) -> str:
    """'FILE:LINE' of a config key as written (just 'FILE' for a key the file does not give)."""
    line = cfg.lines.get(key)
    return f"{cfg.path}:{line}" if line else f"{cfg.path}"


def _int(value: str, where: str, key: str) -> int:
    if len(value.lstrip("+-")) > MAX_DIGITS and _INT.fullmatch(value):
        raise UserError(f"{where}: {key}: {value[:MAX_DIGITS]!r}... has {len(value.lstrip('+-'))} digits, "
                        f"more than any value here can be; give a number within its limit")
    if not _INT.fullmatch(value):
        form = ("a ':' (YAML 1.1 reads it as base 60)" if ":" in value else
                "a '_' (YAML 1.1 drops it)" if "_" in value else
                "a leading 0 (YAML 1.1 reads it as octal)" if re.fullmatch(r"[-+]?0[0-9]+", value) else
                "a form YAML 1.1 reads its own way")
        raise UserError(f"{where}: {key}: {value!r} has {form}; write the number in plain digits")
    return int(value, 0)


def _build(tp, node: yaml.Node, key: str, path: Path, allow_empty: bool = False, lines: dict | None = None):
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
        return _build(inner[0], node, key, path, allow_empty, lines)
    if dataclasses.is_dataclass(tp):
        if not isinstance(node, yaml.MappingNode):
            raise UserError(f"{_where(path, node)}: {key or 'top level'}: expected a mapping of keys")
        return _build_dataclass(tp, node, key, path, lines)
    if origin is list:
        if not isinstance(node, yaml.SequenceNode):
            raise UserError(f"{_where(path, node)}: {key}: expected a list, e.g. [a, b]")
        out = [_build(args[0], item, f"{key}[{i}]", path, lines=lines) for i, item in enumerate(node.value)]
        if args[0] is str:          # names of things: twice is a mistake (repeat: runs a test again)
            for i, v in enumerate(out):
                if v in out[:i]:
                    raise UserError(f"{_where(path, node.value[i])}: {key}[{i}]: {v!r} is listed twice; "
                                    f"list it once")
        return out
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
        return _int(value, _where(path, node), key)
    if tp is str:
        if tag.endswith(":null"):
            raise UserError(f"{_where(path, node)}: {key}: needs a value")
        if m := _CONTROL.search(value):
            what = "a newline" if m.group() == "\n" else f"the control character {m.group()!r}"
            hint = (" (a YAML block scalar, | or >, keeps its final newline; write the value on the key's line)"
                    if m.group() == "\n" else "")
            raise UserError(f"{_where(path, node)}: {key}: {value!r} contains {what}{hint}")
        if not value and not allow_empty:
            raise UserError(f"{_where(path, node)}: {key}: needs a value (an empty string is not one)")
        return str(value)
    raise AssertionError(f"unsupported config type {tp}")


def _build_dataclass(cls, node: yaml.MappingNode, prefix: str, path: Path, lines: dict[str, int] | None = None):
    hints = typing.get_type_hints(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _NOT_KEYS]
    sections = SECTIONS if cls is RunConfig else {}
    names += list(sections)
    kwargs: dict[str, Any] = {}
    suites: dict[str, Any] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):
            raise UserError(f"{_where(path, knode)}: {prefix or 'top level'}: a key must be a plain word, "
                            f"not a {'list' if isinstance(knode, yaml.SequenceNode) else 'mapping'}")
        k = knode.value
        full = f"{prefix}.{k}" if prefix else k
        if lines is not None:
            lines[full] = vnode.start_mark.line + 1
        if k in kwargs or k in suites:
            raise UserError(f"{_where(path, knode)}: {full}: given twice; keep one")
        if k in sections:
            suites[k] = _build(sections[k].cls | None, vnode, full, path, lines=lines)
            continue
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(names)})"
            raise UserError(f"{_where(path, knode)}: {full}: unknown key{hint}")
        kwargs[k] = _build(hints[k], vnode, full, path, allow_empty=defaults[k] == "", lines=lines)
        _check_value(cls, k, kwargs[k], full, _where(path, vnode))
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


def _check_value(cls, k: str, value, full: str, where: str) -> None:
    """The range of a whole number and the form of a size, where the value is written."""
    if isinstance(value, int) and not isinstance(value, bool):
        lo, hi = _RANGE.get((cls, k), (0, MAX_INT))
        if value < lo:
            raise UserError(f"{where}: {full}: must be at least {lo}, got {value}")
        if value > hi:
            raise UserError(f"{where}: {full}: must be at most {hi}, got {value}")
    if (cls, k) in _SIZES:
        if not _SIZE.fullmatch(value):
            raise UserError(f"{where}: {full}: {value!r} is not a size like 512M or 4G")
        least = _SIZES[(cls, k)]
        n = MAX_SIZE + 1 if len(value) > MAX_DIGITS else size_bytes(value)
        if not least <= n <= MAX_SIZE:
            raise UserError(f"{where}: {full}: {value[:MAX_DIGITS + 1]}{'...' if len(value) > MAX_DIGITS else ''} is "
                            f"{'too small' if n < least else 'too big'}; give {least >> 20}M to {MAX_SIZE >> 40}T")


def compose(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree of a config or manifest; one line naming the line if it is not YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else "?"
        raise UserError(f"{path}:{line}: malformed YAML: {e.problem or e.context}")
    except yaml.reader.ReaderError as e:       # a byte YAML does not allow in a file (NUL, other controls)
        line = text.count("\n", 0, e.position) + 1
        c = e.character if isinstance(e.character, int) else ord(e.character)
        raise UserError(f"{path}:{line}: malformed YAML: character U+{c:04X} is not allowed in YAML text "
                        f"(offset {e.position}); remove it")
    except yaml.YAMLError as e:
        raise UserError(f"{path}: malformed YAML: {str(e).splitlines()[0]}")
    except RecursionError:
        raise UserError(f"{path}: malformed YAML: nested too deeply to be a config")


def load(path: str | Path) -> RunConfig:
    path = Path(path)
    if not os.path.lexists(path):
        raise UserError(f"{path}: config file not found (configs/ has: "
                        f"{', '.join(sorted(p.name for p in (REPO / 'configs').glob('*.yaml')))})")
    text = files.read_text(path, "config", MAX_CONFIG_BYTES)
    node = compose(text, path)
    if node is None:
        raise UserError(f"{path}: config is empty (needs at least `name:`)")
    lines: dict[str, int] = {}
    cfg = _build(RunConfig, node, "", path, lines=lines)
    cfg.path = path
    cfg.lines = lines
    _check(cfg, node, path)
    return cfg


def _short(name: str) -> str:
    return repr(name) if len(name) <= NAME_MAX else repr(name[:NAME_MAX]) + "..."


def name_problem(name: str) -> str | None:
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters; at most {NAME_MAX}"
    if not _NAME.fullmatch(name):
        return "must be letters, digits and _ . + -"
    return None


def _check(cfg: RunConfig, node: yaml.Node, path: Path) -> None:
    """What one value alone cannot say: the values against each other (each error at its line)."""
    k = cfg.kernel
    if bool(k.tarball) + bool(k.git) + bool(k.debian) != 1:
        raise UserError(f"{at(cfg, 'kernel')}: kernel: give exactly one source, `kernel.tarball: FILE`, "
                        f"`kernel.git: PATH` or `kernel.debian: {{package: linux-source-7.2, suite: sid}}`")
    if why := name_problem(cfg.name):
        raise UserError(f"{at(cfg, 'name')}: name: {_short(cfg.name)} {why} (it names the results directory)")
    _check_debian_names(cfg)
    results = repo_path(cfg.results).resolve()
    if results == REPO or results == REPO / ".git" or REPO / ".git" in results.parents:
        raise UserError(f"{at(cfg, 'results')}: results: {cfg.results!r} is the checkout itself; run directories "
                        f"need a directory of their own (the default is `results`)")
    if cfg.nightly.fetch and not cfg.kernel.git:
        raise UserError(f"{at(cfg, 'nightly.fetch')}: nightly.fetch: only a `kernel.git` tree can be fetched; "
                        f"remove it or use kernel.git")
    seen = set()
    for i, v in enumerate(cfg.variants):
        key = f"variants[{i}]"
        if v.name in seen:
            raise UserError(f"{at(cfg, key + '.name')}: variants: name {v.name!r} is used twice")
        seen.add(v.name)
        if why := name_problem(v.name):
            raise UserError(f"{at(cfg, key + '.name')}: variants[{v.name[:NAME_MAX]}].name: {why} "
                            "(it names a directory on the host and in the guest)")
        for label, value in (("mkfs", v.mkfs), ("mount", v.mount)):
            try:
                shlex.split(value)          # the options reach mkfs/mount as these words, never through a shell
            except ValueError as e:
                raise UserError(f"{at(cfg, f'{key}.{label}')}: variants[{v.name}].{label}: {value!r} cannot be "
                                f"split into options ({e}); quote each option whole")
        if v.proof and v.proof not in PROOFS:
            raise UserError(f"{at(cfg, key + '.proof')}: variants[{v.name}].proof: {v.proof!r} is not a known proof "
                            f"({', '.join(sorted(PROOFS))})")
        if v.fstype not in ("ext4", "xfs"):
            raise UserError(f"{at(cfg, key + '.fstype')}: variants[{v.name}].fstype: {v.fstype!r} is not supported "
                            f"(ext4 or xfs)")
    entries = [("kernel.series", i, e) for i, e in enumerate(k.series)]
    entries += [("baseline.series", i, e) for i, e in enumerate(cfg.baseline.series if cfg.baseline else [])]
    names = [e.name if isinstance(e, ThreadSeries) else e for label, _, e in entries if label == "kernel.series"]
    for label, i, e in entries:
        if not isinstance(e, ThreadSeries):
            continue
        if why := name_problem(e.name):
            raise UserError(f"{at(cfg, f'{label}[{i}].name')}: {label}: thread name {_short(e.name)} {why}")
        if e.apply == "fuzzy" and not 0 <= e.fuzz <= 10:
            raise UserError(f"{at(cfg, f'{label}[{i}].fuzz')}: {label}[{e.name}].fuzz: must be 0 to 10 "
                            f"(GNU patch -F), got {e.fuzz}")
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise UserError(f"{at(cfg, 'kernel.series')}: kernel.series: {dup!r} is named twice; a series is applied once")
    for name, section in SECTIONS.items():
        if name in cfg.suites:
            section.check(cfg, path)


def _check_debian_names(cfg: RunConfig) -> None:
    """Names that become apt-get and debootstrap arguments: a Debian name, never an option or a path."""
    d = cfg.kernel.debian
    checks = [("kernel.debian.package", d.package, DEBIAN_PACKAGE, "a Debian package name, e.g. linux-source-7.2"),
              ("kernel.debian.suite", d.suite, DEBIAN_SUITE, "a Debian suite, e.g. sid, trixie, bookworm-backports"),
              ("kernel.debian.version", d.version, DEBIAN_VERSION, "a Debian version, e.g. 7.2.13-1")] if d else []
    checks += [("image.suite", cfg.image.suite, DEBIAN_SUITE, "a Debian suite debootstrap knows, e.g. bookworm"),
               ("image.mirror", cfg.image.mirror, _MIRROR, "a mirror URL, e.g. http://deb.debian.org/debian")]
    for key, value, pattern, what in checks:
        if value is not None and not pattern.fullmatch(value):
            raise UserError(f"{at(cfg, key)}: {key}: {value[:80]!r} is not {what}")


def check_job_count(cfg: RunConfig, count: int, how: str) -> None:
    """Every plan is bounded (each job is a guest command of seconds to hours): one line, before
    the jobs are made, if a config or the command line asks for more than MAX_JOBS."""
    if count > MAX_JOBS:
        raise UserError(f"{cfg.path}: the plan makes {count} jobs ({how}); at most {MAX_JOBS} in one run: "
                        f"lower repeat (--repeat) or list fewer variants or tests")


def select_variants(cfg: RunConfig, names: list[str] | None) -> list[Variant]:
    """The config's variants, or those named with --fs (each must exist)."""
    if not names:
        return list(cfg.variants)
    by_name = {v.name: v for v in cfg.variants}
    for i, n in enumerate(names):
        if n in names[:i]:
            raise UserError(f"--fs {n}: given twice; name each variant once (--repeat runs a job again)")
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
