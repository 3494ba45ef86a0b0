"""Config loading: every bad input is one line naming file, line and key."""
import pytest

from kharness import config
from kharness.errors import UserError

GOOD = """\
name: t
kernel:
  tarball: /usr/src/linux-source-6.12.tar.xz
  series: [kharness-id]
variants:
  - {name: ext4, fstype: ext4}
tests: [zero-range-basic]
"""


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_default_config_loads():
    cfg = config.load(config.REPO / "configs/default.yaml")
    assert cfg.name == "default"
    assert cfg.kernel.tarball == "/usr/src/linux-source-6.12.tar.xz"
    assert [v.name for v in cfg.variants] == ["ext4", "xfs", "xfs_reflink"]
    assert "hang-canary" in cfg.tests and len(cfg.tests) == 8
    assert cfg.vm.accel == "auto"


def test_good_config_fills_defaults(tmp_path):
    cfg = config.load(write(tmp_path, GOOD))
    assert cfg.kernel.series == ["kharness-id"]
    assert cfg.kernel.base_config == "tinyconfig"
    assert cfg.vm.cpus == 2 and cfg.repeat == 1


@pytest.mark.parametrize("text, message", [
    ("name: t\nkernel: [\n", r"c.yaml:\d+: malformed YAML"),
    (GOOD.replace("  series:", "  seris:"), r"c.yaml:4: kernel.seris: unknown key \(did you mean 'series'\?\)"),
    (GOOD + "repeat: many\n", r"c.yaml:8: repeat: expected a whole number, got 'many'"),
    (GOOD + "repeat: 0\n", r"repeat: must be at least 1, got 0"),
    (GOOD + "vm: {accel: fast}\n", r"c.yaml:8: vm.accel: must be one of auto, kvm, tcg"),
    (GOOD + "vm: {disk_size: lots}\n", r"vm.disk_size: 'lots' is not a size"),
    (GOOD.replace("tests: [zero-range-basic]", "tests: zero-range-basic"), r"c.yaml:7: tests: expected a list"),
    (GOOD.replace("  - {name: ext4, fstype: ext4}", "  - {name: ext4}"), r"c.yaml:6: variants\[0\].fstype: required key is missing"),
    (GOOD.replace("fstype: ext4}", "fstype: btrfs}"), r"fstype: 'btrfs' is not supported"),
    (GOOD.replace("  tarball: /usr/src/linux-source-6.12.tar.xz\n", ""), r"kernel: give exactly one source"),
    ("", r"config is empty"),
    (GOOD + "warn_is_failure: 3\n", r"warn_is_failure: expected true or false"),
])
def test_bad_config_is_one_clear_line(tmp_path, text, message):
    with pytest.raises(UserError, match=message) as e:
        config.load(write(tmp_path, text))
    assert "\n" not in str(e.value)


def test_missing_config_file_lists_the_configs(tmp_path):
    with pytest.raises(UserError, match=r"config file not found \(configs/ has: .*default.yaml"):
        config.load(tmp_path / "nope.yaml")


def test_size_bytes():
    assert config.size_bytes("4G") == 4 << 30
    assert config.size_bytes("512M") == 512 << 20
