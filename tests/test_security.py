"""Security checks that need no VM: the config loader, what reaches a shell, the code itself.

Each check carries a positive control, so it can fail: the YAML payload does run under
an unsafe loader, fstests' own config parser does run `$(...)`, a naively concatenated
command does change the shell's structure, and the static scan does flag planted
shell=True / os.system / string commands. (The same payloads in a real guest:
tests/test_e2e_security.py.)
"""
from __future__ import annotations

import ast
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, harness
from kharness import fstests, session
from kharness.model import Outcome
from kharness.model import Variant

BASE = """\
name: {name}
kernel:
  tarball: /usr/src/linux-source-6.12.tar.xz
variants:
  - {{name: {variant}, fstype: ext4, mount: {mount}}}
tests: [zero-range-basic]
"""


def _config(tmp_path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def _bad_input(proc) -> str:
    """Bad input: exit 2, one line on stderr, no traceback. Returns that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("harness.py: error: ")
    return lines[0]


# ------------------------------------------------------------------ YAML is loaded safely

PAYLOADS = {
    "top level": '!!python/object/apply:os.system ["touch {m}"]\n',
    "a value": 'name: !!python/object/apply:os.system ["touch {m}"]\n',
    # A list-typed key: a tagged sequence would otherwise be read as a list of strings.
    "a list": ("name: t\nkernel: {{tarball: /usr/src/linux-source-6.12.tar.xz}}\n"
               "tests: !!python/object/apply:os.system [\"touch {m}\"]\n"),
    "a list item": ("name: t\nkernel: {{tarball: /usr/src/linux-source-6.12.tar.xz}}\n"
                    "variants:\n  - !!python/object/new:os.system [\"touch {m}\"]\ntests: [zero-range-basic]\n"),
}


@pytest.mark.parametrize("where", sorted(PAYLOADS))
def test_python_yaml_tags_run_nothing_and_are_one_line_errors(tmp_path, where):
    marker = tmp_path / "pwned"
    text = PAYLOADS[where].format(m=marker)
    # Positive control: the payload is live; an unsafe loader runs it.
    yaml.load(text, Loader=yaml.UnsafeLoader)
    assert marker.exists(), "the payload did not run under yaml.UnsafeLoader: the test would prove nothing"
    marker.unlink()

    line = _bad_input(harness("list", "-c", str(_config(tmp_path, text))))
    assert "YAML tag !!python/object" in line and "not allowed" in line
    assert "c.yaml:" in line                  # names the file (and line)
    assert not marker.exists()


# ------------------------------------------------------------------ names and options

@pytest.mark.parametrize("name,variant,mount,complaint", [
    ("../../escape", "ext4", '""', "name: '../../escape' must be"),
    ("t", "ext4;touch", '""', "variants[ext4;touch].name: must be"),
    ("t", "../../../tmp/x", '""', "variants[../../../tmp/x].name: must be"),
    ("t", ".hidden", '""', "variants[.hidden].name: must be"),
    ("t", "ext4", "\"-o 'noatime\"", "variants[ext4].mount: \"-o 'noatime\" cannot be split"),
])
def test_unsafe_names_and_unsplittable_options_are_refused(tmp_path, name, variant, mount, complaint):
    line = _bad_input(harness("list", "-c", str(_config(tmp_path, BASE.format(name=name, variant=variant,
                                                                               mount=mount)))))
    assert complaint in line


def test_ordinary_names_and_metacharacter_options_load(tmp_path):
    """Control for the refusals above: what real configs use still loads, and shell
    metacharacters in mkfs/mount options are allowed (they never meet a shell)."""
    text = BASE.format(name="nightly-6.12_x+1", variant="xfs_reflink-4k.v2", mount='"-o noatime; touch /tmp/x"')
    proc = harness("list", "-c", str(_config(tmp_path, text)))
    assert proc.returncode == 0, proc.stderr
    assert "xfs_reflink-4k.v2" in proc.stdout


# ------------------------------------------------------------------ guest commands from config values

class _RecordingGuest:
    """Stands in for guest.Guest: records the command line, answers 'mount failed'."""

    def __init__(self):
        self.commands: list[str] = []

    def run(self, command, timeout, stdout_path=None, stderr_path=None, check_abort=None):
        self.commands.append(command)
        return Outcome(exit_status=77, duration=0.0, stderr="mount: bad option\n")


def _prepare_command(tmp_path, v: Variant) -> str:
    s = session.Session.__new__(session.Session)      # only prepare()'s state, no VM
    s.mounted, s.cannot_mount, s.tools_mounted = None, {}, False
    g = _RecordingGuest()
    s.prepare(g, v, tmp_path / "setup.log")
    assert len(g.commands) == 1
    return g.commands[0]


def _shell_structure(cmd: str) -> tuple[list[str], list[str]]:
    """(operators, words) as a POSIX shell tokenizes the line: ; && || | { } > ... vs words."""
    lex = shlex.shlex(cmd, posix=False, punctuation_chars=True)    # posix=False: quotes stay on the token
    lex.whitespace_split = True
    tokens = list(lex)
    ops = [t for t in tokens if all(c in "();<>|&" for c in t)]    # unquoted operator characters only
    words = [shlex.split(t)[0] if t[:1] in "'\"" else t for t in tokens if t not in ops]
    return ops, words


PAYLOAD_MOUNT = "-o noatime; touch /tmp/pwned && reboot | cat `id` $(id) > /etc/passwd"
PAYLOAD_MKFS = "-L x;touch${IFS}/tmp/pwned"


def test_mkfs_and_mount_options_reach_the_guest_as_literal_words(tmp_path):
    clean = _prepare_command(tmp_path, Variant("v", "ext4", mkfs="-b 4096", mount="-o noatime"))
    hostile = _prepare_command(tmp_path, Variant("v", "ext4", mkfs=PAYLOAD_MKFS, mount=PAYLOAD_MOUNT))
    clean_ops, _ = _shell_structure(clean)
    hostile_ops, words = _shell_structure(hostile)
    # The shell sees the same commands and operators whatever the options hold...
    assert hostile_ops == clean_ops
    # ... and each option is a word of its own, unexpanded (shlex.split of the config value).
    for w in shlex.split(PAYLOAD_MOUNT) + shlex.split(PAYLOAD_MKFS):
        assert w in words
    i = words.index("mount", words.index("mkfs.ext4"))     # the test fs (the first mount is the tools disk)
    assert words[i:i + 3 + len(shlex.split(PAYLOAD_MOUNT))] == ["mount", "-t", "ext4", *shlex.split(PAYLOAD_MOUNT)]

    # Positive control: the same check catches a command built by string concatenation.
    naive = clean.replace("-o noatime", PAYLOAD_MOUNT)
    assert _shell_structure(naive)[0] != clean_ops


def test_job_command_quotes_every_word():
    """The job's command line (execute) is shlex.join of its argv: a single simple command."""
    job_id = "ext4.zero-range-basic"
    argv = [f"{session.GUEST_DIR}/run-job", job_id, f"{session.TEST_MNT}/{job_id}", "/opt/kharness/bin/x",
            "-n", "5", "; touch /tmp/pwned"]
    ops, words = _shell_structure(shlex.join(argv))
    assert ops == [] and words == argv
    assert _shell_structure(" ".join(argv))[0] == [";"]         # control


# ------------------------------------------------------------------ fstests' local.config

# fstests common/config, parse_config_section() (the consumer of local.config), verbatim but
# for the file and section variables.
FSTESTS_PARSE = r"""
eval `sed -e 's/[[:space:]]*\=[[:space:]]*/=/g' \
	-e 's/#.*$//' \
	-e 's/[[:space:]]*$//' \
	-e 's/^[[:space:]]*//' \
	-e "s/^\([^=]*\)=\"\?'\?\([^\"']*\)\"\?'\?$/export \1=\"\2\"/" \
	< "$1" \
	| sed -n -e "/^\[$2\]/,/^\s*\[/{/^[^#].*\=.*/p;}"`
echo "MKFS_OPTIONS=$MKFS_OPTIONS"
"""


@pytest.mark.parametrize("payload", ["$(touch {m})", "`touch {m}`"])
def test_fstests_options_that_its_config_parser_would_run_are_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    mkfs = f"-m reflink=1 {payload.format(m=marker)}"
    # Positive control: rendered into local.config, fstests' own parser runs the payload.
    local = tmp_path / "local.config"
    local.write_text(fstests.render_local_config([Variant("xfs_reflink", "xfs", mkfs=mkfs)]))
    out = subprocess.run(["bash", "-c", FSTESTS_PARSE, "parse", str(local), "xfs_reflink"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert marker.exists(), "fstests' parser did not run the payload: the check below would prove nothing"
    marker.unlink()

    text = (f"name: t\nkernel: {{tarball: /usr/src/linux-source-6.12.tar.xz}}\n"
            f"variants:\n  - {{name: xfs_reflink, fstype: xfs, mkfs: {yaml.safe_dump(mkfs).splitlines()[0]}}}\n"
            "tests: []\nfstests: {tests: [generic/363]}\n")
    line = _bad_input(harness("list", "-c", str(_config(tmp_path, text))))
    assert "variants[xfs_reflink].mkfs: fstests' local.config cannot hold" in line
    assert not marker.exists()


def test_fstests_plain_options_still_load(tmp_path):
    text = ("name: t\nkernel: {tarball: /usr/src/linux-source-6.12.tar.xz}\n"
            "variants:\n  - {name: xfs_reflink, fstype: xfs, mkfs: \"-m reflink=1 -b size=4096\"}\n"
            "tests: []\nfstests: {tests: [generic/363]}\n")
    proc = harness("list", "-c", str(_config(tmp_path, text)))
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------ static: no shell on the host

SHELL_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput")}
SPAWN = {"run", "Popen", "call", "check_call", "check_output", "capture"}   # subprocess.* and proc.run/capture


def _is_string(a: ast.expr) -> bool:
    """A str literal, an f-string, "..." + x / "..." % x, or "...".format(): one command string."""
    if isinstance(a, ast.JoinedStr) or (isinstance(a, ast.Constant) and isinstance(a.value, str)):
        return True
    if isinstance(a, ast.BinOp):
        return _is_string(a.left) or _is_string(a.right)
    return isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute) and a.func.attr == "format"


def shell_findings(source: str, filename: str = "<src>") -> list[str]:
    """Places where a host command could go through a shell or be built as one string."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                found.append(f"{filename}:{node.lineno}: shell=")
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            if (f.value.id, f.attr) in SHELL_CALLS:
                found.append(f"{filename}:{node.lineno}: {f.value.id}.{f.attr}(")
            if f.value.id in ("subprocess", "proc") and f.attr in SPAWN and node.args:
                a = node.args[0]
                if _is_string(a):
                    found.append(f"{filename}:{node.lineno}: {f.value.id}.{f.attr}(<string>)")
    return found


def test_no_shell_on_the_host():
    files = sorted((REPO / "kharness").rglob("*.py"))
    assert len(files) >= 15 and REPO / "kharness" / "proc.py" in files
    found = [x for p in files for x in shell_findings(p.read_text(), str(p.relative_to(REPO)))]
    assert found == []
    text = "\n".join(p.read_text() for p in files)
    assert "shell=True" not in text and "os.system(" not in text


def test_shell_scan_catches_planted_calls():
    """Control for test_no_shell_on_the_host: each pattern it looks for is found."""
    planted = """
import os, subprocess
from kharness import proc
os.system("rm -rf " + x)
os.popen(cmd)
subprocess.run(cmd, shell=True)
subprocess.Popen(f"make -C {d}")
subprocess.check_output("ls " + d)
proc.run("git am " + patch, log)
proc.capture("uname -r {}".format(x))
subprocess.run(["ls", d])            # fine: an argv list
proc.run(git + ["am", patch], log)   # fine: lists concatenated
"""
    found = shell_findings(planted)
    assert len(found) == 7, found
