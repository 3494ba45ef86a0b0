"""A private apt root: apt configured to read and write only under one directory.

private_apt_config() lays out the root (sources, lists, an empty dpkg status, an
archive cache) and returns the -o options that point apt at it; nothing is written
to the host's apt configuration, and no host package plays a part.
"""
from __future__ import annotations

import os
from pathlib import Path

from .aptsources import SOURCES_LIST, SOURCES_PARTS, AptSource, host_debian_sources, private_sources, render_deb822
from .errors import UserError

KEY = "kernel.debian"       # the config key these sources serve; messages start with it


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def private_apt_config(suite: str, root: Path, host_sources: list[AptSource] | None = None) -> dict[str, str]:
    """Lay out a private apt root under `root` (writes nothing elsewhere); returns apt's -o options.

    root/kharness.sources        the host's Debian mirror(s) with the suite swapped
    root/apt.conf                the same options, plus #clear of the host's update/dpkg hooks (`-c` it)
    root/state/{lists,status}    private lists, an empty dpkg status (host packages play no part)
    root/cache/archives          private archive cache; root/{sources.list.d,preferences.d} empty
    """
    if host_sources is None:
        host_sources = host_debian_sources()
    entries = private_sources(suite, host_sources)
    if not entries:
        raise UserError(f"{KEY}: the host's apt sources ({SOURCES_LIST}, {SOURCES_PARTS}/) name no Debian "
                        f"archive mirror to take suite {suite!r} from; add one (e.g. the debian.sources of a "
                        f"stock install)")
    root = Path(root)
    for d in ("state/lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d", "log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in ("state/status", "preferences"):
        if not (root / f).exists():
            (root / f).touch()
    opts = {
        "Dir::State": str(root / "state"),
        "Dir::State::status": str(root / "state" / "status"),
        "Dir::State::extended_states": str(root / "state" / "extended_states"),
        "Dir::Cache": str(root / "cache"),
        # No binary caches: they would add ~100 MB for sid, and apt runs here at most every few hours.
        "Dir::Cache::pkgcache": "",
        "Dir::Cache::srcpkgcache": "",
        "Dir::Etc::SourceList": str(root / "kharness.sources"),
        "Dir::Etc::SourceParts": str(root / "sources.list.d"),
        "Dir::Etc::Preferences": str(root / "preferences"),
        "Dir::Etc::PreferencesParts": str(root / "preferences.d"),
        "Dir::Log": str(root / "log"),
        "APT::Get::List-Cleanup": "true",
        "Acquire::Languages": "none",
    }
    if os.geteuid() == 0:
        # apt would drop to _apt for downloads, which cannot enter a cache under /root.
        opts["APT::Sandbox::User"] = "root"
    _write_if_changed(root / "kharness.sources", render_deb822(entries))
    conf = ["// written by kharness.debsrc; read after the host's apt.conf.d with apt-get -c",
            *(f"#clear {h};" for h in ("APT::Update::Pre-Invoke", "APT::Update::Post-Invoke",
                                       "APT::Update::Post-Invoke-Success", "DPkg::Pre-Invoke",
                                       "DPkg::Post-Invoke", "DPkg::Pre-Install-Pkgs")),
            *(f'{k} "{v}";' for k, v in opts.items())]
    _write_if_changed(root / "apt.conf", "\n".join(conf) + "\n")
    return opts

