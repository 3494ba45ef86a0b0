"""Write LOG.expected.json from the analyzer's current findings for each LOG given.

Only after reading the log and checking every finding by hand (kind, type, title, line,
count, corrupted): the expected files are the reviewed truth the unit tests hold the
analyzer to.

    .venv/bin/python tests/data/console/gen/write-expected.py tests/data/console/NAME.log ...
    .venv/bin/python tests/data/console/gen/write-expected.py --update

--update rewrites the expectations of every log in tests/data/console after a deliberate
change to the analyzer, and prints what changed, for that review.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from kharness.console import analyze  # noqa: E402

DATA = Path(__file__).resolve().parents[1]
FIELDS = ("kind", "type", "title", "line", "count", "corrupted")

args = sys.argv[1:]
update = "--update" in args
names = [a for a in args if a != "--update"] or (sorted(map(str, DATA.glob("*.log"))) if update else [])
if not names:
    sys.exit(__doc__)
for name in names:
    p = Path(name)
    findings = analyze(p.read_bytes().decode("utf-8", "replace"))
    out = [{k: getattr(f, k) for k in FIELDS} for f in findings]
    exp = Path(str(p) + ".expected.json")
    old = json.loads(exp.read_text()) if exp.exists() else None
    if update and old == out:
        continue
    exp.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{p.name}: {len(out)} findings" + (" (changed)" if old is not None else ""))
    for f in out:
        was = "" if old is None or f in old else "  <- new or changed"
        print(f"  {f['line']}: {f['kind']} {f['type']} {f['title']} (x{f['count']})"
              f"{' corrupted' if f['corrupted'] else ''}{was}")
