"""Console analyzer over real console logs (tests/data/console/*.log, see its README)."""

import io
import json
import random
import re
from pathlib import Path

import pytest

from kharness import console_cli
from kharness.console import KIND, ConsoleAnalyzer, analyze
from kharness.model import Finding
from kharness.errors import UserError

DATA = Path(__file__).parent / "data" / "console"
LOGS = sorted(DATA.glob("*.log"))
NOISE = DATA / "noise.log"


def read(p: Path) -> str:
    return p.read_bytes().decode("utf-8", "replace")


def expected(p: Path) -> list[dict]:
    return json.loads(Path(str(p) + ".expected.json").read_text())


def summary(findings: list[Finding], with_count: bool = True) -> list[tuple]:
    return [(f.kind, f.type, f.title, f.line) + ((f.count,) if with_count else ()) for f in findings]


def feed_in_chunks(text: str, sizes) -> ConsoleAnalyzer:
    a = ConsoleAnalyzer()
    pos = 0
    while pos < len(text):
        n = next(sizes)
        a.feed(text[pos:pos + n])
        pos += n
    a.finish()
    return a


def test_fixtures_present():
    names = {p.name for p in LOGS}
    assert len(LOGS) >= 10
    for p in LOGS:
        assert Path(str(p) + ".expected.json").exists(), p
        assert p.stat().st_size < 200_000, p
    assert {"clean-boot.log", "noise.log", "hung-task.log", "fsfreeze-hung.log"} <= names


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_fixture_findings(log):
    got = analyze(read(log))
    want = expected(log)
    assert [(f.kind, f.type, f.title, f.line) for f in got] == \
        [(w["kind"], w["type"], w["title"], w["line"]) for w in want]
    for f, w in zip(got, want):
        if "count" in w:
            assert f.count == w["count"], f.title
        assert f.report.strip(), f.title
        assert f.kind == KIND[f.type]
        assert f.kind in ("hang", "crash", "warn")


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_random_chunks_same_as_whole(log):
    text = read(log)
    whole = ConsoleAnalyzer()
    whole.feed(text)
    whole.finish()
    rnd = random.Random(log.name)
    chunked = feed_in_chunks(text, iter(lambda: rnd.choice([1, 2, 7, 64, 333, 4096, 65536]), None))
    assert summary(chunked.findings) == summary(whole.findings)
    assert [f.report for f in chunked.findings] == [f.report for f in whole.findings]
    assert chunked.line_count == whole.line_count == text.count("\n") + (not text.endswith("\n"))


@pytest.mark.parametrize("name", ["hung-task.log", "fsfreeze-hung.log"])
def test_hang_returned_when_task_stack_ends(name):
    """The harness acts on a HANG as soon as feed() returns it: that must be the feed()
    that brings the </TASK> closing the hung task's stack, not a later one."""
    lines = read(DATA / name).splitlines(keepends=True)
    header = next(i for i, ln in enumerate(lines) if "blocked for more than" in ln)
    end = next(i for i in range(header, len(lines)) if lines[i].strip().endswith("</TASK>"))
    a = ConsoleAnalyzer()
    for i, ln in enumerate(lines):
        got = [f for f in a.feed(ln) if f.type == "HANG"]
        if got:
            assert i == end, (i, end)
            assert got[0].line == header + 1
            assert got[0].title.startswith("INFO: task hung in ")
            break
    else:
        pytest.fail("no HANG finding returned by feed()")


def test_panic_returned_when_its_stack_ends():
    """With panic=-1 the VM resets before "---[ end Kernel panic": the stack's end is the end."""
    lines = read(DATA / "panic-init.log").splitlines(keepends=True)
    header = next(i for i, ln in enumerate(lines) if "Kernel panic - not syncing" in ln)
    end = next(i for i in range(header, len(lines)) if "</TASK>" in lines[i])
    a = ConsoleAnalyzer()
    got = [(i, f) for i, ln in enumerate(lines) for f in a.feed(ln)]
    assert [(i, f.title) for i, f in got] == [(end, "kernel panic: Attempted to kill init!")]


def test_hang_followed_by_silence_is_flushed_by_finish():
    lines = read(DATA / "hung-task.log").splitlines(keepends=True)
    header = next(i for i, ln in enumerate(lines) if "blocked for more than" in ln)
    end = next(i for i in range(header, len(lines)) if "</TASK>" in lines[i])
    a = ConsoleAnalyzer()
    a.feed("".join(lines[:end]))          # the stack never ends: the guest went silent
    assert [f.type for f in a.finish()] == ["HANG"]


def test_reset_in_the_middle_of_a_report():
    """The run's console.log holds boot after boot: a report cut off by a reset is complete
    when the next boot starts, and the new boot's lines do not join it."""
    warn = read(DATA / "lkdtm-warn.log").splitlines(keepends=True)
    cut = next(i for i, ln in enumerate(warn) if "Call Trace:" in ln) + 3
    boot = read(DATA / "clean-boot.log")
    a = ConsoleAnalyzer()
    a.feed("".join(warn[:cut]))
    got = a.feed(boot[:boot.index("\n") + 1])
    assert [(f.title, f.line) for f in got] == [("WARNING in lkdtm_WARNING", 257)]
    a.feed(boot[boot.index("\n") + 1:])
    a.finish()
    assert len(a.findings) == 1 and "Linux version" not in a.findings[0].report


def test_repeated_hung_task_is_one_finding_with_count():
    text = read(DATA / "hung-task.log")
    reports = len(re.findall(r"INFO: task \S+ blocked for more than", text))
    assert reports >= 2
    hangs = [f for f in analyze(text) if f.type == "HANG"]
    assert len(hangs) == 1
    assert hangs[0].count == reports
    assert len(hangs[0].lines) == reports


def test_clean_boot_and_noise_have_no_findings():
    assert analyze(read(DATA / "clean-boot.log")) == []
    noise = read(NOISE)
    assert "WARNING: CPU: 0 PID: 1 at fake.c:1" in noise       # a user-space look-alike
    assert "kharness: job-start" in noise and "Modules linked in:" in noise
    assert analyze(noise) == []


def test_lookalike_lines_alone():
    text = "\n".join([
        "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
        "Modules linked in:",
        "Modules linked in: ext4 xfs",
        "[   10.000000] kharness: job-start generic-363",
        "[   11.000000] kharness: job-end generic-363",
        "[   12.000000] WARNING: Flushing system-wide workqueues will be prohibited in near future.",
        "[   12.500000] WARNING: this test wrote a warning",
        "[   13.000000] INFO: lockdep is turned off.",
        "[   14.000000] sysrq: Show Blocked State",
        "[   15.000000] Call Trace:",
        "BUG: a test printed this on the console",
        "Kernel panic - not syncing: a test printed this too",
    ]) + "\n"
    assert analyze(text) == []


def test_prefix_variants_do_not_change_findings():
    """Real logs with their line prefixes rewritten: CRLF, syslog levels, no timestamps."""
    for name in ("lkdtm-oops.log", "hung-task.log", "fsfreeze-hung.log", "lkdtm-warn.log"):
        text = read(DATA / name)
        base = summary(analyze(text))
        crlf = text.replace("\n", "\r\n")
        assert summary(analyze(crlf)) == base, name
        leveled = re.sub(r"(?m)^(?=\[)", "<4>", text)
        assert summary(analyze(leveled)) == base, name
        bare = re.sub(r"(?m)^\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?", "", text)
        assert [x[:3] for x in summary(analyze(bare))] == [x[:3] for x in base], name


def test_newer_hung_task_formats():
    """7.1+ "blocked in I/O wait", and the 6.15+ blocker dump that follows the stack."""
    text = read(DATA / "hung-task.log").replace("blocked for more than", "blocked in I/O wait for more than")
    assert [f.title for f in analyze(text) if f.type == "HANG"] == \
        [f.title for f in analyze(read(DATA / "hung-task.log")) if f.type == "HANG"]
    # As posted to LKML (6.15-rc3, lore "hugetlb ABBA"), prefixes stripped there.
    paste = """\
INFO: task repro_20250402_:13229 blocked for more than 64 seconds.
      Not tainted 6.15.0-rc3+ #24
"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
task:repro_20250402_ state:D stack:25856 pid:13229 tgid:13228 ppid:3513   task_flags:0x400040 flags:0x00004006
Call Trace:
 <TASK>
 __schedule+0x1755/0x4f50
 schedule+0x158/0x330
 schedule_preempt_disabled+0x15/0x30
 __mutex_lock+0x75f/0xeb0
 hugetlb_wp+0xf88/0x3440
 hugetlb_fault+0x14c8/0x2c30
 trace_clock_x86_tsc+0x20/0x20
 do_user_addr_fault+0x61d/0x1490
 exc_page_fault+0x64/0x100
 asm_exc_page_fault+0x26/0x30
RIP: 0010:__put_user_4+0xd/0x20
 copy_process+0x1f4a/0x3d60
 kernel_clone+0x210/0x8f0
 __x64_sys_clone+0x18d/0x1f0
 do_syscall_64+0x6a/0x120
 entry_SYSCALL_64_after_hwframe+0x76/0x7e
RIP: 0033:0x41b26d
 </TASK>
INFO: task repro_20250402_:13229 is blocked on a mutex likely owned by task repro_20250402_:13250.
task:repro_20250402_ state:D stack:28288 pid:13250 tgid:13228 ppid:3513   task_flags:0x400040 flags:0x00000006
Call Trace:
 <TASK>
 __schedule+0x1755/0x4f50
 schedule+0x158/0x330
 io_schedule+0x92/0x110
 folio_wait_bit_common+0x69a/0xba0
 __filemap_get_folio+0x154/0xb70
 hugetlb_fault+0xa50/0x2c30
 </TASK>
"""
    a = ConsoleAnalyzer()
    lines = paste.splitlines(keepends=True)
    end = next(i for i, ln in enumerate(lines) if "</TASK>" in ln)
    got = []
    for i, ln in enumerate(lines):
        new = a.feed(ln)
        if new:
            assert i == end
            got += new
    a.finish()
    assert [(f.type, f.title) for f in got] == [("HANG", "INFO: task hung in hugetlb_wp")]
    assert "is blocked on a mutex likely owned by task repro_20250402_:13250" in got[0].report
    assert "__filemap_get_folio" in got[0].report
    assert a.findings == got


def test_interleaved_contexts_kept_apart():
    """Two real reports from different tasks, interleaved line by line (CONFIG_PRINTK_CALLER)."""
    def report(name, start_type, end):
        lines = read(DATA / name).splitlines()
        f = next(f for f in analyze(read(DATA / name)) if f.type == start_type)
        ctx = re.match(r"\[[\d. ]+\](\[\s*[TC]\d+\])", lines[f.line - 1]).group(1)
        body = [ln for ln in lines[f.line - 1:] if ctx in ln]
        return f, body[:next(i for i, ln in enumerate(body) if end in ln) + 1]
    hang, a = report("hung-task.log", "HANG", "</TASK>")
    warn, b = report("lkdtm-warn.log", "WARNING", "---[ end trace")
    mixed = []
    for i in range(max(len(a), len(b))):
        mixed += a[i:i + 1] + b[i:i + 1]
    got = analyze("\n".join(mixed) + "\n")
    assert sorted((f.type, f.title) for f in got) == sorted([(hang.type, hang.title), (warn.type, warn.title)])


def test_finding_to_json():
    f = analyze(read(DATA / "hung-task.log"))[0]
    j = f.to_json()
    assert set(j) == {"kind", "type", "title", "line", "count", "report"}
    assert json.loads(json.dumps(j)) == j


# -- CLI ---------------------------------------------------------------------------------------

def test_cli_text_and_json(monkeypatch):
    monkeypatch.setattr(console_cli, "CHUNK", 4096)       # stream in many small chunks
    logs = [str(DATA / "hung-task.log"), str(DATA / "clean-boot.log"), str(DATA / "lkdtm-warn.log")]
    out = io.StringIO()
    assert console_cli.main(logs, as_json=True, out=out) == 0
    objs = [json.loads(ln) for ln in out.getvalue().splitlines()]
    assert [o["file"] for o in objs] == logs
    assert objs[1]["findings"] == []
    for o in objs:
        assert [(f["kind"], f["type"], f["title"], f["line"]) for f in o["findings"]] == \
            [(w["kind"], w["type"], w["title"], w["line"]) for w in expected(Path(o["file"]))]
    out = io.StringIO()
    assert console_cli.main(logs, as_json=False, out=out) == 0
    lines = out.getvalue().splitlines()
    hang = next(f for f in analyze(read(DATA / "hung-task.log")) if f.type == "HANG")
    assert f"{logs[0]}:{hang.line}: hang HANG {hang.title} (x{hang.count})" in lines
    assert not any(ln.startswith(logs[1]) for ln in lines)


def test_cli_missing_file(tmp_path):
    with pytest.raises(UserError) as e:
        console_cli.main([str(DATA / "clean-boot.log"), str(tmp_path / "nope.log")], as_json=False,
                         out=io.StringIO())
    assert "nope.log" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError):
        console_cli.main([str(tmp_path)], as_json=True, out=io.StringIO())


def test_cli_invalid_utf8(tmp_path):
    p = tmp_path / "bin.log"
    p.write_bytes(read(DATA / "lkdtm-warn.log").encode() + b"\xff\xfe garbage\n")
    out = io.StringIO()
    console_cli.main([str(p)], as_json=True, out=out)
    assert len(json.loads(out.getvalue())["findings"]) == len(expected(DATA / "lkdtm-warn.log"))
