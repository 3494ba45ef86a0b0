"""The host's apt sources, read as apt reads them, and the same Debian mirrors for another suite.

    /etc/apt/sources.list, sources.list.d/*.list|*.sources  --parse_sources-->  [AptSource]
      --host_debian_sources: keep Debian archive entries (suite names, components, keys)-->
      --private_sources: swap the suite (bookworm -> sid), drop -updates/-security-->
      --render_deb822--> the text of a private .sources file

Pure reading: nothing here writes a file or runs apt, and no mirror host name is
written here (the mirror is the one the host already uses).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_PARTS = Path("/etc/apt/sources.list.d")

# Debian release names, oldest first (the order gives the "next release" hint).
CODENAMES = ("buzz", "rex", "bo", "hamm", "slink", "potato", "woody", "sarge", "etch", "lenny", "squeeze",
             "wheezy", "jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke")
ALIASES = ("sid", "experimental", "rc-buggy", "unstable", "testing", "stable", "oldstable", "oldoldstable")
COMPONENTS = {"main", "contrib", "non-free", "non-free-firmware"}
# Suites a mirror serves beside a release; they never carry the release's own packages.
_SIDE_SUITE = re.compile(r"(-updates|-security|/updates|-proposed-updates|-backports|-backports-sloppy)$")
# One-line `[opt=value]` names -> deb822 field names (sources.list(5)).
_ONE_LINE_OPTS = {"arch": "Architectures", "arch+": "Architectures-Add", "arch-": "Architectures-Remove",
                  "lang": "Languages", "lang+": "Languages-Add", "lang-": "Languages-Remove",
                  "target": "Targets", "target+": "Targets-Add", "target-": "Targets-Remove",
                  "pdiffs": "PDiffs", "by-hash": "By-Hash", "allow-insecure": "Allow-Insecure",
                  "allow-weak": "Allow-Weak", "allow-downgrade-to-insecure": "Allow-Downgrade-To-Insecure",
                  "trusted": "Trusted", "signed-by": "Signed-By", "check-valid-until": "Check-Valid-Until",
                  "valid-until-min": "Valid-Until-Min", "valid-until-max": "Valid-Until-Max",
                  "check-date": "Check-Date", "date-max-future": "Date-Max-Future",
                  "inrelease-path": "InRelease-Path", "snapshot": "Snapshot"}
_CORE_FIELDS = {"types", "uris", "suites", "components", "enabled"}
# Options about the host's release and its index targets, not about trust or transport: not carried over.
_DROP_OPTS = _CORE_FIELDS | {"targets", "targets-add", "targets-remove", "languages", "languages-add",
                             "languages-remove", "snapshot", "inrelease-path"}


@dataclass(frozen=True)
class AptSource:
    """One apt source entry (a deb822 stanza or a one-line `deb` line), options in deb822 spelling."""
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()     # (Field, value) e.g. ("Signed-By", "/usr/share/keyrings/...")
    origin: str = ""                              # file:line, for messages

    def option(self, name: str) -> str | None:
        return next((v for k, v in self.options if k.lower() == name.lower()), None)


# ---------------------------------------------------------------- host sources

def host_codename(os_release: Path = Path("/etc/os-release")) -> str | None:
    try:
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or None
    except OSError:
        pass
    return None


def _parse_one_line(text: str, name: str) -> list[AptSource]:
    out = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^(\S+)\s+(?:\[([^]]*)\]\s*)?(\S+)\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        typ, opts, uri, suite, comps = m.groups()
        options = []
        for opt in (opts or "").split():
            k, _, v = opt.partition("=")
            key = _ONE_LINE_OPTS.get(k.lower(), k)
            options.append((key, " ".join(v.split(","))))
        out.append(AptSource((typ,), (uri,), (suite,), tuple(comps.split()), tuple(options), f"{name}:{lineno}"))
    return out


def _parse_deb822(text: str, name: str) -> list[AptSource]:
    out = []
    stanzas: list[tuple[int, list[tuple[str, str]]]] = []
    cur: list[tuple[str, str]] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines() + [""], 1):
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if cur:
                stanzas.append((start, cur))
            cur = []
            continue
        if raw[0] in " \t" and cur:
            k, v = cur[-1]
            cur[-1] = (k, v + "\n" + raw)          # continuation line kept verbatim
            continue
        k, sep, v = raw.partition(":")
        if not sep:
            continue
        if not cur:
            start = lineno
        cur.append((k.strip(), v.strip()))
    for lineno, fields in stanzas:
        get = {k.lower(): v for k, v in fields}
        if get.get("enabled", "yes").strip().lower() in ("no", "false", "0"):
            continue
        if not get.get("uris") or not get.get("suites"):
            continue
        opts = tuple((k, v) for k, v in fields if k.lower() not in _CORE_FIELDS)
        out.append(AptSource(tuple(get.get("types", "deb").split()), tuple(get["uris"].split()),
                             tuple(get["suites"].split()), tuple(get.get("components", "").split()),
                             opts, f"{name}:{lineno}"))
    return out


def parse_sources(sources_list: Path = SOURCES_LIST, parts: Path = SOURCES_PARTS) -> list[AptSource]:
    """Every entry apt itself would read: sources.list plus parts/*.list and parts/*.sources."""
    files = [sources_list] if sources_list.is_file() else []
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources") and p.is_file())
    out = []
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        out += _parse_deb822(text, str(f)) if f.suffix == ".sources" else _parse_one_line(text, str(f))
    return out


def _suite_base(suite: str) -> str:
    return _SIDE_SUITE.sub("", suite)


def _signed_by_debian(src: AptSource) -> bool:
    """No Signed-By (the host's trusted keys decide) or a Signed-By naming a Debian archive keyring."""
    sb = src.option("Signed-By")
    if sb is None:
        return True
    if "BEGIN PGP" in sb:
        return False
    return any(Path(p).name.startswith("debian-archive") for p in sb.split())


def is_debian(src: AptSource, codename: str | None = None) -> bool:
    """A binary source of the Debian archive: Debian suite names, Debian components, Debian keys.

    Third-party repositories that borrow the codename (download.docker.com: `bookworm stable`,
    packages.sury.org: `bookworm main` with its own key) fail the component or key test.
    """
    names = set(CODENAMES) | set(ALIASES) | ({codename} if codename else set())
    return ("deb" in src.types and not any(u.startswith("cdrom:") for u in src.uris) and bool(src.components) and set(src.components) <= COMPONENTS
            and any(_suite_base(s) in names for s in src.suites) and _signed_by_debian(src))


def host_debian_sources(sources_list: Path = SOURCES_LIST, parts: Path = SOURCES_PARTS,
                        codename: str | None = None) -> list[AptSource]:
    """The host's configured Debian archive entries (parsed; deb-src and foreign repositories dropped)."""
    codename = codename or host_codename()
    return [s for s in parse_sources(sources_list, parts) if is_debian(s, codename)]


def private_sources(suite: str, host_sources: list[AptSource]) -> list[AptSource]:
    """Host Debian entries with the release suite swapped for `suite`; side suites dropped.

    One entry per mirror URI (components merged), type deb only, Targets restricted to Packages.
    """
    by_uri: dict[str, tuple[list[str], list[tuple[str, str]], str]] = {}
    for s in host_sources:
        if "deb" not in s.types or not any(not _SIDE_SUITE.search(x) for x in s.suites):
            continue            # e.g. debian-security serving only bookworm-security
        for uri in s.uris:
            comps, opts, origin = by_uri.setdefault(uri.rstrip("/"), ([], [], s.origin))
            comps += [c for c in s.components if c not in comps]
            opts += [(k, v) for k, v in s.options if k.lower() not in {o.lower() for o, _ in opts}
                     and k.lower() not in _DROP_OPTS]
    return [AptSource(("deb",), (uri,), (suite,), tuple(comps), tuple(opts) + (("Targets", "Packages"),), origin)
            for uri, (comps, opts, origin) in by_uri.items()]


def render_deb822(sources: list[AptSource]) -> str:
    stanzas = []
    for s in sources:
        lines = [f"# from {s.origin}"] if s.origin else []
        lines += [f"Types: {' '.join(s.types)}", f"URIs: {' '.join(s.uris)}", f"Suites: {' '.join(s.suites)}",
                  f"Components: {' '.join(s.components)}"]
        lines += [f"{k}: {v}" for k, v in s.options]
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)
