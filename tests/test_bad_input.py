"""The bad-input catalogue: each case, run as a user would, gets exit status 2 and exactly
one line on stderr (what, where, how to fix), no traceback, and nothing is created: no file
anywhere in the test's directory (no run directory, no history entry, no lock, nothing in the
private cache: KHARNESS_CACHE points inside it), none in the repository's results/ either.

Root causes, one group of cases each: YAML 1.1 number forms and odd keys, bytes that are not
UTF-8 or YAML text, names too long for a path, an unusable cache, a malformed extra reproducer
manifest, values out of range (sizes, timeouts, counts, repeat), empty values and block-scalar
newlines, names given twice, build inputs (compiler, kconfig lines, fstests source) checked
before the run directory exists, for run, repro, shell, build and nightly alike, special and
huge files, broken history and broken records (`report`, and `report --merge` that must
never write outside -o). Then (the second probe): numbers longer than int() reads, names
handed to apt and debootstrap, results: the checkout itself, `image` and `build` checked
before their stage line, an fstests git source planned without writing the cache, the whole
plan bounded, the cache's own files, nightly's lock after the whole preflight, bisect's
preflight, signature and bisect.json, NaN and Infinity in records, history rows of the wrong
type, merges all or nothing, warnings one line.

Cases tested elsewhere, with a real kernel tree or at the API level:
    a patch that does not apply, a fragment option that does not exist
        tests/test_e2e_build.py (real 6.12 tree; the cache repo is left clean)
    a series file naming a missing patch, an empty series      tests/test_kernel_unit.py
    YAML tags (!!python/...), unsafe names, unsplittable options   tests/test_security.py
"""
import json
import os
import subprocess

import pytest

from conftest import harness

from kharness.config import REPO

BASE = """\
name: bi
kernel:
  tarball: /usr/src/linux-source-6.12.tar.xz
  series: [kharness-id]
  fragments: [virtio-guest, hang-detect]
variants: [{name: ext4, fstype: ext4}]
tests: [zero-range-basic]
"""


SERIES = ", ".join(sorted(d.name for d in (REPO / "patches").iterdir() if d.is_dir()))
V2 = "20260203062523.3869120-1-yi.zhang@huawei.com"       # the cover letter of Zhang Yi's v2
V2_DIR = REPO.parent / "shared" / "series" / "ext4-buffered-iomap-v2"


def with_(old, new):
    assert old in BASE
    return BASE.replace(old, new)


CASES = [
    # (id, config text, extra argv, the whole stderr line after "harness.py: error: ")
    ("malformed-yaml", "name: bi\nkernel: [\n", [],
     "{cfg}:4: malformed YAML: expected ',' or ']', but got '<stream end>'"),
    ("unknown-key", with_("  series:", "  seris:"), [],
     "{cfg}:4: kernel.seris: unknown key (did you mean 'series'?)"),
    ("wrong-type", BASE + "repeat: many\n", [],
     "{cfg}:8: repeat: expected a whole number, got 'many'"),
    ("missing-tree", with_("  tarball: /usr/src/linux-source-6.12.tar.xz", "  git: /nonexistent/linux"), [],
     "kernel.git: /nonexistent/linux is not a git tree"),
    ("missing-tarball", with_("linux-source-6.12.tar.xz", "linux-source-9.99.tar.xz"), [],
     "kernel.tarball: /usr/src/linux-source-9.99.tar.xz does not exist (install it: apt-get install "
     "linux-source-6.12, or run `make setup`)"),
    ("missing-ref", with_("  tarball: /usr/src/linux-source-6.12.tar.xz", "  git: {tmp}/linux\n  ref: no-such-branch"), [],
     "kernel.ref: 'no-such-branch' is not a commit, branch or tag in {tmp}/linux"),
    ("unknown-series", with_("[kharness-id]", "[kharness-idd]"), [],
     "series 'kharness-idd': no directory patches/kharness-idd (available: " + SERIES + ")"),
    ("unknown-baseline-series", BASE + "baseline: {series: [nosuch]}\n", [],
     "series 'nosuch': no directory patches/nosuch (available: " + SERIES + ")"),
    ("unknown-fragment", with_("hang-detect]", "hang-detecc]"), [],
     "kconfig fragment 'hang-detecc': no configs/kconfig/hang-detecc.config (available: debug, hang-detect, virtio-guest)"),
    ("unknown-reproducer", BASE, ["--only", "zero-range-basik"],
     "unknown test 'zero-range-basik' (not in reproducers/manifest.yaml); did you mean zero-range-basic, "
     "zero-range-vs-writeback-storm, zero-range-vs-sync-range?"),
    ("unknown-fstests-test", BASE + "fstests: {{source: {tmp}/fstests, tests: [generic/9999]}}\n", [],
     "fstests.tests: generic/9999: no such test in {tmp}/fstests/tests"),
    ("repeat-zero", BASE, ["--repeat", "0"], None),
    ("repeat-negative", BASE, ["--repeat", "-2"], None),
    ("shard-out-of-range", BASE, ["--shard", "5/4"], None),
    ("results-not-writable", BASE.replace("results: {tmp}/results\n", "") + "results: /proc/kharness\n", [],
     "results: cannot write to /proc/kharness (No such file or directory); set `results:` in the config to a writable directory"),
    ("disk-too-big", BASE + "vm: {disk_size: 900000G}\n", [],
     "{cfg}: vm.disk_size: two disks of 900000G need 1800000 GiB but {tmp}/results has {free} GiB free; "
     "lower vm.disk_size or point `results:` elsewhere"),
    ("nightly-keep-zero", BASE + "nightly: {keep: 0}\n", [],
     "{cfg}:8: nightly.keep: must be at least 1, got 0"),
    # kernel.series entries taken from a thread (issue 13); {v2} is the real v2 thread's directory
    ("thread-not-found", with_("[kharness-id]", "[kharness-id, {{thread: nosuch@example.org, name: v2, source: {v2}}}]"),
     [], "series 'v2': thread <nosuch@example.org> not found in {v2}; check the cover letter's Message-ID"),
    ("thread-no-such-revision", with_("[kharness-id]", "[{{thread: " + V2 + ", name: v2, revision: 3, source: {v2}}}]"),
     [], "series 'v2': thread <" + V2 + "> has no revision 3 (b4: Unable to find revision 3)"),
    ("thread-missing-patch", with_("[kharness-id]", "[{{thread: " + V2 + ", name: v2, revision: 2, source: {tmp}/holey.mbx}}]"),
     [], "series 'v2': thread <" + V2 + "> v2 lacks patch 5/22; fetch the whole thread (b4 am, or a fuller mbox)"),
    ("thread-skip-past-the-end",
     with_("[kharness-id]", "[{{thread: " + V2 + ", name: v2, revision: 2, source: {v2}, skip: [{{patches: 1-23, reason: x}}]}}]"),
     [], "series 'v2': skip: '1-23': the thread has only 22 patches"),
    ("thread-bad-apply", with_("[kharness-id]", "[kharness-id,\n    {{thread: " + V2 + ", name: v2, apply: sloppy}}]"),
     [], "{cfg}:5: kernel.series[1].apply: must be one of fuzzy, strict"),
    ("thread-no-source", with_("[kharness-id]", "[{{thread: " + V2 + ", name: v2, source: {tmp}/nothing.mbx}}]"),
     [], "series 'v2': source: {tmp}/nothing.mbx does not exist (an mbox, a directory of mails, a public-inbox git, or b4)"),
    # YAML 1.1 reads these numbers its own way (int() could not: a traceback, exit 1)
    ("yaml11-octal", BASE + "repeat: 010\n", [],
     "{cfg}:8: repeat: '010' has a leading 0 (YAML 1.1 reads it as octal); write the number in plain digits"),
    ("yaml11-base60", BASE + "repeat: 1:30\n", [],
     "{cfg}:8: repeat: '1:30' has a ':' (YAML 1.1 reads it as base 60); write the number in plain digits"),
    ("yaml11-underscore", BASE + "repeat: 0_1\n", [],
     "{cfg}:8: repeat: '0_1' has a '_' (YAML 1.1 drops it); write the number in plain digits"),
    ("key-is-a-list", BASE + "[a]: 1\n", [], "{cfg}:8: top level: a key must be a plain word, not a list"),
    ("key-is-a-mapping", with_("  series:", "  {{a: 1}}: 2\n  series:"), [],
     "{cfg}:4: kernel: a key must be a plain word, not a mapping"),
    # bytes
    ("not-utf8", BASE + "# caf<E9>\n", [],
     "{cfg}:8: config is not UTF-8 text (byte 0xe9 at offset 197); save it as UTF-8"),
    ("nul-byte", BASE + "# a<NUL>b\n", [],
     "{cfg}:8: malformed YAML: character U+0000 is not allowed in YAML text (offset 195); remove it"),
    # names that become path components (300 characters: File name too long)
    ("name-too-long", BASE.replace("name: bi", "name: " + "a" * 300), [],
     "{cfg}:1: name: '" + "a" * 64 + "'... is 300 characters; at most 64 (it names the results directory)"),
    ("variant-name-too-long", with_("{name: ext4,", "{{name: " + "e" * 300 + ","), [],
     "{cfg}:6: variants[" + "e" * 64 + "].name: is 300 characters; at most 64 (it names a directory on the "
     "host and in the guest)"),
    # the cache
    ("cache-is-a-file", BASE, [],
     "$KHARNESS_CACHE: {cfg} is not a directory; point $KHARNESS_CACHE at a writable directory"),
    ("cache-cannot-be-created", BASE, [],
     "$KHARNESS_CACHE: /proc/kharness-cache cannot be created (No such file or directory); point "
     "$KHARNESS_CACHE at a writable directory"),
    # $KHARNESS_REPRODUCERS: a manifest that is not a list of typed entries
    ("manifest-malformed", BASE, ["--only", "x"],
     "{tmp}/extra/manifest.yaml:2: malformed YAML: expected the node content, but found '<stream end>'"),
    ("manifest-not-a-list", BASE, ["--only", "x"],
     "{tmp}/extra/manifest.yaml:1: a reproducer manifest is a list of entries (- name: ..., source: or "
     "script: ..., description: ...)"),
    ("manifest-entry-not-a-mapping", BASE, ["--only", "x"],
     "{tmp}/extra/manifest.yaml:1: entry 0: expected a mapping (name:, source: or script:, description:)"),
    ("manifest-no-name", BASE, ["--only", "x"], "{tmp}/extra/manifest.yaml:1: entry 0: needs a name:"),
    ("manifest-wrong-type", BASE, ["--only", "x"],
     "{tmp}/extra/manifest.yaml:1: x.timeout: expected a whole number of seconds in plain digits, got 'soon'"),
    ("manifest-list-is-a-number", BASE, ["--only", "x"],
     "{tmp}/extra/manifest.yaml:1: x.filesystems: expected a list of words, e.g. [ext4, xfs]"),
    ("manifest-bad-expect", BASE, ["--only", "x"],
     "{tmp}/extra/manifest.yaml:1: x.expect: 'maybe' is not one of pass, fail, hang, crash, warn"),
    ("manifest-missing-script", BASE, ["--only", "x"],
     "{tmp}/extra/manifest.yaml: x: script 'nope.sh' is not a file in {tmp}/extra"),
    ("manifest-fifo", BASE, ["--only", "x"],
     "{tmp}/extra/manifest.yaml: reproducer manifest is a FIFO, not a regular file; give the file itself"),
    # unbounded counts (--repeat 100000000 was a MemoryError)
    ("repeat-huge", BASE, ["--repeat", "100000000"], None),
    ("repeat-huge-in-config", BASE + "repeat: 100000000\n", [], "{cfg}:8: repeat: must be at most 1000, got 100000000"),
    ("duration-huge", BASE, ["--duration", "99999999999h"], None),
    ("shard-huge", BASE, ["--shard", "1/100000000"], None),
    ("cpus-huge", BASE + "vm: {{cpus: 100000}}\n", [], "{cfg}:8: vm.cpus: must be at most 255, got 100000"),
    # values _check() used to accept
    ("disk-size-zero", BASE + "vm: {{disk_size: 0}}\n", [], "{cfg}:8: vm.disk_size: 0 is too small; give 16M to 1024T"),
    ("hung-task-timeout-zero", BASE + "vm: {{hung_task_timeout: 0}}\n", [],
     "{cfg}:8: vm.hung_task_timeout: must be at least 1, got 0"),
    ("results-empty", BASE + 'results: ""\n', [], "{cfg}:8: results: needs a value (an empty string is not one)"),
    ("kernel-jobs-negative", with_("  series:", "  jobs: -4\n  series:"), [],
     "{cfg}:4: kernel.jobs: must be at least 0, got -4"),
    ("fstests-jobs-negative", BASE + "fstests: {{source: {tmp}/fstests, jobs: -1}}\n", [],
     "{cfg}:8: fstests.jobs: must be at least 0, got -1"),
    ("name-block-scalar", BASE.replace("name: bi", "name: |\n  bi"), [],
     "{cfg}:1: name: 'bi\\n' contains a newline (a YAML block scalar, | or >, keeps its final newline; "
     "write the value on the key's line)"),
    ("size-block-scalar", BASE + "vm:\n  disk_size: |\n    4G\n", [],
     "{cfg}:9: vm.disk_size: '4G\\n' contains a newline (a YAML block scalar, | or >, keeps its final newline; "
     "write the value on the key's line)"),
    # the same name twice (duplicate job ids)
    ("duplicate-tests", with_("tests: [zero-range-basic]", "tests: [zero-range-basic, zero-range-basic]"), [],
     "{cfg}:7: tests[1]: 'zero-range-basic' is listed twice; list it once"),
    ("duplicate-fstests-tests", BASE + "fstests: {{source: {tmp}/fstests, tests: [generic/363, generic/363]}}\n", [],
     "{cfg}:8: fstests.tests[1]: 'generic/363' is listed twice; list it once"),
    ("duplicate-only", BASE, ["--only", "zero-range-basic", "--only", "zero-range-basic"],
     "--only zero-range-basic: given twice; name it once (--repeat runs a job again)"),
    ("duplicate-fs", BASE, ["repro", "zero-range-basic", "--fs", "ext4", "--fs", "ext4"],
     "--fs ext4: given twice; name it once (--repeat runs a job again)"),
    # build inputs, checked before the run directory exists
    ("compiler-missing", with_("  series:", "  cc: no-such-cc\n  series:"), [],
     "kernel.cc: compiler 'no-such-cc' not found or not working (install it, or set kernel.cc)"),
    ("fragment-syntax", with_("hang-detect]", "{tmp}/bad.config]"), [],
     "{tmp}/bad.config:2: 'CONFIG_X = y' is not a kconfig line; write CONFIG_NAME=value (no spaces around =) "
     "or '# CONFIG_NAME is not set'"),
    ("base-config-syntax", with_("  series:", "  base_config: {tmp}/bad.config\n  series:"), [],
     "{tmp}/bad.config:2: 'CONFIG_X = y' is not a kconfig line; write CONFIG_NAME=value (no spaces around =) "
     "or '# CONFIG_NAME is not set'"),
    ("fragment-not-utf8", with_("hang-detect]", "{tmp}/latin1.config]"), [],
     "{tmp}/latin1.config:1: kconfig fragment is not UTF-8 text (byte 0xe9 at offset 21); save it as UTF-8"),
    ("fragment-fifo", with_("hang-detect]", "{tmp}/fifo]"), [],
     "{tmp}/fifo: kconfig fragment is a FIFO, not a regular file; give the file itself"),
    ("repro-fstests-without-source", BASE, ["repro", "generic/363"],
     "generic/363: fstests is unavailable: no fstests source configured: set `fstests.source: PATH` (an fstests "
     "checkout) or `fstests.git: URL` (+ `fstests.ref:`) in the config, or $KHARNESS_FSTESTS_SRC"),
    ("shell-unknown-series", with_("[kharness-id]", "[kharness-idd]"), ["shell"],
     "series 'kharness-idd': no directory patches/kharness-idd (available: " + SERIES + ")"),
    ("build-unknown-series", with_("[kharness-id]", "[kharness-idd]"), ["build"],
     "series 'kharness-idd': no directory patches/kharness-idd (available: " + SERIES + ")"),
    ("nightly-unknown-series", with_("[kharness-id]", "[kharness-idd]"), ["nightly"],
     "series 'kharness-idd': no directory patches/kharness-idd (available: " + SERIES + ")"),
    ("build-compiler-missing", with_("  series:", "  cc: no-such-cc\n  series:"), ["build"],
     "kernel.cc: compiler 'no-such-cc' not found or not working (install it, or set kernel.cc)"),
    # special and huge files
    ("config-dev-zero", BASE, ["-c", "/dev/zero"],
     "/dev/zero: config is a character device, not a regular file; give the file itself"),
    ("config-fifo", BASE, ["-c", "{tmp}/fifo"], "{tmp}/fifo: config is a FIFO, not a regular file; give the file itself"),
    ("config-directory", BASE, ["-c", "{tmp}"], "{tmp}: config is a directory, not a regular file; give the file itself"),
    ("config-huge", BASE + "#" * (1 << 20) + "\n", [],
     "{cfg}: config is larger than 1 MiB, more than a config can be; is it the right file?"),
    ("config-nested-deep", "name: " + "[" * 20000 + "\n", [], "{cfg}: malformed YAML: nested too deeply to be a config"),
    ("base-config-dev-zero", with_("  series:", "  base_config: /dev/zero\n  series:"), [],
     "/dev/zero: kernel.base_config is a character device, not a regular file; give the file itself"),
    # a history that is not one (a shard run reads it first; every run writes it at the end)
    ("history-corrupt", BASE, [],
     "{tmp}/results/history.sqlite: not a kharness history database (file is not a database); move it aside and "
     "the next run or `report` starts a new one from the run directories"),
    ("history-corrupt-shard", BASE, ["--shard", "1/2"],
     "{tmp}/results/history.sqlite: not a kharness history database (file is not a database); move it aside and "
     "the next run or `report` starts a new one from the run directories"),
    # a number longer than int() reads (4300 digits was a ValueError traceback), in any section
    ("number-5000-digits", BASE + "repeat: " + "9" * 5000 + "\n", [],
     "{cfg}:8: repeat: '999999999999999999'... has 5000 digits, more than any value here can be; give a number "
     "within its limit"),
    ("size-5000-digits", BASE + "vm: {{disk_size: " + "9" * 5000 + "G}}\n", [],
     "{cfg}:8: vm.disk_size: 9999999999999999999... is too big; give 16M to 1024T"),
    # names that become apt-get / debootstrap arguments (were refused only after the run directory existed)
    ("debian-package-a-path", with_("  tarball: /usr/src/linux-source-6.12.tar.xz", "  debian: {{package: ../../x}}"), [],
     "{cfg}:3: kernel.debian.package: '../../x' is not a Debian package name, e.g. linux-source-7.2"),
    ("image-suite-an-option", BASE + "image: {{suite: --foreign}}\n", ["image"],
     "{cfg}:8: image.suite: '--foreign' is not a Debian suite debootstrap knows, e.g. bookworm"),
    ("image-mirror-not-a-url", BASE + "image: {{mirror: 'not a url'}}\n", [],
     "{cfg}:8: image.mirror: 'not a url' is not a mirror URL, e.g. http://deb.debian.org/debian"),
    # the results directory may not be the checkout (results: . wrote run directories into the repository root)
    ("results-the-checkout", BASE + "results: .\n", [],
     "{cfg}:8: results: '.' is the checkout itself; run directories need a directory of their own (the default is "
     "`results`)"),
    # `image` and `build` check before their stage line, lock or log (a traceback, or a cache lock, before)
    ("image-results-unwritable", BASE + "results: /proc/kharness\n", ["image"],
     "results: cannot write to /proc/kharness (No such file or directory); set `results:` in the config to a "
     "writable directory"),
    ("build-results-unwritable", BASE + "results: /proc/kharness\n", ["build"],
     "results: cannot write to /proc/kharness (No such file or directory); set `results:` in the config to a "
     "writable directory"),
    ("image-cache-is-a-file", BASE, ["image"],
     "$KHARNESS_CACHE: {cfg} is not a directory; point $KHARNESS_CACHE at a writable directory"),
    ("run-image-suite-unknown", BASE + "image: {{suite: nosuchsuite}}\n", [], "{debootstrap_nosuchsuite}"),
    ("build-series-and-no-series", BASE, ["build", "--series", "kharness-id", "--no-series"], None),
    # an fstests git source is read for the plan outside the cache (a failed clone left cache/fstests/git.log)
    ("fstests-git-unreachable", BASE + "fstests: {{git: 'file:///nonexistent/fstests.git', tests: [generic/363]}}\n",
     ["--only", "generic/363"],
     "generic/363: fstests is unavailable: fstests.git: cannot clone file:///nonexistent/fstests.git (and the "
     "repository exists.); set `fstests.git:` to a reachable repository or `fstests.source:` to a local checkout"),
    ("fstests-git-unknown-test", BASE + "fstests: {{git: {tmp}/fstests.git, tests: [generic/363]}}\n",
     ["--only", "generic/999"], "fstests.tests: generic/999: no such test in {tmp}/fstests.git @ HEAD's tests/"),
    # the whole plan is bounded (3000 variants x repeat 1000 planned 3 million jobs for a minute)
    ("plan-too-many-jobs", with_("variants: [{name: ext4, fstype: ext4}]",
                                 "variants: [" + ", ".join(f"{{{{name: v{i}, fstype: ext4}}}}" for i in range(11)) + "]")
     + "repeat: 1000\n", ["list"],
     "{cfg}: the plan makes 11000 jobs (11 variant(s) x 1 test(s) x repeat 1000); at most 10000 in one run: lower "
     "repeat (--repeat) or list fewer variants or tests"),
    ("plan-too-many-jobs-fstests", with_("variants: [{name: ext4, fstype: ext4}]",
                                         "variants: [" + ", ".join(f"{{{{name: v{i}, fstype: ext4}}}}" for i in range(11))
                                         + "]") + "fstests: {{source: {tmp}/fstests, tests: [generic/363]}}\n",
     ["--only", "generic/363", "--repeat", "1000"],
     "{cfg}: the plan makes 11000 jobs (fstests: 1 selector(s) on 11 variant(s) x repeat 1000); at most 10000 in one "
     "run: lower repeat (--repeat) or list fewer variants or tests"),
    # the cache's own files: a file where a directory of its layout belongs, a digest memo that is not one
    ("cache-layout-not-a-directory", BASE, [],
     "$KHARNESS_CACHE: {tmp}/cache2/locks is not a directory (the cache keeps its locks there); move it aside, or "
     "point $KHARNESS_CACHE at another directory"),
    ("cache-memo-a-fifo", BASE + "vm: {{disk_size: 900000G}}\n", [],
     "{cfg}: vm.disk_size: two disks of 900000G need 1800000 GiB but {tmp}/results has {free} GiB free; "
     "lower vm.disk_size or point `results:` elsewhere"),
    # nightly: its lock only after the run's whole preflight (disk room too), a lock that is not a file
    ("nightly-disk-too-big", BASE + "vm: {{disk_size: 900000G}}\n", ["nightly"],
     "{cfg}: vm.disk_size: two disks of 900000G need 1800000 GiB but {tmp}/results has {free} GiB free; "
     "lower vm.disk_size or point `results:` elsewhere"),
    ("nightly-lock-a-fifo", BASE, ["nightly"],
     "{tmp}/results/.nightly.lock: the nightly lock is a FIFO, not a file; remove it (only `nightly` makes it)"),
    ("nightly-fetch-without-remote", with_("  tarball: /usr/src/linux-source-6.12.tar.xz", "  git: {tmp}/linux")
     + "nightly: {{fetch: true}}\n", ["nightly"],
     "{cfg}:8: nightly.fetch: {tmp}/linux has no git remote to fetch from; add one (git remote add) or remove "
     "nightly.fetch"),
    # bisect: the run's preflight, a signature that can never match, a bisect.json that is not one
    ("bisect-disk-too-big", BASE + "vm: {{disk_size: 900000G}}\n", ["bisect", "--job", "ext4.zero-range-basic"],
     "{cfg}: vm.disk_size: two disks of 900000G need 1800000 GiB but {tmp}/results has {free} GiB free; "
     "lower vm.disk_size or point `results:` elsewhere"),
    ("bisect-signature-two-lines", BASE, ["bisect", "--job", "ext4.zero-range-basic", "--signature", "a\nb"],
     "--signature: 'a\\nb' can never match: a failure's title is one line of at most 500 characters; give part of it"),
    ("bisect-record-mistyped", BASE, ["bisect", "--resume", "{tmp}/b"],
     "{tmp}/b/bisect.json: not a bisection record this harness wrote (confidence is 'high', not a number); start a "
     "new bisection"),
    ("bisect-record-run-out-of-range", BASE, ["bisect", "--resume", "{tmp}/b"],
     "{tmp}/b/bisect.json: not a bisection record this harness wrote (runs[0] is not a run of candidate 0..1 with a "
     "verdict); start a new bisection"),
    ("bisect-record-nan", BASE, ["bisect", "--resume", "{tmp}/b"],
     "{tmp}/b/bisect.json: not a bisection record this harness wrote (NaN is not a number a record holds); start a "
     "new bisection"),
]
# Files a case needs (relative to its directory), and its environment.
MANIFEST = "extra/manifest.yaml"
FILES = {
    "manifest-malformed": {MANIFEST: "- name: [\n"},
    "manifest-not-a-list": {MANIFEST: "name: x\n"},
    "manifest-entry-not-a-mapping": {MANIFEST: "- hello\n"},
    "manifest-no-name": {MANIFEST: "- {script: x.sh, description: d}\n"},
    "manifest-wrong-type": {MANIFEST: "- {name: x, script: x.sh, description: d, timeout: soon}\n"},
    "manifest-list-is-a-number": {MANIFEST: "- {name: x, script: x.sh, description: d, filesystems: 3}\n"},
    "manifest-bad-expect": {MANIFEST: "- {name: x, script: x.sh, description: d, expect: maybe}\n"},
    "manifest-missing-script": {MANIFEST: "- {name: x, script: nope.sh, description: d}\n"},
    "manifest-fifo": {MANIFEST: None},
    "fragment-syntax": {"bad.config": "CONFIG_EXT4_FS=y\nCONFIG_X = y\n"},
    "base-config-syntax": {"bad.config": "CONFIG_EXT4_FS=y\nCONFIG_X = y\n"},
    "fragment-not-utf8": {"latin1.config": b"CONFIG_LOCALVERSION=\"\xe9\"\n"},
    "fragment-fifo": {"fifo": None},
    "config-fifo": {"fifo": None},
    "history-corrupt": {"results/history.sqlite": "not a database " * 100},
    "history-corrupt-shard": {"results/history.sqlite": "not a database " * 100},
    "plan-too-many-jobs-fstests": {"fstests/tests/generic/group.list": "363 auto quick zero\n"},
    "cache-layout-not-a-directory": {"cache2/locks": "not a directory"},
    "cache-memo-a-fifo": {"cache2/tarball-digests.json": None},
    "nightly-lock-a-fifo": {"results/.nightly.lock": None},
    "bisect-record-mistyped": {"b/bisect.json": json.dumps({"config": "c.yaml", "job": "ext4.x", "n": 1,
                                                            "confidence": "high", "signature": None, "runs": []})},
    "bisect-record-run-out-of-range": {"b/bisect.json": json.dumps({
        "config": "c.yaml", "job": "ext4.x", "n": 1, "confidence": 0.95, "signature": None,
        "runs": [{"k": 5, "status": "pass", "message": ""}]})},
    "bisect-record-nan": {"b/bisect.json": '{"config": "c.yaml", "job": "ext4.x", "n": 1, "confidence": NaN, '
                                           '"signature": null, "runs": []}'},
}


def _git_commit(d):
    subprocess.run(["git", "-C", str(d), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(d), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True)


def _fstests_git(tmp):
    """The fake fstests tree as a git repository (a git source for the plan)."""
    import shutil
    shutil.copytree(tmp / "fstests", tmp / "fstests.git")
    (tmp / "fstests.git" / "common" / "rc").write_text("# rc\n")     # git keeps no empty directory
    subprocess.run(["git", "init", "-q", str(tmp / "fstests.git")], check=True)
    _git_commit(tmp / "fstests.git")


# What a case needs beyond files: a git tree with a commit, the fstests tree as a git source.
SETUP = {
    "nightly-fetch-without-remote": lambda tmp: ((tmp / "linux" / "Makefile").write_text("all:\n"),
                                                 _git_commit(tmp / "linux")),
    "fstests-git-unknown-test": _fstests_git,
}
ENV = {
    "cache-is-a-file": {"KHARNESS_CACHE": "{cfg}"},
    "cache-cannot-be-created": {"KHARNESS_CACHE": "/proc/kharness-cache"},
    "repro-fstests-without-source": {"KHARNESS_FSTESTS_SRC": ""},
    "image-cache-is-a-file": {"KHARNESS_CACHE": "{cfg}"},
    "cache-layout-not-a-directory": {"KHARNESS_CACHE": "{tmp}/cache2"},
    "cache-memo-a-fifo": {"KHARNESS_CACHE": "{tmp}/cache2"},
    "fstests-git-unreachable": {"KHARNESS_FSTESTS_SRC": ""},
    "fstests-git-unknown-test": {"KHARNESS_FSTESTS_SRC": ""},
    **{c: {"KHARNESS_REPRODUCERS": "{tmp}/extra"} for c in FILES if c.startswith("manifest-")},
}
COMMANDS = ("repro", "shell", "build", "nightly", "list", "image", "bisect")
ARGPARSE = {
    "repeat-zero": "harness.py run: error: argument --repeat: must be at least 1, got 0 (see harness.py run --help)",
    "repeat-negative": "harness.py run: error: argument --repeat: must be at least 1, got -2 (see harness.py run --help)",
    "shard-out-of-range": "harness.py run: error: argument --shard: '5/4': give I/N with 1 <= I <= N, e.g. --shard 2/4 "
                          "(see harness.py run --help)",
    "repeat-huge": "harness.py run: error: argument --repeat: must be at most 1000, got 100000000 (every repeat is "
                   "a job) (see harness.py run --help)",
    "duration-huge": "harness.py run: error: argument --duration: '99999999999h' is longer than the limit of 168h "
                     "(a week) (see harness.py run --help)",
    "shard-huge": "harness.py run: error: argument --shard: '1/100000000': at most 1000 shards, e.g. --shard 2/4 "
                  "(see harness.py run --help)",
    "build-series-and-no-series": "harness.py build: error: argument --no-series: not allowed with argument --series "
                                  "(see harness.py build --help)",
}


def _debootstrap_refuses(suite: str) -> str:
    """What image.preflight says of a suite debootstrap does not know (its list depends on the host)."""
    from kharness import image
    from kharness.errors import UserError
    try:
        image._preflight(suite)
    except UserError as e:
        return str(e)
    raise AssertionError(f"debootstrap knows {suite!r}")


def tree(d) -> dict[str, bool]:
    """Every path under d -> is it a directory."""
    return {str(p.relative_to(d)): p.is_dir() and not p.is_symlink() for p in d.rglob("*")}


def assert_nothing_created(before: dict[str, bool], tmp_path, repo_results: set[str]) -> None:
    """No new file anywhere under the test's directory (an empty directory, like results/ that
    the disk-room check stats, holds nothing), and no run of this config in the repository."""
    after = tree(tmp_path)
    new = sorted(p for p in after if p not in before)
    assert [p for p in new if not after[p] or any((tmp_path / p).iterdir())] == [], new
    stray = {p.name for p in (REPO / "results").iterdir()} - repo_results if (REPO / "results").is_dir() else set()
    assert [n for n in stray if n.endswith("-bi") or "-bi-" in n] == []
    assert not any(REPO.glob("*T*Z-bi*")), "a run directory in the repository root"


@pytest.mark.parametrize("case, text, argv, line", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_created(tmp_path, tmp_cache, case, text, argv, line):
    (tmp_path / "linux").mkdir()
    subprocess.run(["git", "init", "-q", str(tmp_path / "linux")], check=True)
    (tmp_path / "fstests" / "tests" / "generic").mkdir(parents=True)
    (tmp_path / "fstests" / "tests" / "generic" / "363").write_text("#! /bin/bash\n")
    (tmp_path / "fstests" / "common").mkdir()
    (tmp_path / "fstests" / "check").write_text("#! /bin/bash\n")
    if case.startswith("thread-"):
        if not V2_DIR.is_dir():
            pytest.skip("the v2 mails are in ../shared beside the checkout")
        # the real thread less patch 5: what a partial download looks like
        mails = (V2_DIR / "ext4-buffered-iomap-v2.mbx").read_text().split("\nFrom ")
        (tmp_path / "holey.mbx").write_text("\nFrom ".join(m for m in mails if " 05/22]" not in m))
    cfg = tmp_path / "c.yaml"
    body = text.replace("{tmp}", str(tmp_path)).replace("{v2}", str(V2_DIR)).replace("{{", "{").replace("}}", "}")
    if "results:" not in body:
        body += f"results: {tmp_path}/results\n"
    cfg.write_bytes(body.encode().replace(b"<E9>", b"\xe9").replace(b"<NUL>", b"\0"))
    for rel, content in FILES.get(case, {}).items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            os.mkfifo(f)
        else:
            f.write_bytes(content if isinstance(content, bytes) else content.encode())
    if case in SETUP:
        SETUP[case](tmp_path)
    env = {k: v.replace("{tmp}", str(tmp_path)).replace("{cfg}", str(cfg)) for k, v in ENV.get(case, {}).items()}
    command, argv = (argv[0], argv[1:]) if argv and argv[0] in COMMANDS else ("run", argv)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    before = tree(tmp_path)
    repo_results = {p.name for p in (REPO / "results").iterdir()} if (REPO / "results").is_dir() else set()
    out = harness(command, "-c", str(cfg), *argv, env=env, timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    if case in ARGPARSE:
        assert out.stderr.strip() == ARGPARSE[case]
    else:
        st = os.statvfs(tmp_path)
        free = st.f_bavail * st.f_frsize >> 30
        extra = {"debootstrap_nosuchsuite": _debootstrap_refuses("nosuchsuite")} if "{debootstrap_" in line else {}
        want = line.format(cfg=cfg, tmp=tmp_path, free=free, v2=V2_DIR, **extra)
        assert out.stderr.strip() == f"harness.py: error: {want}"
    assert_nothing_created(before, tmp_path, repo_results)


# ------------------------------------------------------------------ patches that are not patches

def test_a_patch_that_is_not_a_diff_is_refused_when_the_series_is_read(tmp_path):
    from kharness import series
    from kharness.errors import UserError
    d = tmp_path / "s"
    d.mkdir()
    (d / "series").write_text("0001-x.patch\n")
    (d / "0001-x.patch").write_text("From: a@b\nSubject: [PATCH] x\n\nno diff here, just prose\n")
    with pytest.raises(UserError) as e:
        series.read_series("s", patches_dir=tmp_path)
    rel = os.path.relpath(d / "0001-x.patch", REPO)
    assert str(e.value) == (f"{rel}: not a patch (no diff in it: no `diff --git` or ---/+++ lines); make it with "
                            f"git format-patch")
    (d / "0001-x.patch").write_text("From: a@b\nSubject: [PATCH] x\n\n---\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n")
    assert len(series.read_series("s", patches_dir=tmp_path).patches) == 1        # control: a diff reads


def test_a_mbox_message_without_a_diff_is_refused(tmp_path):
    from kharness import series
    from kharness.errors import UserError
    d = tmp_path / "s"
    d.mkdir()
    (d / "s.mbx").write_text("From x Mon Jan  1 00:00:00 2024\nFrom: a@b\nSubject: [PATCH 0/1] cover\n\nprose\n")
    with pytest.raises(UserError, match=r"s\.mbx: message 'cover' is not a patch \(no diff in it\)"):
        series.read_series("s", patches_dir=tmp_path)


# ------------------------------------------------------------------ a bug is never "a job failed"

def test_an_unexpected_exception_is_exit_2_one_line_and_a_traceback_file(tmp_path, monkeypatch, capsys):
    """Exit 1 means "a job failed" to CI: a crash of the harness itself must never look like one."""
    import tempfile
    from kharness import cli

    def boom(args):
        raise RuntimeError("something nobody expected\nsecond line")

    monkeypatch.setattr(cli, "_dispatch", boom)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cli.main(["list"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    (tb,) = tmp_path.glob("kharness-traceback-*.txt")
    assert line == (f"harness.py: internal error: RuntimeError: something nobody expected (a bug in kharness; "
                    f"traceback: {tb})")
    assert "Traceback (most recent call last)" in tb.read_text() and "boom" in tb.read_text()


# ------------------------------------------------------------------ records: report and report --merge

RUN = REPO / "tests" / "data" / "runs" / "20261126T121654Z-default"


def _job0(**changes):
    def change(s):
        s["jobs"][0].update(changes)
    return change


RECORDS = [
    # (id, summary.json text or a change to the recorded run's, the reason in the line)
    ("list", "[]", "a JSON list, not an object"),
    ("null", "null", "a JSON NoneType, not an object"),
    ("empty-job", lambda s: s.update(jobs=[{}]), "jobs[0].job is missing"),
    ("jobs-not-a-list", lambda s: s.update(jobs=3), "jobs is 3, not a list"),
    ("properties-a-list", lambda s: s.update(properties=[]), "properties is a list, not an object"),
    ("unknown-status", _job0(status="bogus"),
     "jobs[0].status 'bogus' is not a verdict (pass, fail, hang, crash, warn, error, skip)"),
    ("dir-outside", _job0(dir="../../x"), "jobs[0].dir '../../x' is not a path inside the run directory"),
    ("console-file-absolute", _job0(console_file="/etc/passwd"),
     "jobs[0].console_file '/etc/passwd' is not a path inside the run directory"),
    ("seconds-a-string", lambda s: s.update(seconds="x"), "seconds is 'x', not a number"),
    ("boot-seconds-a-string", lambda s: s.update(boot_seconds="abc"), "boot_seconds is 'abc', not a list"),
    ("finding-line-a-string", lambda s: s.update(findings_outside_jobs=[{"kind": "hang", "title": "t", "line": "x"}]),
     "findings_outside_jobs[0].line is 'x', not a whole number"),
    ("unknown-kind", lambda s: s.update(kind="weekly"),
     "kind 'weekly' is not a kind of run (run, nightly, shard, merged, baseline, repro, bisect-step)"),
    ("shard-not-i-of-n", lambda s: s.update(kind="shard", shard="x"), "shard 'x' is not I/N"),
    ("run-name-a-path", lambda s: s.update(run="../../x"), "run '../../x' is not the name of a run directory"),
    # Python's json reads NaN and Infinity; no record holds one, and rendering Infinity was an OverflowError
    ("seconds-infinity", lambda s: s.update(seconds=float("inf")), "Infinity is not a number a record holds"),
    ("duration-nan", _job0(duration=float("nan")), "NaN is not a number a record holds"),
]


@pytest.mark.parametrize("case, change, why", RECORDS, ids=[c[0] for c in RECORDS])
def test_a_broken_record_is_one_line_and_nothing_rewritten(tmp_path, case, change, why):
    import shutil
    d = tmp_path / RUN.name
    shutil.copytree(RUN, d)
    if isinstance(change, str):
        (d / "summary.json").write_text(change)
    else:
        s = json.loads((d / "summary.json").read_text())
        change(s)
        (d / "summary.json").write_text(json.dumps(s))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    out = harness("report", str(d), timeout=60)
    assert out.returncode == 2 and out.stdout == "", out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"harness.py: error: {d}/summary.json: unreadable run record ({why})"), line
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before     # nothing written or rewritten


@pytest.mark.parametrize("what", ["summary.json", "kernel.json"])
def test_a_record_that_is_a_fifo_is_refused_at_once(tmp_path, what):
    import shutil
    d = tmp_path / RUN.name
    shutil.copytree(RUN, d)
    (d / what).unlink()
    os.mkfifo(d / what)
    out = harness("report", str(d), timeout=30)
    assert out.returncode == 2
    kind = {"summary.json": "run record", "kernel.json": "kernel record"}[what]
    assert out.stderr.strip() == f"harness.py: error: {d}/{what}: {kind} is a FIFO, not a regular file; give the file itself"


def test_a_kernel_record_of_the_wrong_shape_is_one_line(tmp_path):
    import shutil
    d = tmp_path / RUN.name
    shutil.copytree(RUN, d)
    (d / "kernel.json").write_text(json.dumps({"series": [{"name": 3, "patches": []}]}))
    out = harness("report", str(d), timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"harness.py: error: {d}/kernel.json: unreadable kernel record (series[0].name is 3, "
                                  f"not a string); the run may have been cut short or edited")


@pytest.mark.parametrize("field, value", [("dir", "../../escaped"), ("console_file", "../../../escaped.log"),
                                          ("run", "../../escaped")])
def test_a_crafted_shard_record_never_makes_merge_write_outside_o(tmp_path, field, value):
    """report --merge copies job directories and console logs named by the records: a record
    naming a path outside its run directory is refused before -o is created."""
    import shutil
    shard = tmp_path / "results" / "20261126T000000Z-default-shard1of1"
    shutil.copytree(RUN, shard)
    s = json.loads((shard / "summary.json").read_text())
    s.update(kind="shard", shard="1/1", plan=[j["job"] for j in s["jobs"]])
    if field == "run":
        s["run"] = value
    else:
        s["jobs"][0][field] = value
    (shard / "summary.json").write_text(json.dumps(s))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    out = harness("report", "--merge", str(shard), "-o", str(tmp_path / "results" / "merged"), timeout=60)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"harness.py: error: {shard}/summary.json: unreadable run record ("), line
    assert "is not a path inside the run directory" in line or "is not the name of a run directory" in line, line
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "results" / "merged").exists()


def test_a_corrupt_history_is_one_line_for_report(tmp_path):
    import shutil
    d = tmp_path / RUN.name
    shutil.copytree(RUN, d)
    (tmp_path / "history.sqlite").write_text("not a database " * 100)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    out = harness("report", str(d), timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"harness.py: error: {tmp_path}/history.sqlite: not a kharness history database "
                                  f"(file is not a database); move it aside and the next run or `report` starts a "
                                  f"new one from the run directories")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_a_history_of_mistyped_rows_is_one_line_and_untouched(tmp_path):
    """Tables of the right columns whose rows hold what record() never writes (SQLite keeps any
    type in any column): refused before the run is recorded or the index rendered from them."""
    import shutil
    import sqlite3
    from kharness.report.history import _SCHEMA
    d = tmp_path / RUN.name
    shutil.copytree(RUN, d)
    db = sqlite3.connect(tmp_path / "history.sqlite")
    db.executescript(_SCHEMA)
    db.execute("INSERT INTO runs VALUES ('a', 'default', '2026-01-01T00:00:00Z', 'run', '', '', '', 'slow', 1, 0, 0)")
    db.commit()
    db.close()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    out = harness("report", str(d), timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"harness.py: error: {tmp_path}/history.sqlite: not a kharness history database "
                                  f"(runs.seconds holds 'slow' (text), not real or integer or null); move it aside "
                                  f"and the next run or `report` starts a new one from the run directories")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def _shards(tmp_path, n=2):
    import shutil
    s = json.loads((RUN / "summary.json").read_text())
    ids = [j["job"] for j in s["jobs"]]
    out = []
    for i in range(1, n + 1):
        d = tmp_path / "results" / f"20261126T000000Z-default-shard{i}of{n}"
        shutil.copytree(RUN, d)
        t = dict(s, kind="shard", shard=f"{i}/{n}", plan=ids, run=d.name,
                 jobs=[j for k, j in enumerate(s["jobs"]) if k % n == i - 1])
        (d / "summary.json").write_text(json.dumps(t))
        out.append(d)
    return out


@pytest.mark.parametrize("what", ["fifo", "symlink", "same-run-name"])
def test_merge_copies_regular_files_of_distinct_shards_or_writes_nothing(tmp_path, what):
    """A FIFO in a job directory blocked or crashed the copy, a symlink copied what it points to, and
    two shards of one run name collided in shards/: each is one line before -o exists."""
    s1, s2 = _shards(tmp_path)
    job = s1 / "jobs" / "ext4" / "zero-range-basic"
    if what == "fifo":
        os.mkfifo(job / "fifo")
        want = f"{job}/fifo: a FIFO in a shard directory; --merge copies regular files only (remove it, or replace it " \
               f"by the file itself)"
    elif what == "symlink":
        os.symlink("/etc/hostname", job / "host")
        want = f"{job}/host: a symbolic link in a shard directory; --merge copies regular files only (remove it, or " \
               f"replace it by the file itself)"
    else:
        for d in (s1, s2):
            t = json.loads((d / "summary.json").read_text())
            (d / "summary.json").write_text(json.dumps(dict(t, run="20261126T000000Z-default")))
        want = f"--merge: {s1} and {s2} are both run '20261126T000000Z-default' (summary.json \"run\"); give the shard " \
               f"directories of one run, each once"
    before = sorted(tmp_path.rglob("*"))
    out = harness("report", "--merge", str(s1), str(s2), "-o", str(tmp_path / "results" / "merged"), timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == f"harness.py: error: {want}"
    assert sorted(tmp_path.rglob("*")) == before


def test_a_merge_that_fails_midway_leaves_no_partly_written_o(tmp_path, monkeypatch):
    """The merged run is staged beside -o and renamed into place: a copy that fails after the
    checks (a full disk, an I/O error) leaves neither -o nor the staging directory."""
    import shutil
    from kharness.errors import UserError
    from kharness.report import merge
    s1, s2 = _shards(tmp_path)
    copies = []
    real_copytree = shutil.copytree

    def failing_copytree(src, dst, *a, **kw):
        copies.append(src)
        if len(copies) == 2:
            raise OSError(28, "No space left on device")
        return real_copytree(src, dst, *a, **kw)

    monkeypatch.setattr(merge.shutil, "copytree", failing_copytree)
    out = tmp_path / "results" / "merged"
    with pytest.raises(UserError) as e:
        merge.merge([s1, s2], out)
    assert str(e.value) == (f"-o {out}: merging the shards failed (No space left on device); nothing was written, "
                            f"-o does not exist")
    assert len(copies) == 2
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [s1.name, s2.name]


def test_list_plans_from_a_git_fstests_source_without_writing_the_cache(tmp_path, tmp_cache):
    """`list` expands groups from a git source (it cloned it into the cache before): the tree is
    checked out outside the cache for the plan and removed when the command ends."""
    import glob
    (tmp_path / "fstests" / "tests" / "generic").mkdir(parents=True)
    (tmp_path / "fstests" / "tests" / "generic" / "363").write_text("#! /bin/bash\n_begin_fstest auto quick zero\n")
    (tmp_path / "fstests" / "tests" / "generic" / "group.list").write_text("363 auto quick zero\n")
    (tmp_path / "fstests" / "common").mkdir()
    (tmp_path / "fstests" / "check").write_text("#! /bin/bash\n")
    _fstests_git(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(BASE + f"fstests: {{git: {tmp_path}/fstests.git, tests: ['-g zero']}}\nresults: {tmp_path}/results\n")
    leftovers = set(glob.glob("/tmp/kharness-fstests-plan.*"))
    out = harness("list", "-c", str(cfg), env={"KHARNESS_FSTESTS_SRC": ""}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "  ext4         generic/363 " in out.stdout       # the group, expanded from the git tree
    assert not tmp_cache.exists() or not any(tmp_cache.iterdir())
    assert set(glob.glob("/tmp/kharness-fstests-plan.*")) == leftovers


def test_a_warning_is_one_line_whatever_its_length_or_newlines(capsys):
    """rich wraps at 80 columns when stderr is not a terminal, and an exception's text may hold
    newlines: a warning (and a stage or info line) is still one line a log reader can grep."""
    from kharness import ui
    ui.warn("rendering failed (" + "x" * 150 + "\nsecond line [red]not markup[/red])")
    ui.info("y" * 150)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["warning: rendering failed (" + "x" * 150 + " second line [red]not markup[/red])",
                     "    " + "y" * 150]


# ------------------------------------------------------------------ console logs

@pytest.mark.parametrize("what", ["fifo", "/dev/zero", "dir"])
def test_console_of_a_special_file_is_one_line_at_once(tmp_path, what):
    path = {"fifo": tmp_path / "fifo", "/dev/zero": "/dev/zero", "dir": tmp_path}[what]
    if what == "fifo":
        os.mkfifo(path)
    out = harness("console", str(path), timeout=30)
    assert out.returncode == 2
    kind = {"fifo": "a FIFO", "/dev/zero": "a character device"}.get(what)
    want = (f"{path}: is a directory, expected a console log file" if what == "dir" else
            f"{path}: is {kind}, expected a console log file; save the log to a file first")
    assert out.stderr.strip() == f"harness.py: error: {want}"


def test_an_endless_console_line_costs_bounded_memory_and_hides_nothing(tmp_path):
    """8 MiB without a newline (a console flood, random bytes, NULs), then a real hung-task report:
    the analyzer is fed lines cut at MAX_LINE, and the report after the long line is still found."""
    from kharness import console_cli
    fed = []

    class Recording(console_cli.ConsoleAnalyzer):
        def feed(self, text):
            fed.append(max((len(x) for x in text.split("\n")), default=0))
            return super().feed(text)

    hung = (REPO / "tests" / "data" / "console" / "hung-task.log").read_bytes()
    log = tmp_path / "flood.log"
    with open(log, "wb") as f:
        f.write(b"[    1.000000] start\n")
        f.write(os.urandom(1 << 20).replace(b"\n", b"x") + b"\0" * (7 << 20) + b"\n")
        f.write(hung)
    original = console_cli.ConsoleAnalyzer
    console_cli.ConsoleAnalyzer = Recording
    try:
        findings = console_cli.analyze_file(str(log))
    finally:
        console_cli.ConsoleAnalyzer = original
    assert max(fed) <= console_cli.MAX_LINE
    assert any(f.kind == "hang" and f.title.startswith("INFO: task hung in ") for f in findings), findings
    assert all(f.line > 2 for f in findings)     # line numbers count the cut line once


def test_line_cap_cuts_across_chunks():
    from kharness.console_cli import LineCap
    cap = LineCap(limit=4)
    assert cap("ab") + cap("cdef\ngh") + cap("ijkl\n") == "abcd\nghij\n"
