"""Jobs of one user's session: submit, refresh (batched polling), cancel, availability.

A poller thread asks each backend in use ONE question for all of the user's active jobs every
``poll_interval`` while any are active; requests read the registry, so a job list never waits for the
scheduler (``?refresh=1`` asks it within the request). Every answer is folded into the registry, so
a restarted API carries on from there: jobs still queued or running are simply polled again (re-attached),
jobs that ended meanwhile are resolved from the scheduler's accounting, and a job that neither the
scheduler nor its accounting knows for ``lost_after`` seconds becomes ``lost`` - never unknown forever.
When the scheduler cannot be reached, nothing changes state: the jobs keep their last known state and
the cluster is reported unavailable until it answers again.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from hebi_common.errors import UserError
from hebi_common.sandbox import SandboxError

from .backend import ENDED, MISSING, QUEUED, RUNNING, ClusterBackend, ClusterUnavailable, JobRef, JobSpec, make_backend
from .kinds import kind
from .registry import JobRegistry
from .states import ACTIVE_STATES, JobState

log = logging.getLogger("hebi.jobs")
#: Inside the output root (not the folder the user chose): a job's stdout/stderr and preview list. The
#: scheduler is handed these paths and the working directory, and GridEngine expands $JOB_ID, $HOME...
#: and Slurm %j, %u... in them, so they hold no text a user chose.
JOB_FOLDER = ".hebi"


class JobService:
    def __init__(self, config, state_dir: Path, roots, backends: dict[str, ClusterBackend] | None = None):
        self.config = config  # JobsConfig
        self.state_dir = state_dir
        self.roots = roots
        self.registry = JobRegistry(state_dir / "jobs.sqlite3")
        self._backends: dict[str, ClusterBackend] = dict(backends or {})
        self._backend_lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._last_poll = 0.0
        self._polled_at: float | None = None
        self._poller: threading.Thread | None = None
        self._poller_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._availability: dict[str, tuple[float, Any]] = {}  # backend -> (asked at, queues or error)
        self._availability_lock = threading.Lock()
        #: backend name -> reason it could not be reached at the last poll (absent = reachable)
        self.unavailable: dict[str, str] = {}
        self.changed = threading.Condition()

    # -- files of a job -------------------------------------------------------------------------------

    def job_file(self, path: str | Path, what: str) -> Path:
        """A path the registry holds for a job (run folder, logs), resolved inside the user's roots.

        The registry is a file in the user's own storage, so nothing read from it is trusted: a row
        edited to point at /etc or at another user's folder, or a log replaced by a symlink leading
        out, is refused (403) instead of opened."""
        if not path:
            raise SandboxError(f"this job has no {what}", 404)
        try:
            return self.roots.resolve_ref(self.roots.to_ref(Path(path)))[1]
        except SandboxError:
            raise SandboxError(f"the job's {what} is not in your folders", 403) from None

    def _failure_reason(self, job: dict) -> str:
        return kind(job["kind"]).failure_reason(self, job)

    def _progress(self, job: dict) -> tuple[float | None, str]:
        return kind(job["kind"]).progress(self, job)

    # -- backends -------------------------------------------------------------------------------------

    def backend_for(self, mode: str) -> ClusterBackend:
        return self.backend(getattr(self.config, mode).backend)

    def backend(self, name: str) -> ClusterBackend:
        with self._backend_lock:
            if name not in self._backends:
                self._backends[name] = make_backend(name, self.config, self.state_dir)
            return self._backends[name]

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        for backend in self._backends.values():
            backend.close()

    # -- submit ---------------------------------------------------------------------------------------

    def submit(self, request) -> dict[str, Any]:
        return self.submit_many([request])[0]

    def submit_many(self, requests: list) -> list[dict[str, Any]]:
        """Submit jobs in order; the jobs as recorded. All are recorded (state ``submitting``, one
        transaction) before the scheduler hears of the first, so an API killed at any moment leaves a
        record to resolve. When the scheduler refuses or fails at one, the jobs before it stay submitted,
        that one and the rest are removed, and the error names how many went (``submitted``: their ids)."""
        now = time.time()
        ids: set[str] = set()
        while len(ids) < len(requests):  # 24 random bits a second: a sweep of 1000 would clash 3 % of the time
            job_id = _new_id()
            if job_id not in ids and self.registry.get(job_id) is None:
                ids.add(job_id)
        prepared: list[tuple[dict[str, Any], JobSpec]] = []
        try:
            for request, job_id in zip(requests, sorted(ids)):
                prepared.append(self._prepare(request, job_id, now))
        except BaseException:
            for record, _ in prepared:
                _discard(record)
            raise
        self.registry.add_many([record for record, _ in prepared])
        submitted: list[tuple[str, dict[str, Any]]] = []
        written, flushed_at = 0, time.monotonic()
        try:
            for record, spec in prepared:
                backend_id = self.backend(record["backend"]).submit(spec)
                submitted.append((record["id"], {"backend_id": backend_id, "state": JobState.QUEUED}))
                self.unavailable.pop(record["backend"], None)
                if time.monotonic() - flushed_at > 1:  # a long sweep shows its jobs queued as they go
                    self.registry.update_many(submitted[written:])
                    written, flushed_at = len(submitted), time.monotonic()
                    self._notify()
            self.registry.update_many(submitted[written:])
        except BaseException as error:
            self.registry.update_many(submitted[written:])
            for record, _ in prepared[len(submitted):]:
                self.registry.delete(record["id"])  # nothing was submitted: nothing to keep
                _discard(record)
            if isinstance(error, ClusterUnavailable):
                self.unavailable[prepared[len(submitted)][0]["backend"]] = error.reason
            if submitted and isinstance(error, UserError):
                error.message += f" (job {len(submitted) + 1} of {len(prepared)}; the ones before it were submitted)"
                error.extra["submitted"] = [job_id for job_id, _ in submitted]
            raise
        finally:
            if submitted:
                self._ensure_poller()
                self._notify()
        return self.registry.get_many([record["id"] for record, _ in prepared])

    def _prepare(self, request, job_id: str, now: float) -> tuple[dict[str, Any], JobSpec]:
        """The job's record and what the scheduler is given (its kind builds both); makes its job folder."""
        return kind(request.kind).prepare(self, request, job_id, now)

    def job_folder(self, output_ref: str, job_id: str) -> Path:
        """A new job's own folder: its logs and what hebi writes for it, in the output root."""
        job_dir = self.roots.resolve_ref(output_ref)[0].path / JOB_FOLDER / job_id
        job_dir.mkdir(parents=True)
        return job_dir

    def job_spec(self, request, job_id: str, job_dir: Path, command: list[str], **env: str) -> JobSpec:
        """What the scheduler is given for any kind: the command (an argument list), the logs in the job
        folder, the environment and the resources asked for."""
        return JobSpec(command=command, workdir=job_dir, name=f"hebi-{request.mode}-{job_id}",
                       stdout=job_dir / "stdout.txt", stderr=job_dir / "stderr.txt",
                       env=dict(self._job_env, HEBI_JOB_ID=job_id, HEBI_JOB_MODE=request.mode, **env),
                       queue=request.queue, time_limit=request.time_limit, cores=request.cores,
                       memory_mb=request.memory_mb)

    def job_record(self, request, job_id: str, now: float, spec: JobSpec, details: dict[str, Any],
                   **fields: Any) -> dict[str, Any]:
        """The registry row every kind starts from; ``fields`` add the kind's own columns (name, refs)
        and ``details`` its part of the recorded spec."""
        backend_name = getattr(self.config, request.mode).backend
        record = {"id": job_id, "kind": request.kind, "mode": request.mode, "backend": backend_name,
                  "queue": request.queue if backend_name != "local" else "local",
                  "state": JobState.SUBMITTING, "submitted_at": now, "job_dir": str(spec.workdir)}
        record.update(fields)
        record["spec"] = {"time_limit": request.time_limit, "cores": request.cores, "memory_mb": request.memory_mb,
                          "command": spec.command, "scheduler_name": spec.name, "stdout": str(spec.stdout),
                          "stderr": str(spec.stderr), **details}
        return record

    @property
    def _job_env(self) -> dict[str, str]:
        """What every job's environment starts from."""
        env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL") if key in os.environ}
        env.update(self.config.env)
        # The runner reads and writes only inside these (docs/runner.md, "Confinement").
        from hebi_common.confine import JOB_ROOTS_VARIABLE, job_roots_text
        env[JOB_ROOTS_VARIABLE] = job_roots_text(self.roots)
        return env

    # -- refresh --------------------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> None:
        """Keep the registry current. A poller thread asks the scheduler every ``poll_interval`` while
        there are active jobs, so a request never waits for the scheduler - except ``force`` (an explicit
        ``?refresh=1``) and the first request after a start, which answer with the scheduler's view."""
        if force or self._last_poll == 0.0:
            with self._poll_lock:
                if force or self._last_poll == 0.0:
                    self._poll()
        self._ensure_poller()

    def _ensure_poller(self) -> None:
        with self._poller_lock:
            if self._poller is None and not self._closed.is_set():
                self._poller = threading.Thread(target=self._poll_loop, name="jobs-poller", daemon=True)
                self._poller.start()

    def _poll_loop(self) -> None:
        idle_rounds = 0
        while not self._closed.is_set():
            self._wake.wait(self.config.poll_interval)
            self._wake.clear()
            try:
                with self._poll_lock:
                    active = self._poll()
            except Exception:  # noqa: BLE001 - the poller must outlive any one bad answer
                log.exception("polling the scheduler failed")
                active = 1
            idle_rounds = 0 if active else idle_rounds + 1
            if idle_rounds >= 20:  # nothing to watch: stop until the next request starts it again
                with self._poller_lock:
                    if self._wake.is_set():
                        idle_rounds = 0
                        continue
                    self._poller = None
                    return
        with self._poller_lock:
            self._poller = None

    @property
    def polled_at(self) -> float | None:
        return self._polled_at

    def _poll(self) -> int:
        """Ask each backend once about all active jobs and fold the answers in; the number active."""
        active = self.registry.active()
        by_backend: dict[str, list[dict]] = {}
        for job in active:
            by_backend.setdefault(job["backend"], []).append(job)
        now = time.time()
        updates, quiet = [], []
        for backend_name, jobs in by_backend.items():
            refs = {job["id"]: _ref(job) for job in jobs if job["backend_id"]}
            try:
                answers = self.backend(backend_name).statuses(refs.values()) if refs else {}
            except ClusterUnavailable as error:
                if self.unavailable.get(backend_name) != error.reason:
                    log.warning("%s backend unavailable: %s", backend_name, error)
                self.unavailable[backend_name] = error.reason
                continue
            self.unavailable.pop(backend_name, None)
            for job in jobs:
                if not job["backend_id"]:
                    # "submitting" with no scheduler id: the API died between recording and submitting.
                    if now - job["submitted_at"] > 60:
                        updates.append((job["id"], {"state": JobState.LOST, "ended_at": now, "message":
                                        "the API stopped while submitting this job; it never reached the scheduler"}))
                    continue
                status = answers.get(job["backend_id"])
                change, bookkeeping = self._fold(job, status, now)
                if change:
                    updates.append((job["id"], change))
                if bookkeeping:
                    quiet.append((job["id"], bookkeeping))
        if quiet:
            self.registry.touch_quietly(quiet)
        if updates:
            self.registry.update_many(updates)
            self._notify()
        self._last_poll = time.monotonic()
        self._polled_at = now
        return len(active)

    def _fold(self, job: dict, status, now: float) -> tuple[dict, dict]:
        """What changes in ``job`` given the backend's answer: (visible changes, silent bookkeeping)."""
        change: dict[str, Any] = {}
        if status is None or status.state == MISSING:
            since = job["missing_since"] or now
            if now - since >= self.config.lost_after:
                if job["cancel_requested_at"]:
                    return {"state": JobState.CANCELLED, "ended_at": now, "message": "cancelled"}, {}
                return {"state": JobState.LOST, "ended_at": now, "message":
                        f"the scheduler has no record of this job (missing for {int(now - since)} s)"}, {}
            if job["cancel_requested_at"] and job["started_at"] is None:
                # GridEngine keeps no accounting record of a job deleted while queued.
                return {"state": JobState.CANCELLED, "ended_at": now, "message": "cancelled before it started"}, {}
            return {}, ({"missing_since": now} if job["missing_since"] is None else {})
        bookkeeping = {"missing_since": None} if job["missing_since"] is not None else {}
        if status.state == QUEUED:
            if job["state"] != JobState.QUEUED or job["message"] != status.message:
                change.update(state=JobState.QUEUED, message=status.message)
        elif status.state == RUNNING:
            if job["state"] != JobState.RUNNING:
                change.update(state=JobState.RUNNING, message=status.message, started_at=status.started_at or now)
            percent, text = self._progress(job)
            if percent is not None and (percent != job["progress"] or text != job["progress_text"]):
                change.update(progress=percent, progress_text=text)
        elif status.state == ENDED:
            end = status.end
            percent, text = self._progress(job)
            reason = end.reason
            if reason == JobState.CANCELLED and not job["cancel_requested_at"]:
                reason, message = JobState.FAILED, end.message or "cancelled by the scheduler or an administrator"
            else:
                message = end.message
            if reason == JobState.FAILED and not message:
                message = self._failure_reason(job)
            started = status.started_at or job["started_at"]
            change.update(state=reason, exit_code=end.exit_code, signal=end.signal, wall_time=end.wall_time,
                          message=message, started_at=started, ended_at=now if not job["ended_at"] else job["ended_at"],
                          progress=100.0 if reason == JobState.FINISHED else percent, progress_text=text)
            if end.wall_time is not None and started:
                change["ended_at"] = started + end.wall_time
        return change, bookkeeping

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    # -- cancel ---------------------------------------------------------------------------------------

    def cancel(self, job: dict) -> dict:
        if job["state"] not in ACTIVE_STATES:
            return job
        # Under the poll lock: a poll in progress has read the job without the request and would take
        # the end it then sees for someone else's doing.
        with self._poll_lock:
            self.registry.update(job["id"], cancel_requested_at=time.time())
            job = self.registry.get(job["id"])
            if job["backend_id"]:
                self.backend(job["backend"]).cancel(_ref(job))
        self._ensure_poller()  # the poller sees the end within poll_interval
        self._notify()
        return self.registry.get(job["id"])

    # -- availability ---------------------------------------------------------------------------------

    def availability(self) -> list[dict]:
        result = []
        for mode in ("preview", "full"):
            mode_config = getattr(self.config, mode)
            entry = {"mode": mode, "backend": mode_config.backend, "queue": mode_config.queue,
                     "time_limit": mode_config.time_limit, "max_time_limit": mode_config.max_time_limit,
                     "max_cores": mode_config.max_cores, "max_memory_mb": mode_config.max_memory_mb}
            try:
                queues = self._queues(mode_config.backend)
                wanted = [queue for queue in queues if queue.name == mode_config.queue] or (
                    queues if mode_config.backend == "local" else [])
                entry["available"] = bool(wanted) and all(queue.available for queue in wanted)
                entry["queues"] = [queue.to_json() for queue in wanted]
                if not wanted:
                    entry["reason"] = f"the scheduler has no queue {mode_config.queue!r}"
                self.unavailable.pop(mode_config.backend, None)
            except ClusterUnavailable as error:
                entry.update(available=False, queues=[], reason=error.reason)
                self.unavailable[mode_config.backend] = error.reason
            result.append(entry)
        return result


    def _queues(self, backend_name: str) -> list:
        """The backend's queues, asked at most once per ``poll_interval`` (as job states are): a Jobs
        area open in many tabs costs the scheduler one question, not one per tab."""
        with self._availability_lock:
            asked_at, answer = self._availability.get(backend_name, (-1e9, None))
            if time.monotonic() - asked_at > self.config.poll_interval:
                try:
                    answer = self.backend(backend_name).availability()
                except ClusterUnavailable as error:
                    answer = error
                self._availability[backend_name] = (time.monotonic(), answer)
        if isinstance(answer, ClusterUnavailable):
            raise answer
        return answer


def _ref(job: dict) -> JobRef:
    return JobRef(backend_id=job["backend_id"], name=job["spec"].get("scheduler_name", ""),
                  submitted_at=job["submitted_at"], cancel_requested=bool(job["cancel_requested_at"]))


def _new_id() -> str:
    # Sorts by time, short enough to read out: 8 hex digits of seconds + 6 random (the registry's
    # primary key refuses the rare clash, and submit draws again).
    return f"{int(time.time()):08x}{secrets.token_hex(3)}"


def _discard(record: dict) -> None:
    """Remove what preparing a job made (its job folder; a code job's copy of the project), for a job
    that never reached the scheduler."""
    import shutil
    for path in (record["job_dir"], *record["spec"].get("made", ())):
        shutil.rmtree(path, ignore_errors=True)
