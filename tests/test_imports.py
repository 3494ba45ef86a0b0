"""The import graph of kharness/: dependencies point one way.

Walks every module's imports (top level and the lazy ones inside functions) with ast,
and fails on any circle and on any edge that points back up past the rules below.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PKG = REPO / "kharness"

# module -> project modules it may never import, directly or through others (the layers' rules).
NEVER = {
    "kharness.model": "kharness.*",                         # the shared values import nothing of ours
    "kharness.errors": "kharness.*",
    "kharness.config": ("kharness.fstests", "kharness.suites", "kharness.reproducers", "kharness.runner",
                        "kharness.lifecycle", "kharness.session"),   # suites register their sections
    "kharness.verdict": ("kharness.console", "kharness.guest", "kharness.session", "kharness.lifecycle",
                         "kharness.fstests", "kharness.reproducers", "kharness.runner"),
    "kharness.console": ("kharness.guest", "kharness.vm", "kharness.session", "kharness.config", "kharness.ui"),
    "kharness.console_cli": ("kharness.guest", "kharness.vm", "kharness.session", "kharness.config"),
    "kharness.lifecycle": ("kharness.fstests", "kharness.reproducers", "kharness.suites", "kharness.runner"),
    "kharness.session": ("kharness.fstests", "kharness.reproducers", "kharness.suites", "kharness.runner",
                         "kharness.lifecycle", "kharness.catalogue"),
    "kharness.reproducers": ("kharness.fstests", "kharness.suites", "kharness.runner"),
    "kharness.fstests": ("kharness.reproducers", "kharness.suites", "kharness.runner"),
    "kharness.report": ("kharness.runner", "kharness.suites", "kharness.lifecycle", "kharness.session",
                        "kharness.fstests", "kharness.reproducers", "kharness.guest", "kharness.vm"),
    "kharness.results": ("kharness.runner", "kharness.suites", "kharness.fstests", "kharness.reproducers"),
    "kharness.bisect": "kharness.*",                        # the decision rule is pure
    "kharness.runner": ("kharness.bisect_run",),
    # the slots' threads know sessions and results, never which suite a job is
    "kharness.guests": ("kharness.runner", "kharness.suites", "kharness.fstests", "kharness.reproducers",
                        "kharness.lifecycle", "kharness.bisect_run"),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `name` imports (a `from . import x` names module x when x is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    g = {n: imports_of(n, p, known) for n, p in mods.items()}
    # Importing kharness.fstests.plan runs kharness/fstests/__init__.py first: an edge to a
    # package's module is also an edge to the package (unless it comes from inside it).
    for n, deps in g.items():
        for d in list(deps):
            pkg = d.rpartition(".")[0]
            if pkg in known and pkg != "kharness" and not n.startswith(pkg + ".") and n != pkg:
                deps.add(pkg)
    return g


def reach(g: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for d in g.get(todo.pop(), ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_walk_sees_real_edges():
    """Positive control: edges known to exist are found, lazy imports included."""
    g = graph()
    assert "kharness.model" in g["kharness.verdict"]
    assert "kharness.lifecycle" in g["kharness.fstests.suite"]
    assert "kharness.suites" in g["kharness.cli"]           # imported inside _dispatch
    assert "kharness.fstests" in g["kharness.suites"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_in_a_circle():
    assert circles(graph()) == []


def test_no_module_imports_up_past_its_layer():
    g = graph()
    bad = []
    for mod, never in NEVER.items():
        members = [m for m in g if m == mod or m.startswith(mod + ".")]
        assert members, f"{mod}: no such module (update NEVER)"
        for m in members:
            for d in reach(g, m):
                if d.startswith(mod + ".") or d == mod:
                    continue        # a package's own modules
                if never == "kharness.*" or any(d == x or d.startswith(x + ".") for x in never):
                    bad.append(f"{m} -> {d}")
    assert bad == []


def test_reading_a_console_log_needs_no_ssh_or_qemu_code(tmp_path):
    """`harness.py console LOG` only reads text: it loads no paramiko, guest, vm or suite code."""
    import subprocess
    import sys
    log = tmp_path / "console.log"
    log.write_text("[    1.000000] Linux version 6.12\n")
    probe = ("import sys; sys.path.insert(0, %r); from kharness import cli; rc = cli.main(['console', %r]); "
             "bad = sorted(m for m in sys.modules if m == 'paramiko' or m.startswith(('kharness.guest', "
             "'kharness.vm', 'kharness.session', 'kharness.suites', 'kharness.fstests'))); "
             "print(rc, bad)") % (str(REPO), str(log))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
