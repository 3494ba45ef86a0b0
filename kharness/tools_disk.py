"""The tools disk: what the guest runs besides its own programs (run-job, the
reproducers' binaries) on one small read-only ext4 image, attached to every guest of a
run and mounted at /opt/kharness once per boot (Session.prepare).

Made on the host (mke2fs -d, tens of milliseconds) and cached by content, instead of
copied into every freshly booted guest: each SFTP copy is an open, writes, a chmod and a
close, round trips to a guest that answers slowly under TCG. Read-only, so the guests of a
`-j N` run share the one file and a job cannot change what the next one runs.

    /opt/kharness/run-job          session.RUN_JOB
    /opt/kharness/bin/NAME         a reproducer's binary or script (catalogue.build)
"""
from __future__ import annotations

import shutil
from pathlib import Path

from . import cache, proc
from .image import host_tool

NAME = "tools.img"
SLACK = 4 << 20             # ext4's own metadata on a small filesystem, with room to spare


def disk(run_job: str, binaries: dict[str, Path], log: Path) -> Path:
    """The cached image holding run-job and bin/NAME for each of `binaries` (mode 0755)."""
    key = cache.digest(run_job, *(part for name in sorted(binaries)
                                  for part in (name, cache.file_digest(binaries[name]))))
    final = cache.entry("tools", key) / NAME
    if final.exists():
        return final
    with cache.publishing("tools", key) as tmp:
        staging = tmp / "staging"
        (staging / "bin").mkdir(parents=True)
        (staging / "run-job").write_text(run_job)
        for name, src in binaries.items():
            shutil.copyfile(src, staging / "bin" / name)
        need = 0
        for f in [staging / "run-job", *(staging / "bin").iterdir()]:
            f.chmod(0o755)
            need += f.stat().st_size
        size_mib = (need + SLACK + (1 << 20) - 1) >> 20
        # No journal: it is never written. -E root_owner: / is root's whoever runs the harness.
        proc.run([host_tool("mke2fs"), "-q", "-t", "ext4", "-O", "^has_journal", "-m", "0", "-L", "kharness-tools",
                  "-E", "root_owner=0:0", "-d", str(staging), str(tmp / NAME), f"{size_mib}M"], log)
        shutil.rmtree(staging)
    return final
