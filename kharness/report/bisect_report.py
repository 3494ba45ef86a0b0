"""A bisection's report.html, junit.xml and summary.txt, from its bisect.json alone.

    bisect.json (kharness/bisect_run.py)  -> steps: one row per candidate k that ran
    report.html   the culprit patch (subject, Message-ID, author), the evidence at the step
                  before and at the culprit, the steps as a table, every run
    junit.xml     testsuite "bisect", one testcase per step: <failure> where the failure was
                  seen, <error> for an undecided step, passing for a good one
    summary.txt   the same in a few lines
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..bisect import Run, matches
from ..errors import UserError
from .html import TEMPLATES, _env  # noqa: F401  (one Jinja2 environment for every page)

MAX_BISECT_BYTES = 16 << 20


@dataclass
class Step:
    k: int
    decision: str
    runs: int
    hits: int
    clean: int
    confidence: float
    patch: dict | None          # the k-th patch (None for k = 0)
    build_seconds: float
    cache_hit: bool
    run_seconds: float
    statuses: dict              # verdict -> count
    matching: dict | None       # a run that showed the failure
    passing: dict | None        # a clean run


def load(run_dir: Path) -> dict:
    text = files.read_text(run_dir / "bisect.json", "bisection record", MAX_BISECT_BYTES)
    try:
        data = json.loads(text)
    except ValueError as e:
        raise UserError(f"{run_dir / 'bisect.json'}: not JSON ({e})")
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise UserError(f"{run_dir / 'bisect.json'}: not a bisection record")
    return data


def steps(data: dict) -> list[Step]:
    patches = {p["k"]: p for p in data.get("patches", [])}
    out = []
    for d in data.get("decisions", []):
        k = d["k"]
        runs = [r for r in data["runs"] if r["k"] == k]
        visits = [v for v in data.get("visits", []) if v["k"] == k]
        sig = data.get("signature")
        shown = [Run(r["k"], r["status"], r["message"], titles=tuple(r.get("titles", ()))) for r in runs]
        statuses: dict[str, int] = {}
        for r in runs:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        out.append(Step(k, d["decision"], d["runs"], d["hits"], d["clean"], d["confidence"], patches.get(k),
                        round(sum(v.get("build_seconds", 0) for v in visits), 1),
                        all(v.get("cache_hit") for v in visits) if visits else False,
                        round(sum(v.get("run_seconds", 0) for v in visits), 1), statuses,
                        next((r for r, s in zip(runs, shown) if sig and matches(s, sig)), None),
                        next((r for r in runs if r["status"] == "pass"), None)))
    return out


def summary(data: dict, st: list[Step]) -> str:
    out = data.get("outcome") or {}
    lines = [f"bisect {data['job']} ({data['config_name']}): {data['n']} patch(es), signature "
             f"{data.get('signature')!r}, confidence wanted {data['confidence']}"]
    if data.get("failure_rate") is not None:
        lines.append(f"failure rate at the bad end {data['failure_rate']:.2f} -> {data.get('runs_per_good_step')} "
                     f"clean run(s) make a step good")
    for s in st:
        what = s.patch["subject"] if s.patch else "(no patch of the series)"
        lines.append(f"  k={s.k:<3} {s.decision:9} runs {s.runs:<3} hits {s.hits:<3} clean {s.clean:<3} "
                     f"build {s.build_seconds:6.1f}s{' (cache)' if s.cache_hit else ''}  run {s.run_seconds:6.1f}s  {what}")
    if data.get("culprit"):
        c = data["culprit"]
        lines.append(f"culprit: patch {c['k']} of {data['n']}: {c['subject']} ({c['series']}: {c['file']})"
                     + (f" {c['message_id']}" if c.get("message_id") else "") + (f" from {c['author']}" if c.get("author") else ""))
        lines.append(f"confidence reached: {data['confidence_reached']:.4f}; {len(data['runs'])} runs, "
                     f"{len(data.get('visits', []))} kernel(s) booted, {data['seconds']:.0f} s")
    elif data.get("interrupted"):
        lines.append("interrupted: continue with ./harness.py bisect --resume <this directory>")
    elif out:
        lines.append(f"{out['kind']}: {out['why']}")
    return "\n".join(lines) + "\n"


def junit(data: dict, st: list[Step]) -> ET.ElementTree:
    suites = ET.Element("testsuites")
    fails = sum(1 for s in st if s.decision == "bad")
    errs = sum(1 for s in st if s.decision == "undecided")
    ts = ET.SubElement(suites, "testsuite", name="bisect", tests=str(len(st)), failures=str(fails),
                       errors=str(errs), time=f"{data.get('seconds', 0):.3f}")
    props = ET.SubElement(ts, "properties")
    for name in ("job", "signature", "confidence", "failure_rate", "confidence_reached"):
        if data.get(name) is not None:
            ET.SubElement(props, "property", name=name, value=str(data[name]))
    if data.get("culprit"):
        c = data["culprit"]
        ET.SubElement(props, "property", name="culprit", value=f"{c['k']}/{data['n']} {c['subject']}")
    for s in st:
        name = f"k={s.k}" + (f" {s.patch['subject']}" if s.patch else " (no patch)")
        tc = ET.SubElement(ts, "testcase", classname=f"bisect.{data['job']}", name=name,
                           time=f"{s.build_seconds + s.run_seconds:.3f}")
        runs = ", ".join(f"{n} {v}" for v, n in sorted(s.statuses.items()))
        if s.decision == "bad":
            el = ET.SubElement(tc, "failure", type="bisect", message=f"{data.get('signature')} ({s.hits} of {s.runs} runs)")
            el.text = f"runs: {runs}\nfirst matching run: {s.matching and s.matching['dir']}"
        elif s.decision == "undecided":
            ET.SubElement(tc, "error", type="undecided", message=f"undecided after {s.runs} runs ({runs})")
        else:
            ET.SubElement(tc, "system-out").text = f"{s.decision}: {s.clean} clean of {s.runs} runs ({runs}), confidence {s.confidence}"
    return ET.ElementTree(suites)


def render(run_dir: Path) -> None:
    data = load(run_dir)
    st = steps(data)
    (run_dir / "summary.txt").write_text(summary(data, st))
    tree = junit(data, st)
    ET.indent(tree)
    tree.write(run_dir / "junit.xml", encoding="utf-8", xml_declaration=True)
    culprit = data.get("culprit")
    before = next((s for s in reversed(st) if culprit and s.k < culprit["k"] and s.decision == "good"), None)
    at = next((s for s in st if culprit and s.k == culprit["k"]), None)
    html = _env.get_template("bisect.html.j2").render(d=data, steps=st, before=before, at=at,
                                                       runs=data["runs"], summary=summary(data, st))
    (run_dir / "report.html").write_text(html)
