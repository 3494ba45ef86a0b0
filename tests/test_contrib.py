"""The nightly's systemd units, cron line and CI examples: valid, and every harness
command in them is one the CLI accepts."""
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO
from kharness.cli import build_parser

CONTRIB = REPO / "contrib"


def verify(unit_dir):
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(map(str, unit_dir.iterdir()))],
                          capture_output=True, text=True, cwd=unit_dir, timeout=60)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path):
    # As installed for a checkout in ~/kharness: %h/kharness is this checkout.
    for unit in (CONTRIB / "systemd").iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace("%h/kharness", str(REPO)))
    out = verify(tmp_path)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    # The check can fail: a broken copy is reported.
    svc = tmp_path / "kharness-nightly.service"
    svc.write_text(svc.read_text().replace("Type=oneshot", "Type=nightly").replace(str(REPO), "/nonexistent"))
    bad = verify(tmp_path)
    assert "Failed to parse service type" in bad.stderr and "/nonexistent/harness.py" in bad.stderr


def harness_commands():
    """Every `./harness.py ...` / `harness.py ...` invocation in contrib/, as argv."""
    found = []
    for f in sorted(CONTRIB.rglob("*")):
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            m = re.search(r"harness\.py (.+?)(?:\s*\|\||\s*>>|\"\s*$|$)", line)
            if m and not line.lstrip().startswith(("#", "//")):
                cmd = m.group(1).replace("\\$", "$")
                cmd = re.sub(r"\$\{?i\}?/\$\{?SHARDS\}?|\$CI_NODE_INDEX/\$CI_NODE_TOTAL|\"\$CI_NODE_INDEX/\$CI_NODE_TOTAL\"",
                             "2/4", cmd)
                cmd = cmd.replace('"$CONFIG"', "configs/nightly.yaml")
                found.append((f.name, shlex.split(cmd)))
    return found


def test_contrib_commands_parse():
    cmds = harness_commands()
    assert {name for name, _ in cmds} == {"kharness-nightly.service", "cron.example", "gitlab-ci.yml", "Jenkinsfile"}
    assert len(cmds) == 6
    for name, argv in cmds:
        args = build_parser().parse_args(argv)
        assert args.command in ("nightly", "run", "report"), (name, argv)
        if args.command == "run":
            assert args.shard == (2, 4)


def test_gitlab_ci_is_valid_yaml_with_shards_and_merge():
    ci = yaml.safe_load((CONTRIB / "ci" / "gitlab-ci.yml").read_text())
    assert ci["shard"]["parallel"] == 4 and ci["merge"]["needs"] == ["shard"]
    assert ci["merge"]["artifacts"]["reports"]["junit"] == "results/merged/junit.xml"
