"""Kernel build inputs: series parsing, cache keys, dropped kconfig options (no make here)."""
import shutil

import pytest

from kharness import kernel, series
from kharness.config import KernelConfig
from kharness.errors import UserError

PATCH = series.PATCHES_DIR / "kharness-id" / "0001-kharness-mark-release.patch"


def make_series(tmp_path, name, series_text, files=()):
    d = tmp_path / name
    d.mkdir()
    for f in files:
        shutil.copy(PATCH, d / f)
    if series_text is not None:
        (d / "series").write_text(series_text)
    return tmp_path


def test_series_file_with_comments(tmp_path):
    root = make_series(tmp_path, "s", "# a comment\n\n0001.patch   # trailing comment\n", ["0001.patch"])
    s = series.read_series("s", root)
    assert [p.name for p in s.inputs] == ["0001.patch"]
    assert s.patches[0].subject == "kharness: mark kernels built by the harness in their release string"


def test_series_naming_a_missing_patch(tmp_path):
    root = make_series(tmp_path, "s", "0001.patch\n0002.patch\n", ["0001.patch"])
    with pytest.raises(UserError, match=r"series:2: names '0002.patch', which does not exist"):
        series.read_series("s", root)


def test_empty_series(tmp_path):
    root = make_series(tmp_path, "s", "# nothing yet\n")
    with pytest.raises(UserError, match="the series is empty"):
        series.read_series("s", root)


def test_unknown_series_lists_available():
    with pytest.raises(UserError, match=r"series 'nosuch': no directory patches/nosuch \(available: .*kharness-id"):
        series.read_series("nosuch")


def test_mbox_series_records_subjects_and_message_ids(tmp_path):
    d = tmp_path / "b4"
    d.mkdir()
    one = PATCH.read_text()
    two = one.replace("Subject: [PATCH] kharness: mark", "Subject: [PATCH v2 2/2] second: mark")
    mid = "Message-ID: <20250101.1234-1-someone@example.org>\n"
    (d / "v2_20250101_series.mbx").write_text(one.replace("Subject:", mid + "Subject:", 1) + "\n" + two)
    s = series.read_series("b4", tmp_path)
    assert [p.subject for p in s.patches] == [
        "kharness: mark kernels built by the harness in their release string",
        "second: mark kernels built by the harness in their release string"]
    assert s.patches[0].message_id == "<20250101.1234-1-someone@example.org>"
    assert s.inputs == (d / "v2_20250101_series.mbx",)


def test_a_non_patch_file_is_refused(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    (d / "x.patch").write_text("just text\n")
    (d / "series").write_text("x.patch\n")
    with pytest.raises(UserError, match="not a mail-formatted patch"):
        series.read_series("s", tmp_path)


def test_parse_config_and_dropped_options():
    final = kernel.parse_config("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\n")
    assert final == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x"'}
    frags = {"f1": "CONFIG_A=y\nCONFIG_B=y\n", "f2": "# CONFIG_A is not set\nCONFIG_D=m\n"}
    assert kernel.dropped_options(frags, final) == [
        ("f1", "CONFIG_B", "y", "n"), ("f2", "CONFIG_A", "n", "y"), ("f2", "CONFIG_D", "m", "n")]


def test_input_key_changes_when_and_only_when_an_input_changes(tmp_path, monkeypatch):
    frag_dir = tmp_path / "kconfig"
    frag_dir.mkdir()
    (frag_dir / "f.config").write_text("CONFIG_A=y\n")
    monkeypatch.setattr(kernel, "FRAGMENTS_DIR", frag_dir)
    root = make_series(tmp_path, "s", "0001.patch\n", ["0001.patch"])
    src = kernel.Source("tarball-abc", {}, None)
    k = KernelConfig(tarball="/x", fragments=["f"])

    def key(k=k, src=src, compiler="gcc 12"):
        return kernel._input_key(k, src, [series.read_series("s", root)], compiler)

    base = key()
    assert key() == base                                            # same inputs, same key
    assert key(compiler="gcc 13") != base                           # compiler
    assert key(src=kernel.Source("tarball-def", {}, None)) != base  # source
    assert key(k=KernelConfig(tarball="/x", fragments=["f"], base_config="defconfig")) != base
    assert key(k=KernelConfig(tarball="/x", fragments=["f"], jobs=7)) == base   # -j does not change the kernel
    (frag_dir / "f.config").write_text("CONFIG_A=y\nCONFIG_B=y\n")
    assert key() != base                                            # fragment content
    (frag_dir / "f.config").write_text("CONFIG_A=y\n")
    assert key() == base
    p = root / "s" / "0001.patch"
    p.write_text(p.read_text().replace("+-kharness", "+-kharness2"))
    assert key() != base                                            # patch content


def test_missing_tarball_says_how_to_install():
    with pytest.raises(UserError, match=r"kernel.tarball: /nonexistent/linux-source-6.12.tar.xz does not exist \(install it"):
        kernel.resolve_source(KernelConfig(tarball="/nonexistent/linux-source-6.12.tar.xz"))


def test_git_source_bad_ref(tmp_path):
    import subprocess
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    with pytest.raises(UserError, match=r"kernel.ref: 'v99' is not a commit, branch or tag"):
        kernel.resolve_source(KernelConfig(git=str(tmp_path), ref="v99"))
    src = kernel.resolve_source(KernelConfig(git=str(tmp_path), ref="HEAD"))
    assert src.id.startswith("git-") and len(src.description["commit"]) == 40


def test_not_a_git_tree(tmp_path):
    with pytest.raises(UserError, match="is not a git tree"):
        kernel.resolve_source(KernelConfig(git=str(tmp_path)))


def test_unknown_fragment_lists_available():
    with pytest.raises(UserError, match=r"kconfig fragment 'nosuch'.*available: .*virtio-guest"):
        kernel.fragment_path("nosuch")


def test_artifact_names_its_pvh_vmlinux_only_when_published(tmp_path):
    art = kernel.KernelArtifact(tmp_path, "k", {})
    assert art.bzimage == tmp_path / "bzImage" and art.pvh_vmlinux is None
    (tmp_path / kernel.PVH_VMLINUX).write_bytes(b"elf")
    assert art.pvh_vmlinux == tmp_path / "vmlinux"
    from kharness import vm
    assert vm.PVH_VMLINUX == kernel.PVH_VMLINUX     # vm.py boots what kernel.py publishes
