"""Write LOG.expected.json from the analyzer's current findings for each LOG given.

Only after reading the log and checking every finding by hand (kind, type, title, line,
count): the expected files are the reviewed truth the unit tests hold the analyzer to.

    .venv/bin/python tests/data/console/gen/write-expected.py tests/data/console/NAME.log ...
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from kharness.console import analyze  # noqa: E402

for name in sys.argv[1:]:
    p = Path(name)
    findings = analyze(p.read_bytes().decode("utf-8", "replace"))
    out = [{"kind": f.kind, "type": f.type, "title": f.title, "line": f.line, "count": f.count} for f in findings]
    Path(str(p) + ".expected.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"{p.name}: {len(out)} findings")
    for f in out:
        print(f"  {f['line']}: {f['kind']} {f['type']} {f['title']} (x{f['count']})")
