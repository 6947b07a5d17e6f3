"""Culling: which sessions to stop for being idle or old, and what to tell their users afterwards.

Written once for the gateway's background culler and ``pod_launcher cull``. Both read the gateway's
activity file (``<gateway.state_dir>/activity.json``: the last proxied request of each user, written by
the gateway at most every few seconds) and keep why a session was culled in ``culled.json`` beside it,
so the user's next visit says what happened, also after a gateway restart.

Stopping a session never touches its jobs: they run in processes (or pods) of their own, and their
registry lives in the user's state folder, so the next session finds them.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from hebi_common.atomic import atomic_write

from .base import Launcher, SessionInfo

log = logging.getLogger("hebi.launcher")
ACTIVITY_FILE = "activity.json"
CULLED_FILE = "culled.json"
#: The culled records kept at most (the oldest dropped), so the file stays small whatever happens.
MAX_RECORDS = 10000


@dataclass(frozen=True)
class Cull:
    user: str
    #: ``idle``: no proxied request for ``seconds``; ``max_age``: the session ran for ``seconds``.
    reason: str
    seconds: float


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, 0o600, text=True) as out:
        json.dump(data, out)


def read_activity(state_dir: str | Path) -> dict[str, float]:
    """The last activity (epoch seconds) of each user, as the gateway last wrote it."""
    users = _read_json(Path(state_dir) / ACTIVITY_FILE).get("users", {})
    return {u: float(t) for u, t in users.items() if isinstance(t, (int, float))} if isinstance(users, dict) else {}


def write_activity(state_dir: str | Path, activity: dict[str, float]) -> None:
    _write_json(Path(state_dir) / ACTIVITY_FILE, {"users": activity})


def due(sessions: list[SessionInfo], activity: dict[str, float], now: float, idle_timeout: float,
        max_age: float) -> list[Cull]:
    """The sessions to stop: running (or stuck starting) ones idle longer than ``idle_timeout`` or
    older than ``max_age`` (0: that rule is off). A session with no recorded activity counts as active
    from its start, so one the gateway never proxied for is not stopped at once."""
    culls = []
    for info in sessions:
        if info.state not in ("running", "starting") or not info.started_at:
            continue
        age = now - info.started_at
        idle = now - max(activity.get(info.user, 0.0), info.started_at)
        if max_age and age > max_age:
            culls.append(Cull(info.user, "max_age", age))
        elif idle_timeout and idle > idle_timeout:
            culls.append(Cull(info.user, "idle", idle))
    return culls


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        hours = seconds / 3600
        return f"{hours:.0f} h" if hours >= 10 or hours == int(hours) else f"{hours:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def message(record: dict) -> str:
    """What the user is told on coming back."""
    seconds = float(record.get("seconds", 0))
    why = (f"after {_duration(seconds)} idle" if record.get("reason") == "idle"
           else f"after running for {_duration(seconds)}, the longest a session may run")
    return f"Your session was stopped {why}; your jobs kept running."


def record(state_dir: str | Path, cull: Cull, at: float | None = None) -> None:
    path = Path(state_dir) / CULLED_FILE
    records = _read_json(path)
    records.pop(cull.user, None)
    records[cull.user] = {"reason": cull.reason, "seconds": round(cull.seconds, 1), "at": at or time.time()}
    while len(records) > MAX_RECORDS:
        records.pop(next(iter(records)))
    _write_json(path, records)


def read_culled(state_dir: str | Path) -> dict[str, dict]:
    """Every culled record, by user."""
    return {u: r for u, r in _read_json(Path(state_dir) / CULLED_FILE).items() if isinstance(r, dict)}


def culled(state_dir: str | Path, user: str) -> dict | None:
    """Why the user's last session was culled, until the user's next session has started."""
    found = _read_json(Path(state_dir) / CULLED_FILE).get(user)
    return found if isinstance(found, dict) else None


def forget(state_dir: str | Path, user: str) -> None:
    path = Path(state_dir) / CULLED_FILE
    records = _read_json(path)
    if records.pop(user, None) is not None:
        _write_json(path, records)


def cull(launcher: Launcher, state_dir: str | Path, idle_timeout: float, max_age: float,
         dry_run: bool = False, now: float | None = None) -> list[Cull]:
    """Stop (unless ``dry_run``) the sessions due, and keep why for their users. Blocking."""
    now = time.time() if now is None else now
    culls = due(launcher.list(), read_activity(state_dir), now, idle_timeout, max_age)
    if dry_run:
        return culls
    done = []
    for item in culls:
        try:
            launcher.stop(item.user)
        except Exception:  # noqa: BLE001 - one session that will not stop must not keep others running
            log.exception("culling the session of %s failed", item.user)
            continue
        record(state_dir, item, now)
        log.info("culled the session of %s (%s, %.0f s)", item.user, item.reason, item.seconds)
        done.append(item)
    return done
