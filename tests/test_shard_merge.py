"""--shard I/N splits and `report --merge` (a real recorded run split into shard records)."""
import json
import random
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import harness
from kharness import shard
from kharness.errors import UserError
from kharness.report import merge, record, render

DATA = Path(__file__).parent / "data" / "runs"
BROKEN = "20261126T111800Z-selftest-broken"


def test_assign_is_a_deterministic_balanced_partition():
    rng = random.Random(7)
    for n in range(1, 8):
        weights = {f"v{i % 3}.t{i}": rng.uniform(0.5, 100) for i in range(40)}
        a = shard.assign(weights, n)
        assert a == shard.assign(dict(reversed(list(weights.items()))), n)   # order-independent
        assert set(a) == set(weights) and set(a.values()) <= set(range(1, n + 1))
        loads = [sum(w for k, w in weights.items() if a[k] == i) for i in range(1, n + 1)]
        # LPT bound: no shard exceeds the mean by more than the largest job.
        assert max(loads) <= sum(loads) / n + max(weights.values())


def test_parse_rejects_bad_shards():
    assert shard.parse("2/4") == (2, 4)
    for bad in ("5/4", "0/4", "4", "a/b", "1/0", "-1/2"):
        with pytest.raises(UserError, match=f"--shard {bad}: give I/N"):
            shard.parse(bad)


def test_shard_option_bad_input_is_one_line_exit_2():
    out = harness("run", "--shard", "5/4")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "harness.py run: error: argument --shard: '5/4': give I/N with 1 <= I <= N, e.g. --shard 2/4 "
        "(see harness.py run --help)"]


def split_into_shards(tmp_path: Path, n: int) -> list[Path]:
    """The recorded run as N shard directories, split the way --shard splits."""
    src = DATA / BROKEN
    s = json.loads((src / "summary.json").read_text())
    weights: dict[str, float] = {}
    for j in s["jobs"]:
        weights[f"{j['variant']}.{j['test']}"] = weights.get(f"{j['variant']}.{j['test']}", 0) + j["duration"]
    where = shard.assign(weights, n)
    dirs = []
    for i in range(1, n + 1):
        d = tmp_path / f"{BROKEN}-shard{i}of{n}"
        d.mkdir()
        mine = [j for j in s["jobs"] if where[f"{j['variant']}.{j['test']}"] == i]
        for j in mine:
            rel = record.job_record(j).dir
            shutil.copytree(src / rel, d / rel)
        for f in ("console.log", "kernel.json"):
            shutil.copy2(src / f, d / f)
        (d / "summary.json").write_text(json.dumps({
            **s, "run": d.name, "kind": "shard", "shard": f"{i}/{n}", "jobs": mine,
            "plan": [j["job"] for j in s["jobs"]],
            "not_applicable": s["not_applicable"] if i == 1 else []}))
        dirs.append(d)
    return dirs


def test_merge_of_shards_equals_the_unsharded_run(tmp_path):
    (tmp_path / "shards").mkdir()
    shards = split_into_shards(tmp_path / "shards", 3)
    out = tmp_path / "results" / "merged"
    out.parent.mkdir()
    merge.merge(list(reversed(shards)), out)
    v = render.render_run(out)
    whole = record.load(DATA / BROKEN)
    assert sorted(j.id for j in v.rec.jobs) == sorted(j.id for j in whole.jobs)
    assert v.rec.counts == whole.counts == {"fail": 45, "pass": 12}
    assert v.rec.not_run == [] and len(v.rec.not_applicable) == len(whole.not_applicable)
    assert v.rec.merged_from == [s.name for s in shards] and v.rec.kind == "merged"
    assert len(list(ET.parse(out / "junit.xml").getroot().iter("testcase"))) == 57 + 2
    for j in v.rec.jobs:
        assert (out / j.dir / "stdout").exists()
        assert (out / j.console_file).exists() and j.console_file.startswith("shards/")


def test_merge_refuses_incomplete_or_overlapping_shards(tmp_path):
    shards = split_into_shards(tmp_path, 3)
    with pytest.raises(UserError, match=r"shard\(s\) 2/3 missing"):
        merge.merge([shards[0], shards[2]], tmp_path / "m1")
    with pytest.raises(UserError, match="shard 1/3 given twice"):
        merge.merge([shards[0], shards[0], shards[1], shards[2]], tmp_path / "m2")
    with pytest.raises(UserError, match="not a shard"):
        merge.merge([DATA / BROKEN], tmp_path / "m3")
    s = json.loads((shards[1] / "summary.json").read_text())
    s["jobs"].append(json.loads((shards[0] / "summary.json").read_text())["jobs"][0])
    (shards[1] / "summary.json").write_text(json.dumps(s))
    with pytest.raises(UserError, match="is in two shards"):
        merge.merge(shards, tmp_path / "m4")
    assert not any((tmp_path / f"m{i}").exists() for i in range(1, 5))


def test_merge_lists_a_job_no_shard_reported(tmp_path):
    shards = split_into_shards(tmp_path, 2)
    s = json.loads((shards[1] / "summary.json").read_text())
    lost = s["jobs"].pop()
    (shards[1] / "summary.json").write_text(json.dumps(s))
    merge.merge(shards, tmp_path / "merged")
    rec = record.load(tmp_path / "merged")
    assert [n.id for n in rec.not_run] == [lost["job"]] and len(rec.jobs) == 56


def test_report_command_merges_and_rerenders(tmp_path):
    shards = split_into_shards(tmp_path, 2)
    out = harness("report", "--merge", *map(str, shards), "-o", str(tmp_path / "merged"))
    assert out.returncode == 1, out.stderr       # the broken kernel's failures
    assert "jobs:    57" in out.stdout and (tmp_path / "merged" / "report.html").exists()
    (tmp_path / "merged" / "report.html").unlink()
    again = harness("report", str(tmp_path / "merged"))
    assert again.returncode == 1 and (tmp_path / "merged" / "report.html").exists()
    bad = harness("report", "--merge", str(shards[0]))
    assert bad.returncode == 2 and bad.stderr.startswith("harness.py: error: report --merge: give the merged")


def judged(shard_dir: Path, warn_is_failure: bool, outside=()) -> None:
    """A shard as a config with warn_is_failure would have written it (findings outside jobs too)."""
    s = json.loads((shard_dir / "summary.json").read_text())
    s.update(format=record.FORMAT, warn_is_failure=warn_is_failure,
             findings_outside_jobs=[f.to_json() for f in outside])
    (shard_dir / "summary.json").write_text(json.dumps(s))


def test_merge_keeps_how_the_shards_judged_warnings(tmp_path):
    """The merged record says warn_is_failure false like its shards: a WARNING outside any
    job (lkdtm-warn.log's real one) stays recorded-only in the merge and when re-rendered."""
    from test_record import real_warning
    shards = split_into_shards(tmp_path, 2)
    judged(shards[0], False, [real_warning()])
    judged(shards[1], False)
    merged = tmp_path / "merged"
    out = harness("report", "--merge", *map(str, shards), "-o", str(merged))
    assert out.returncode == 1, out.stderr       # the broken kernel's failures
    rec = record.read_run(merged)
    assert rec.warn_is_failure is False and rec.format == record.FORMAT
    assert [f.title for f in rec.findings_outside] == ["WARNING in lkdtm_WARNING (shard 1/2)"]
    (case,) = [c for c in ET.parse(merged / "junit.xml").getroot().iter("testcase") if c.get("name") == "outside-jobs"]
    assert case.find("failure") is None and "WARNING in lkdtm_WARNING" in case.find("system-out").text
    junit = (merged / "junit.xml").read_text()
    assert harness("report", str(merged)).returncode == 1
    assert (merged / "junit.xml").read_text() == junit


def test_merge_refuses_shards_judged_differently(tmp_path):
    shards = split_into_shards(tmp_path, 2)
    judged(shards[0], False)
    out = harness("report", "--merge", *map(str, shards), "-o", str(tmp_path / "merged"))
    assert out.returncode == 2 and not (tmp_path / "merged").exists()
    assert out.stderr.strip().splitlines() == [
        "harness.py: error: --merge: the shards judged warnings differently (warn_is_failure false in shard 1/2, "
        "true in shard 2/2); give the shards of one run"]
