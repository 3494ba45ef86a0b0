"""History across runs: results/history.sqlite, one row per run and per job iteration.

It outlives the run directories (nightly retention prunes those, not this), and
answers: what did this job do in earlier runs of the same config, which jobs are
new failures, how long does each job take (for balancing shards), and the trend
for the index page. Shard runs are not recorded on their own: their merge is.
`repro` runs (one reproducer, often looped far longer than a nightly would) are
not recorded either: they would make "new failure" mean something else.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..model import VERDICTS
from .labels import JobHistory, job_history, tallies
from .record import RunRecord, is_run

DB_NAME = "history.sqlite"
RECORDED_KINDS = ("run", "nightly", "merged")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY, config TEXT NOT NULL, started TEXT NOT NULL, kind TEXT NOT NULL,
    kernel_release TEXT, head_commit TEXT, series TEXT, seconds REAL,
    jobs INTEGER, failed INTEGER, interrupted INTEGER);
CREATE TABLE IF NOT EXISTS results (
    run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE, key TEXT NOT NULL,
    iteration INTEGER NOT NULL, status TEXT NOT NULL, message TEXT, duration REAL,
    PRIMARY KEY (run, key, iteration));
CREATE INDEX IF NOT EXISTS results_key ON results(key);
"""


_TEXT, _NULL, _INTEGER, _REAL = "text", "null", "integer", "real"
# Each column and the SQLite types it may hold (what record() writes; NULL where the schema allows it).
_TYPES = [("runs", c, (_TEXT,)) for c in ("name", "config", "started", "kind")] + \
         [("runs", c, (_TEXT, _NULL)) for c in ("kernel_release", "head_commit", "series")] + \
         [("runs", "seconds", (_REAL, _INTEGER, _NULL))] + \
         [("runs", c, (_INTEGER, _NULL)) for c in ("jobs", "failed", "interrupted")] + \
         [("results", c, (_TEXT,)) for c in ("run", "key", "status")] + \
         [("results", "iteration", (_INTEGER,)), ("results", "message", (_TEXT, _NULL)),
          ("results", "duration", (_REAL, _INTEGER, _NULL))]


@dataclass
class RunRow:
    name: str
    config: str
    started: str
    kind: str
    kernel_release: str
    series: str
    seconds: float
    jobs: int
    failed: int
    interrupted: bool


class History:
    def __init__(self, results_root: Path):
        self.path = Path(results_root) / DB_NAME
        self.created = not self.path.exists()
        if not self.created and not self.path.is_file():
            raise self._unusable("not a regular file")
        try:
            # Two runs may finish at once (shards on one box): SQLite's own locking, waited on.
            self.db = sqlite3.connect(self.path, timeout=60)
        except sqlite3.Error as e:
            raise self._unusable(str(e)) from None
        try:
            self.db.execute("PRAGMA foreign_keys = ON")
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if {"runs", "results"} - tables:
                self.db.executescript(_SCHEMA)      # a new history (checked before anything is written to one)
            # The columns this code reads and writes (a table of the same name from elsewhere is not history).
            self.db.execute("SELECT name, config, started, kind, kernel_release, head_commit, series, seconds, jobs, "
                            "failed, interrupted FROM runs LIMIT 0")
            self.db.execute("SELECT run, key, iteration, status, message, duration FROM results LIMIT 0")
            why = self._mistyped()
            if not why:
                self.db.executescript(_SCHEMA)      # the index, in a history from before it existed
        except sqlite3.Error as e:
            self.db.close()
            raise self._unusable(str(e)) from None
        if why:
            self.db.close()
            raise self._unusable(why)

    def _mistyped(self) -> str | None:
        """The first column holding a value of a type this code never writes (a row from elsewhere:
        SQLite keeps what it is given, whatever the column's declared type)."""
        for table, column, types in _TYPES:
            row = self.db.execute(f"SELECT typeof({column}), quote({column}) FROM {table} "
                                  f"WHERE typeof({column}) NOT IN ({','.join('?' * len(types))}) LIMIT 1",
                                  types).fetchone()
            if row:
                return f"{table}.{column} holds {row[1][:40]} ({row[0]}), not {' or '.join(types)}"
        row = self.db.execute(f"SELECT quote(status) FROM results WHERE status NOT IN "
                              f"({','.join('?' * len(VERDICTS))}) LIMIT 1", VERDICTS).fetchone()
        return f"results.status holds {row[0][:40]}, not a verdict" if row else None

    def _unusable(self, why: str) -> UserError:
        return UserError(f"{self.path}: not a kharness history database ({why}); move it aside and the next "
                         f"run or `report` starts a new one from the run directories")

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def backfill(self, root: Path, load) -> int:
        """Record the run directories already in root (a results/ from before history existed)."""
        n = 0
        for d in sorted(Path(root).iterdir()):
            if d.is_symlink() or not is_run(d):
                continue
            try:
                n += self.record(load(d))
            except UserError:       # an unreadable (or newer) record is skipped: load says why
                continue
        return n

    def record(self, rec: RunRecord) -> bool:
        """Add (or replace) a run; False for kinds history does not keep (shards)."""
        if rec.kind not in RECORDED_KINDS:
            return False
        p = rec.properties
        failed = sum(1 for t in tallies(rec.jobs).values() if t.any_failed) + len(rec.not_run)
        with self.db:
            self.db.execute("DELETE FROM results WHERE run = ?", (rec.name,))
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (rec.name, rec.config, rec.started, rec.kind, p.get("kernel_release", ""),
                             p.get("head_commit", ""), p.get("series", ""), rec.seconds,
                             len(rec.jobs) + len(rec.not_run), failed, int(rec.interrupted)))
            self.db.executemany("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?)",
                                [(rec.name, j.key, j.iteration, j.status, j.message, j.duration)
                                 for j in rec.jobs])
        return True

    def _earlier(self, config: str, started: str, run: str) -> dict[str, list[tuple[str, bool]]]:
        """key -> [(run, failed)] over earlier runs of the config, oldest first."""
        rows = self.db.execute(
            "SELECT r.name, res.key, MAX(res.status NOT IN ('pass','skip')), MIN(res.status = 'skip') "
            "FROM runs r JOIN results res ON res.run = r.name "
            "WHERE r.config = ? AND (r.started < ? OR (r.started = ? AND r.name < ?)) "
            "GROUP BY r.name, res.key ORDER BY r.started, r.name", (config, started, started, run))
        out: dict[str, list[tuple[str, bool]]] = {}
        for name, key, failed, all_skipped in rows:
            if not all_skipped:
                out.setdefault(key, []).append((name, bool(failed)))
        return out

    def job_histories(self, rec: RunRecord, window: int = 10) -> dict[str, JobHistory]:
        earlier = self._earlier(rec.config, rec.started, rec.name)
        return {key: job_history(earlier.get(key, []), rec.name, t.any_failed, window)
                for key, t in tallies(rec.jobs).items() if t.runs}

    def mean_durations(self, config: str, last: int = 5) -> dict[str, float]:
        """key -> mean seconds per iteration over its last few recorded runs (shard balancing)."""
        rows = self.db.execute(
            "SELECT res.key, res.duration FROM results res JOIN runs r ON res.run = r.name "
            "WHERE r.config = ? AND res.duration IS NOT NULL ORDER BY r.started DESC", (config,))
        seen: dict[str, list[float]] = {}
        for key, d in rows:
            if len(seen.setdefault(key, [])) < last:
                seen[key].append(d)
        return {k: sum(v) / len(v) for k, v in seen.items() if v}

    def runs(self, config: str | None = None, limit: int = 200) -> list[RunRow]:
        q = "SELECT name, config, started, kind, kernel_release, series, seconds, jobs, failed, interrupted FROM runs"
        args: tuple = ()
        if config:
            q += " WHERE config = ?"
            args = (config,)
        q += " ORDER BY started DESC, name DESC LIMIT ?"
        return [RunRow(*row[:9], bool(row[9])) for row in self.db.execute(q, args + (limit,))]
