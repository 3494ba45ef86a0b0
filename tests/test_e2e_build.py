"""Real kernel builds from Debian's linux-source-6.12: cache hits, incremental rebuilds,
a conflicting patch and a dropped kconfig option, each on the real tree."""
import shutil
import subprocess

import pytest

from kharness import cache, config, kernel, series
from kharness.errors import UserError

pytestmark = pytest.mark.e2e

DEFAULT = config.load(config.REPO / "configs/default.yaml").kernel


def format_patch(dest, name, subject, files):
    """A git format-patch file creating/overwriting `files` ({path: (old, new)}) from an empty base."""
    repo = dest.parent / f"mk-{name}"
    ident = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for path, (old, _) in files.items():
        if old is not None:
            (repo / path).write_text(old)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), *ident, "commit", "-q", "--allow-empty", "-m", "base"], check=True)
    for path, (_, new) in files.items():
        (repo / path).write_text(new)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), *ident, "commit", "-q", "-m", subject], check=True)
    out = subprocess.run(["git", "-C", str(repo), "format-patch", "-1", "--stdout"], check=True,
                         capture_output=True, text=True).stdout
    d = dest / name
    d.mkdir(parents=True)
    (d / "0001.patch").write_text(out)
    (d / "series").write_text("0001.patch\n")


@pytest.fixture
def patches(tmp_path, monkeypatch):
    d = tmp_path / "patches"
    shutil.copytree(series.PATCHES_DIR, d)
    monkeypatch.setattr(series, "PATCHES_DIR", d)
    return d


def test_default_build_then_cache_hit(tmp_path):
    art, _ = kernel.build_kernel(DEFAULT, tmp_path)
    assert art.bzimage.stat().st_size > 1_000_000
    assert art.release.startswith("6.12.") and art.release.endswith("-kharness")
    assert art.meta["series"][0]["name"] == "kharness-id"
    assert art.meta["head_commit"] != art.meta["base_commit"]
    again, hit = kernel.build_kernel(DEFAULT, tmp_path)
    assert hit and again.key == art.key


def test_a_changed_patch_rebuilds_incrementally(tmp_path, patches):
    format_patch(patches, "e2e-extra", "e2e: second localversion",
                 {"localversion-zz-e2e": (None, "-e2e\n")})
    k = config.KernelConfig(**{**DEFAULT.__dict__, "series": ["kharness-id", "e2e-extra"]})
    first, _ = kernel.build_kernel(k, tmp_path)
    assert first.release.endswith("-kharness-e2e")
    format_patch(patches, "e2e-extra2", "e2e: changed localversion", {"localversion-zz-e2e": (None, "-e2f\n")})
    k2 = config.KernelConfig(**{**DEFAULT.__dict__, "series": ["kharness-id", "e2e-extra2"]})
    second, hit = kernel.build_kernel(k2, tmp_path)
    assert not hit and second.key != first.key
    assert second.release.endswith("-kharness-e2f")
    # Incremental: the output tree is reused (localversion* files sort by name: -kharness, then -e2e), so only what the release string touches recompiles.
    assert second.meta["objects_compiled"] < 100, second.meta["objects_compiled"]


def test_conflicting_patch_is_one_clear_error_and_leaves_no_half_applied_tree(tmp_path, patches):
    format_patch(patches, "conflict", "selftest: a patch that cannot apply",
                 {"Makefile": ("VERSION = 2\nPATCHLEVEL = 4\n", "VERSION = 2\nPATCHLEVEL = 6\n")})
    k = config.KernelConfig(**{**DEFAULT.__dict__, "series": ["kharness-id", "conflict"]})
    with pytest.raises(UserError) as e:
        kernel.build_kernel(k, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "series 'conflict': patch" in msg and "conflict/0001.patch" in msg
    assert "(selftest: a patch that cannot apply)" in msg and "Makefile" in msg
    src = kernel.resolve_source(k)
    repo = cache.entry("src", src.id)
    git = ["git", "-C", str(repo)]
    base = (repo / ".kharness-base").read_text().strip()
    assert subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() == base
    assert subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True).stdout == ""
    assert not (repo / ".git" / "rebase-apply").exists()


def test_dropped_and_unknown_kconfig_options_are_errors(tmp_path, monkeypatch):
    frags = tmp_path / "kconfig"
    shutil.copytree(kernel.FRAGMENTS_DIR, frags)
    monkeypatch.setattr(kernel, "FRAGMENTS_DIR", frags)
    # KASAN_SW_TAGS exists in the tree but depends on arm64: Kconfig silently drops it.
    (frags / "bad.config").write_text("CONFIG_KASAN_SW_TAGS=y\n")
    k = config.KernelConfig(**{**DEFAULT.__dict__, "fragments": ["virtio-guest", "bad"]})
    with pytest.raises(UserError, match=r"configs/kconfig/bad.config: CONFIG_KASAN_SW_TAGS=y was dropped by Kconfig"):
        kernel.build_kernel(k, tmp_path)
    (frags / "bad.config").write_text("CONFIG_KHARNESS_NO_SUCH_OPTION=y\n")
    with pytest.raises(UserError, match=r"CONFIG_KHARNESS_NO_SUCH_OPTION does not exist in this kernel's Kconfig"):
        kernel.build_kernel(k, tmp_path)
