"""The `fstests:` section of a run config, test selectors, and fstests' local.config."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

TEST_DEV, SCRATCH_DEV = "/dev/vdb", "/dev/vdc"
TEST_DIR, SCRATCH_MNT = "/mnt/test", "/mnt/scratch"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

_TEST_RE = re.compile(r"^([a-z0-9_]+)/(\d{3}(?:-?[A-Za-z0-9-]*))$")
_GROUP_RE = re.compile(r"^(?:[a-z0-9_]+/)?[A-Za-z0-9_-]+$")

# ====================================================================== config

@dataclass
class FstestsExpunge:
    """Tests not to run, on some variants (default: all), with the reason shown as the skip."""
    tests: list[str]
    variants: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class FstestsTimeout:
    """A watchdog for some tests that wins over check.time history and fstests.test_timeout."""
    tests: list[str]
    seconds: int


@dataclass
class FstestsConfig:
    """The `fstests:` section of a run config."""
    source: str | None = None           # a local fstests tree, used as it is (local changes included)
    git: str | None = None              # or a git URL / path, cloned into the cache
    ref: str = "HEAD"                   # branch, tag or commit in `git`
    tests: list[str] = field(default_factory=list)      # generic/363, groups: "-g zero" or "zero"
    variants: list[str] = field(default_factory=list)   # variants to run on (default: all)
    expunge: list[FstestsExpunge] = field(default_factory=list)
    test_timeout: int = 900             # watchdog for a test with no check.time history (seconds)
    timeouts: list[FstestsTimeout] = field(default_factory=list)   # per-test watchdogs
    jobs: int = 0                       # make -j for the build (0: all cores)


def fstests_config(cfg) -> FstestsConfig:
    """The run config's `fstests:` section, or the defaults when it has none."""
    return cfg.suites.get("fstests") or FstestsConfig()


def check_config(cfg, path) -> None:
    """Checks of the `fstests:` section against the rest of the run config (config._check calls this)."""
    f = fstests_config(cfg)
    if f.source and f.git:
        raise UserError(f"{path}: fstests: give one source, `fstests.source: PATH` or `fstests.git: URL`, not both")
    for s in f.tests:
        parse_selector(s, f"{path}: fstests.tests")
    names = {v.name for v in cfg.variants}
    for n in f.variants:
        if n not in names:
            raise UserError(f"{path}: fstests.variants: no variant named {n!r} (variants: {', '.join(sorted(names))})")
    for i, e in enumerate(f.expunge):
        for t in e.tests:
            if not _TEST_RE.match(t):
                raise UserError(f"{path}: fstests.expunge[{i}].tests: {t!r} is not a test name like generic/363")
        for n in e.variants:
            if n not in names:
                raise UserError(f"{path}: fstests.expunge[{i}].variants: no variant named {n!r}")
    if f.test_timeout < 60:
        raise UserError(f"{path}: fstests.test_timeout: {f.test_timeout} s is too short (at least 60)")
    for i, t in enumerate(f.timeouts):
        if t.seconds < 10:
            raise UserError(f"{path}: fstests.timeouts[{i}].seconds: {t.seconds} s is too short (at least 10)")
        for name in t.tests:
            if not _TEST_RE.match(name):
                raise UserError(f"{path}: fstests.timeouts[{i}].tests: {name!r} is not a test name like generic/363")
    seen: dict[str, str] = {}
    for v in cfg.variants:
        for label, value in (("mkfs", v.mkfs), ("mount", v.mount)):
            # fstests' parse_config_section() evals each line inside double quotes: $, ` and backslash would be
            # expanded (run) in the guest, and # starts a comment there (cuts the option short).
            if any(c in value for c in "\"'\n$`\\#"):
                raise UserError(f"{path}: variants[{v.name}].{label}: fstests' local.config cannot hold quotes, "
                                f"$, `, \\, # or newlines in an option value ({value!r})")
        s = section_name(v.name)
        if s in seen:
            raise UserError(f"{path}: variants {seen[s]!r} and {v.name!r} give the same fstests section name {s!r}")
        seen[s] = v.name


def is_test_name(name: str) -> bool:
    return bool(_TEST_RE.match(name.strip()))


def is_selector(name: str) -> bool:
    """Names on the command line (--only, repro) that mean fstests rather than a reproducer."""
    n = name.strip()
    return n == "fstests" or n.startswith("-g ") or is_test_name(n)


def parse_selector(s: str, where: str = "fstests") -> tuple[str, str]:
    """'generic/363' -> ('test', 'generic/363'); '-g zero' or 'zero' (or 'xfs/quick') -> ('group', ...)."""
    t = s.strip()
    if t.startswith("-g"):
        g = t[2:].strip()
        if not g or not _GROUP_RE.match(g):
            raise UserError(f"{where}: {s!r}: expected a group name after -g, e.g. '-g zero'")
        return "group", g
    if _TEST_RE.match(t):
        return "test", t
    if _GROUP_RE.match(t):
        return "group", t
    raise UserError(f"{where}: {s!r} is neither a test (generic/363) nor a group (-g zero)")


# ====================================================================== local.config

def section_name(variant_name: str) -> str:
    """fstests section names allow [A-Za-z0-9_] only."""
    return re.sub(r"[^A-Za-z0-9_]", "_", variant_name)


def render_local_config(variants, origin: str = "") -> str:
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    sections = [{"name": section_name(v.name), "variant": v.name, "fstype": v.fstype,
                 "mkfs": v.mkfs.strip(), "mount": v.mount.strip()} for v in variants]
    return env.get_template("local.config.j2").render(
        sections=sections, origin=origin, test_dev=TEST_DEV, test_dir=TEST_DIR,
        scratch_dev=SCRATCH_DEV, scratch_mnt=SCRATCH_MNT)


