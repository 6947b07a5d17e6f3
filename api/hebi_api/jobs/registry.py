"""The job registry: every job a user submitted, in SQLite in the user's own state folder.

It is what makes restarts harmless: a job is written here before it reaches the scheduler (state
``submitting``) and updated with the scheduler's id right after, so an API killed at any moment leaves a
record to resolve. ``change`` is a counter bumped on every update; the event stream sends the jobs whose
``change`` passed the client's last one. WAL mode lets the session's request threads read while the
poller writes.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .states import ACTIVE_STATES

#: The columns of the jobs table, in the order of the latest schema; ``kind`` says which job kind
#: (jobs/kinds.py) reads the rest: a Savu job has a process list and a dataset, a code job a project
#: (``source``) and perhaps no data.
JOBS_TABLE = """
CREATE TABLE {name} (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'savu',
    name TEXT NOT NULL,
    mode TEXT NOT NULL,
    backend TEXT NOT NULL,
    backend_id TEXT,
    queue TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    signal TEXT,
    wall_time REAL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    updated_at REAL NOT NULL,
    cancel_requested_at REAL,
    missing_since REAL,
    progress REAL,
    progress_text TEXT NOT NULL DEFAULT '',
    source TEXT,
    process_list TEXT,
    dataset TEXT,
    output TEXT NOT NULL,
    run_dir TEXT NOT NULL DEFAULT '',
    job_dir TEXT NOT NULL,
    spec TEXT NOT NULL DEFAULT '{{}}',
    summary TEXT NOT NULL DEFAULT '{{}}',
    change INTEGER NOT NULL DEFAULT 0
);
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_submitted ON jobs (submitted_at DESC);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_change ON jobs (change);
"""
#: Version 1: the Savu-only table of the first releases (no user_version was written then), kept as
#: it was so that a registry of any age is brought forward by the same steps.
VERSION_1 = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, mode TEXT NOT NULL, backend TEXT NOT NULL, backend_id TEXT,
    queue TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
    exit_code INTEGER, signal TEXT, wall_time REAL, submitted_at REAL NOT NULL, started_at REAL,
    ended_at REAL, updated_at REAL NOT NULL, cancel_requested_at REAL, missing_since REAL, progress REAL,
    progress_text TEXT NOT NULL DEFAULT '', process_list TEXT NOT NULL, dataset TEXT NOT NULL,
    output TEXT NOT NULL, run_dir TEXT NOT NULL DEFAULT '', job_dir TEXT NOT NULL,
    spec TEXT NOT NULL DEFAULT '{}', summary TEXT NOT NULL DEFAULT '{}', change INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counter VALUES ('change', 0);
""" + INDEXES
_V1_COLUMNS = ("id, name, mode, backend, backend_id, queue, state, message, exit_code, signal, wall_time, "
               "submitted_at, started_at, ended_at, updated_at, cancel_requested_at, missing_since, progress, "
               "progress_text, process_list, dataset, output, run_dir, job_dir, spec, summary, change")
#: Version 2: job kinds. SQLite cannot drop a NOT NULL, so the table is made again and the rows copied.
VERSION_2 = (JOBS_TABLE.format(name="jobs_v2")
             + f"INSERT INTO jobs_v2 ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM jobs;\n"
             + "DROP TABLE jobs;\nALTER TABLE jobs_v2 RENAME TO jobs;\n" + INDEXES)
#: Applied in order; ``PRAGMA user_version`` counts those done. Append, never edit one that shipped.
MIGRATIONS = (VERSION_1, VERSION_2)

COLUMNS = ("id", "kind", "name", "mode", "backend", "backend_id", "queue", "state", "message", "exit_code",
           "signal", "wall_time", "submitted_at", "started_at", "ended_at", "updated_at", "cancel_requested_at",
           "missing_since", "progress", "progress_text", "source", "process_list", "dataset", "output", "run_dir",
           "job_dir", "spec", "summary", "change")
#: What a job list shows of the spec, kept apart so that listing 1000 jobs decodes little.
SUMMARY_KEYS = ("time_limit", "cores", "memory_mb", "preview", "run_folder", "entry", "language", "parameters")


class JobRegistry:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        migrate(self._connect().db)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across an API crash
            self._local.db = db
        return _Transaction(db)

    def _next_change(self, db) -> int:
        db.execute("UPDATE counter SET value = value + 1 WHERE name = 'change'")
        return db.execute("SELECT value FROM counter WHERE name = 'change'").fetchone()[0]

    def add(self, job: dict[str, Any]) -> None:
        self.add_many([job])

    def add_many(self, jobs: list[dict[str, Any]]) -> None:
        """Record jobs in one transaction: all or none."""
        with self._connect() as db:
            now = time.time()
            for job in jobs:
                summary = {key: job.get("spec", {}).get(key) for key in SUMMARY_KEYS}
                job = dict(job, summary=summary, change=self._next_change(db), updated_at=now)
                names = [name for name in COLUMNS if name in job]
                db.execute(f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                           [_encode(name, job[name]) for name in names])

    def update(self, job_id: str, **fields: Any) -> None:
        self.update_many([(job_id, fields)])

    def update_many(self, updates: Iterable[tuple[str, dict[str, Any]]]) -> None:
        updates = [(job_id, fields) for job_id, fields in updates if fields]
        if not updates:
            return
        with self._connect() as db:
            now = time.time()
            for job_id, fields in updates:
                fields = dict(fields, change=self._next_change(db), updated_at=now)
                names = list(fields)
                db.execute(f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in names)} WHERE id = ?",
                           [_encode(name, fields[name]) for name in names] + [job_id])

    def touch_quietly(self, updates: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Bookkeeping (e.g. ``missing_since``) that a user would not see: no change event."""
        with self._connect() as db:
            for job_id, fields in updates:
                names = list(fields)
                db.execute(f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in names)} WHERE id = ?",
                           [_encode(name, fields[name]) for name in names] + [job_id])

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self._connect().db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _decode(row) if row else None

    def get_many(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """The jobs of ``job_ids``, in that order (ids that are not recorded are left out)."""
        found: dict[str, dict[str, Any]] = {}
        db = self._connect().db
        for start in range(0, len(job_ids), 500):  # SQLite's limit on parameters
            part = job_ids[start:start + 500]
            rows = db.execute(f"SELECT * FROM jobs WHERE id IN ({', '.join('?' * len(part))})", part).fetchall()
            found.update((row["id"], _decode(row)) for row in rows)
        return [found[job_id] for job_id in job_ids if job_id in found]

    def active(self) -> list[dict[str, Any]]:
        rows = self._connect().db.execute(
            f"SELECT * FROM jobs WHERE state IN ({', '.join('?' * len(ACTIVE_STATES))})", ACTIVE_STATES).fetchall()
        return [_decode(row) for row in rows]

    def list(self, *, states: list[str] | None = None, mode: str | None = None, since: float | None = None,
             text: str | None = None, limit: int = 1000, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        where, args = [], []
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args += states
        if mode:
            where.append("mode = ?")
            args.append(mode)
        if since is not None:
            where.append("submitted_at >= ?")
            args.append(since)
        if text:
            where.append("(name LIKE ? ESCAPE '\\' OR process_list LIKE ? ESCAPE '\\' OR dataset LIKE ? ESCAPE '\\'"
                         " OR source LIKE ? ESCAPE '\\')")
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pattern] * 4
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        db = self._connect().db
        total = db.execute(f"SELECT COUNT(*) FROM jobs{clause}", args).fetchone()[0]
        listed = ", ".join(name for name in COLUMNS if name != "spec")
        rows = db.execute(f"SELECT {listed} FROM jobs{clause} ORDER BY submitted_at DESC, rowid DESC LIMIT ? OFFSET ?",
                          args + [limit, offset]).fetchall()
        return [_decode(row) for row in rows], total

    def changed_since(self, change: int) -> list[dict[str, Any]]:
        rows = self._connect().db.execute("SELECT * FROM jobs WHERE change > ? ORDER BY change", (change,)).fetchall()
        return [_decode(row) for row in rows]

    def last_change(self) -> int:
        return self._connect().db.execute("SELECT value FROM counter WHERE name = 'change'").fetchone()[0]

    def delete(self, job_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))


def migrate(db: sqlite3.Connection) -> int:
    """Bring a registry to the latest schema; the version it is at. Under an exclusive lock, so two
    processes opening an old registry at once migrate it once."""
    db.execute("BEGIN EXCLUSIVE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(f"the job registry is at version {version}, newer than this API knows "
                               f"({len(MIGRATIONS)}): run the newer API, or restore the registry")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in _statements(script):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    # executescript would COMMIT the transaction first; one statement at a time keeps a migration whole.
    return [part.strip() for part in script.split(";\n") if part.strip()]


class _Transaction:
    """``with registry._connect() as db``: one IMMEDIATE transaction (writers queue, readers go on)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def execute(self, *args):
        return self.db.execute(*args)

    def executescript(self, script: str):
        return self.db.executescript(script)

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, kind, value, traceback):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False


def _encode(name: str, value: Any) -> Any:
    if name in ("spec", "summary") and not isinstance(value, str):
        return json.dumps(value)
    return value


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    job = dict(row)
    if "spec" in job:
        job["spec"] = json.loads(job["spec"] or "{}")
    job["summary"] = json.loads(job.get("summary") or "{}")
    return job
