"""Title conformance: the console analyzer against syzkaller's own corpus of Linux reports.

Not CI: it needs a syzkaller checkout you fetch yourself (nothing of it is kept in this
repository).  Each file of `pkg/report/testdata/linux/report` is a header (`TITLE:`,
`ALT:`, `TYPE:`, `CORRUPTED: Y`, `SUPPRESSED: Y`, `#` comments), a blank line, then the
console log (up to an optional `REPORT:` section, which is not fed).  Every log is fed to
kharness.console.ConsoleAnalyzer, as `harness.py console` does, and compared:

  recall          logs with a TITLE for which at least one finding was made (also without the
                  logs of syzkaller's own program failures: SYZFAIL, SYZFATAL, Go runtime errors)
  false positives logs without a TITLE that got a finding (count)
  kind right      the first finding's kind (hang/crash/warn) is the kind of the TYPE
                  (HANG: hang; WARNING, LOCKDEP, LEAK, UBSAN, KCSAN, ATOMIC_SLEEP: warn; else crash)
  first title     the first finding's title is exactly syzkaller's TITLE
  hang titles     the same, over the logs whose TYPE is HANG
  (also: ALT titles matched, CORRUPTED agreement)

    python bench/title_conformance.py --corpus SYZKALLER_CHECKOUT [--misses] [--only SUBSTR]

--corpus defaults to $SYZKALLER_REPO; it may be the checkout or the report directory itself.
--misses prints every log whose first title differs (expected -> got).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kharness.console import ConsoleAnalyzer  # noqa: E402

SUBDIR = Path("pkg/report/testdata/linux/report")

# syzkaller's crash TYPE -> the harness's Finding.kind.  Everything else is a crash.
_WARN_TYPES = {"WARNING", "LOCKDEP", "REFCOUNT_WARNING", "LEAK", "UBSAN", "ATOMIC_SLEEP", "MEMORY_SAFETY_UBSAN",
               "KCSAN-DATARACE", "KCSAN-ASSERT"}


def head(title: str) -> str:
    return title.split(" in ", 1)[0]


def expected_kind(type_: str, title: str, types_by_head: dict[str, str] | None = None) -> str:
    """The kind of syzkaller's TYPE; a log without TYPE takes the TYPE the corpus gives
    other logs with the same title head ("INFO: trying to register non-static key")."""
    if not type_ and types_by_head:
        type_ = types_by_head.get(head(title), "")
    if type_ == "HANG" or (not type_ and title.startswith(("BUG: workqueue lockup", "INFO: task hung"))):
        return "hang"
    if type_ in _WARN_TYPES or type_.startswith("KCSAN"):
        return "warn"
    if not type_ and title.startswith(("WARNING", "possible deadlock", "inconsistent lock state", "memory leak",
                                       "INFO: suspicious RCU usage", "INFO: trying to register non-static key",
                                       "BUG: workqueue leaked lock", "BUG: lock held when returning",
                                       "BUG: MAX_STACK_TRACE_ENTRIES")):
        return "warn"     # lockdep's reports, typed LOCKDEP where the corpus types them
    return "crash"


def parse(path: Path) -> dict:
    data = path.read_bytes().replace(b"\r", b"").decode("utf-8", "replace")
    head, _, log = data.partition("\n\n") if not data.startswith("\n") else ("", "", data[1:])
    t = {"name": path.name, "title": "", "alt": [], "type": "", "corrupted": False, "suppressed": False}
    for ln in head.splitlines():
        key, _, val = ln.partition(": ")
        if ln.startswith("#"):
            continue
        if key == "TITLE":
            t["title"] = val
        elif key == "ALT":
            t["alt"].append(val)
        elif key == "TYPE":
            t["type"] = val
        elif key == "CORRUPTED":
            t["corrupted"] = val == "Y"
        elif key == "SUPPRESSED":
            t["suppressed"] = val == "Y"
    i = log.find("\n\nREPORT:\n")
    t["log"] = log[:i + 1] if i >= 0 else log
    return t


def analyze(text: str):
    a = ConsoleAnalyzer()
    a.feed(text)
    a.finish()
    return a.findings


def corpus_dir(arg: str | None) -> Path:
    root = Path(arg or os.environ.get("SYZKALLER_REPO") or "")
    if not str(root) or not root.is_dir():
        sys.exit("title_conformance: give --corpus DIR (a syzkaller checkout) or set SYZKALLER_REPO")
    return root / SUBDIR if (root / SUBDIR).is_dir() else root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", help="syzkaller checkout (or its pkg/report/testdata/linux/report)")
    ap.add_argument("--misses", action="store_true", help="print every first-title miss")
    ap.add_argument("--only", default="", help="only logs whose expected title contains this")
    args = ap.parse_args()
    d = corpus_dir(args.corpus)
    files = sorted((p for p in d.iterdir() if p.is_file()), key=lambda p: (len(p.name), p.name))
    tests = [parse(p) for p in files]
    if args.only:
        tests = [t for t in tests if args.only in t["title"]]
    types_by_head = {}
    for t in tests:
        if t["type"] and t["title"]:
            types_by_head.setdefault(head(t["title"]), t["type"])
    own = own_found = 0     # syzkaller's own program failures (SYZFAIL, executor, Go runtime): no kernel report
    n = found = kind_ok = title_ok = alt_ok = alt_n = hang_n = hang_ok = corr_ok = fp = clean = 0
    misses = []
    t0 = time.perf_counter()
    for t in tests:
        got = analyze(t["log"])
        first = got[0] if got else None
        if not t["title"]:
            clean += 1
            if got:
                fp += 1
                misses.append((t["name"], "(none)", first.title, first.kind))
            continue
        n += 1
        want_kind = expected_kind(t["type"], t["title"], types_by_head)
        title = first.title if first else "(none)"
        found += first is not None
        if t["type"] == "SYZ_FAILURE" or t["title"].startswith(("SYZFAIL", "SYZFATAL", "go runtime error")):
            own += 1
            own_found += first is not None
        kind_ok += first is not None and first.kind == want_kind
        ok = title == t["title"]
        title_ok += ok
        if t["type"] == "HANG":
            hang_n += 1
            hang_ok += ok
        if t["alt"]:
            alt_n += 1
            alt_ok += first is not None and sorted(getattr(first, "alt_titles", None) or []) == sorted(t["alt"])
        corr_ok += first is not None and bool(getattr(first, "corrupted", False)) == t["corrupted"]
        if not ok:
            misses.append((t["name"], t["title"], title, want_kind if first and first.kind != want_kind else ""))
    dt = time.perf_counter() - t0
    if args.misses:
        for name, want, got, kind in misses:
            print(f"{name:>5}  {want}\n       -> {got}" + (f"  [kind, want {kind}]" if kind else ""))
        print()

    def ratio(a: int, b: int) -> str:
        return f"{a / b:.3f} ({a}/{b})" if b else "-"
    print(f"corpus: {d} ({n} logs with a report, {clean} without)")
    print(f"reports found (recall)             {ratio(found, n)}")
    print(f"  without syzkaller's own failures {ratio(found - own_found, n - own)}")
    print(f"false positives on report-free logs {fp} of {clean}")
    print(f"kind right (hang / crash / warn)   {ratio(kind_ok, n)}")
    print(f"first title exactly syzkaller's    {ratio(title_ok, n)}")
    print(f"hang titles exactly syzkaller's    {ratio(hang_ok, hang_n)}")
    print(f"alt titles exactly syzkaller's     {ratio(alt_ok, alt_n)}")
    print(f"corrupted flag agrees              {ratio(corr_ok, n)}")
    print(f"({dt:.1f} s)")


if __name__ == "__main__":
    main()
