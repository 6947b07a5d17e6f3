"""The local backend (the embedded default): jobs as processes on this machine, at most N at once.

Each job is a folder in the spool (``<state>/local-jobs/<id>/``) holding ``spec.json``; a job waits
there until a worker slot is free, then a supervisor (``local_shim``) runs it in its own process group
and writes ``state.json`` when it ends. Supervisors run in sessions of their own, so jobs survive a
restart of the API; queued jobs wait on disk and start when an API process is up again. The spool is
the whole truth: ``statuses`` reads it, nothing is kept only in memory.
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from .backend import ENDED, MISSING, QUEUED, RUNNING, BackendStatus, JobEnd, JobRef, JobSpec, QueueInfo
from .local_shim import process_start_ticks, write_json
from .states import JobState

LAUNCH_GRACE = 10.0  # seconds a launch may take before it is considered cut short


class LocalBackend:
    name = "local"

    @classmethod
    def from_config(cls, jobs, state_dir: Path) -> LocalBackend:
        return cls(state_dir / "local-jobs", jobs.local)

    def __init__(self, spool: Path, config):
        self.spool = spool
        self.workers = config.workers
        self.kill_grace = config.kill_grace
        self.spool.mkdir(parents=True, exist_ok=True)
        self._children: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._dispatch_lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._closed = threading.Event()
        self._kick = threading.Event()

    # -- interface ------------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        backend_id = f"{time.time_ns():x}-{secrets.token_hex(3)}"  # sorts in submission order
        folder = self.spool / backend_id
        folder.mkdir()
        write_json(folder / "spec.json", {
            "command": spec.command, "workdir": str(spec.workdir), "env": spec.env, "name": spec.name,
            "stdout": str(spec.stdout), "stderr": str(spec.stderr), "time_limit": spec.time_limit,
            "cores": spec.cores, "memory_mb": spec.memory_mb, "kill_grace": self.kill_grace,
            "submitted_at": time.time()})
        # Started by the dispatcher thread, not here: a submission stays O(1) however long the queue.
        self._kick.set()
        self._ensure_ticker()
        return backend_id

    def statuses(self, jobs: Iterable[JobRef]) -> dict[str, BackendStatus]:
        self.dispatch()
        return {ref.backend_id: self._status(ref.backend_id) for ref in jobs}

    def cancel(self, ref: JobRef) -> None:
        folder = self._folder(ref.backend_id)
        if folder is None or not folder.is_dir():
            return
        (folder / "cancel").touch()
        state = _read_json(folder / "state.json")
        if state and "ended_at" not in state and state.get("pgid"):
            try:
                os.killpg(int(state["pgid"]), signal.SIGTERM)  # the supervisor escalates to SIGKILL
            except (ProcessLookupError, PermissionError):
                pass

    def availability(self) -> list[QueueInfo]:
        folders = self._folders()
        running = sum(1 for folder in folders if self._running(folder))
        return [QueueInfo("local", used=running, free=max(self.workers - running, 0), total=self.workers, nodes=1,
                          free_nodes=int(running == 0), gpus=0, free_gpus=0,
                          pending=sum(1 for folder in folders if self._waiting(folder)))]

    def close(self) -> None:
        self._closed.set()

    # -- the pool -------------------------------------------------------------------------------------

    def dispatch(self) -> None:
        if self._dispatch_once():
            self._ensure_ticker()

    def _dispatch_once(self) -> bool:
        """Start waiting jobs while fewer than ``workers`` run; True when some still wait. Serialised
        across processes by a lock file, so two API processes never overfill the pool."""
        with self._dispatch_lock:
            self._children = [child for child in self._children if child.poll() is None]  # reap
            with open(self.spool / ".dispatch.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                folders = self._folders()
                running = sum(1 for folder in folders if self._running(folder))
                waiting = [folder for folder in folders if self._waiting(folder)]
                for folder in waiting[: max(self.workers - running, 0)]:
                    self._start(folder)
                return len(waiting) > max(self.workers - running, 0)

    def _start(self, folder: Path) -> None:
        # The marker comes first: a job counts as running from now on, whatever happens next.
        write_json(folder / "launched.json", {"at": time.time()})
        log = open(folder / "supervisor.log", "ab")
        try:
            child = subprocess.Popen([sys.executable, "-m", "hebi_api.jobs.local_shim", str(folder)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                     close_fds=True, env=_shim_env())
        finally:
            log.close()
        self._children.append(child)
        write_json(folder / "launched.json", {"at": time.time(), "pid": child.pid,
                                              "ticks": process_start_ticks(child.pid)})

    def _ensure_ticker(self) -> None:
        """While jobs wait, look for free slots twice a second (at once when kicked), even when nobody polls."""
        with self._lock:
            if self._ticker is not None:
                return
            self._ticker = threading.Thread(target=self._tick, name="local-jobs-dispatch", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        idle_rounds = 0
        while not self._closed.is_set():
            self._kick.wait(0.5)
            self._kick.clear()
            try:
                waiting = self._dispatch_once()
            except OSError:
                waiting = True
            idle_rounds = 0 if waiting else idle_rounds + 1
            if idle_rounds >= 4:  # nothing waited for 2 s: stop until the next submission
                with self._lock:
                    if self._kick.is_set():
                        idle_rounds = 0
                        continue
                    self._ticker = None
                    return
        with self._lock:
            self._ticker = None

    def _folders(self) -> list[Path]:
        try:
            return sorted(entry for entry in self.spool.iterdir() if entry.is_dir())
        except FileNotFoundError:
            return []

    def _waiting(self, folder: Path) -> bool:
        if (folder / "cancel").exists() or (folder / "state.json").exists():
            return False
        launched = _read_json(folder / "launched.json")
        if launched is None:
            return True
        # A launch cut short before the supervisor started (the API died in between): launch it again.
        return not launched.get("pid") and time.time() - float(launched.get("at", 0)) > LAUNCH_GRACE

    def _running(self, folder: Path) -> bool:
        if not (folder / "launched.json").exists():
            return False
        state = _read_json(folder / "state.json")
        if state is None:
            return self._supervisor_alive(folder, None)
        return "ended_at" not in state and self._supervisor_alive(folder, state)

    def _supervisor_alive(self, folder: Path, state: dict | None) -> bool:
        launched = _read_json(folder / "launched.json") or {}
        pid = (state or {}).get("shim_pid") or launched.get("pid")
        ticks = (state or {}).get("shim_ticks") or launched.get("ticks")
        if not pid:
            # launched.json written, process not yet started: give it a moment (then it is relaunched)
            return time.time() - float(launched.get("at", 0)) <= LAUNCH_GRACE
        current = process_start_ticks(int(pid))
        if current is None:
            return False
        if ticks and current != ticks:
            return False  # the pid now belongs to another process
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            return stat.rpartition(")")[2].split()[0] != "Z"
        except OSError:
            return False

    def _folder(self, backend_id: str) -> Path | None:
        """The spool folder of a job; None for an id that is not a plain name (the id comes from the
        registry, which is not trusted to keep a job inside the spool)."""
        if not backend_id or "/" in backend_id or backend_id.startswith("."):
            return None
        return self.spool / backend_id

    def _status(self, backend_id: str) -> BackendStatus:
        folder = self._folder(backend_id)
        if folder is None or not (folder / "spec.json").exists():
            return BackendStatus(MISSING)
        state = _read_json(folder / "state.json")
        if state and "ended_at" in state:
            end = JobEnd(reason=JobState(state.get("reason", JobState.FAILED)), exit_code=state.get("exit_code"),
                         signal=state.get("signal"), wall_time=state.get("wall_time"),
                         message=state.get("message", ""))
            return BackendStatus(ENDED, started_at=state.get("started_at"), end=end)
        if state is None and (folder / "cancel").exists():
            return BackendStatus(ENDED, end=JobEnd(JobState.CANCELLED, message="cancelled before it started"))
        if self._waiting(folder):
            return BackendStatus(QUEUED)
        if self._supervisor_alive(folder, state):
            return BackendStatus(RUNNING, started_at=(state or {}).get("started_at"))
        state = _read_json(folder / "state.json")  # it may have ended between the two reads
        if state and "ended_at" in state:
            return self._status(backend_id)
        return BackendStatus(ENDED, started_at=(state or {}).get("started_at"), end=JobEnd(
            JobState.LOST, message="the job's supervisor process ended without recording how the job ended "
                            "(was the machine restarted?)"))


def _shim_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "HOME")}
    return env


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
