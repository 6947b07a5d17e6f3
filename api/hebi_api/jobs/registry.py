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

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
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
    process_list TEXT NOT NULL,
    dataset TEXT NOT NULL,
    output TEXT NOT NULL,
    run_dir TEXT NOT NULL DEFAULT '',
    job_dir TEXT NOT NULL,
    spec TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '{}',
    change INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_submitted ON jobs (submitted_at DESC);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_change ON jobs (change);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counter VALUES ('change', 0);
"""

COLUMNS = ("id", "name", "mode", "backend", "backend_id", "queue", "state", "message", "exit_code", "signal",
           "wall_time", "submitted_at", "started_at", "ended_at", "updated_at", "cancel_requested_at",
           "missing_since", "progress", "progress_text", "process_list", "dataset", "output", "run_dir", "job_dir",
           "spec", "summary", "change")
#: What a job list shows of the spec, kept apart so that listing 1000 jobs decodes little.
SUMMARY_KEYS = ("time_limit", "cores", "memory_mb", "preview", "run_folder")


class JobRegistry:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connect().db.executescript(SCHEMA)

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
            where.append("(name LIKE ? ESCAPE '\\' OR process_list LIKE ? ESCAPE '\\' OR dataset LIKE ? ESCAPE '\\')")
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pattern] * 3
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
