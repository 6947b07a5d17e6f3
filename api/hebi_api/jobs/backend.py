"""The cluster backend interface: the few things hebi asks of a scheduler, and the values they return.

A backend submits a command (an argument list, never a shell string), reports the state of many jobs
in ONE scheduler query, cancels, and tells which queues have free slots. A job's end is told in one
vocabulary whatever the scheduler: finished, failed, cancelled, timeout (killed at its time limit) or
lost (the scheduler no longer knows it and has no record of how it ended).
"""
from __future__ import annotations

import importlib
import signal as _signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hebi_common.errors import UserError

from .states import JobState

QUEUED, RUNNING, ENDED, MISSING = "queued", "running", "ended", "missing"


class ClusterUnavailable(UserError):
    """The scheduler cannot be reached: answered with 503 "cluster unavailable: <reason>"."""

    def __init__(self, reason: str):
        super().__init__(f"cluster unavailable: {reason}", 503)
        self.reason = reason  # what the job list and /api/cluster show, without the prefix


class SubmitRejected(UserError):
    """The scheduler refused the job as asked (answered with 400); the message says why."""


@dataclass(frozen=True)
class JobSpec:
    command: list[str]
    workdir: Path
    name: str
    stdout: Path
    stderr: Path
    env: dict[str, str] = field(default_factory=dict)
    queue: str = ""
    time_limit: int = 3600  # seconds
    cores: int = 1
    memory_mb: int = 0  # 0 = no request


@dataclass(frozen=True)
class JobEnd:
    reason: JobState  # one of FINAL_STATES
    exit_code: int | None = None
    signal: str | None = None  # e.g. "SIGKILL"
    wall_time: float | None = None  # seconds
    message: str = ""


@dataclass(frozen=True)
class JobRef:
    """What a backend needs to find one of its jobs again (also after a restart)."""

    backend_id: str
    name: str
    submitted_at: float
    cancel_requested: bool = False


@dataclass(frozen=True)
class BackendStatus:
    state: str  # QUEUED, RUNNING, ENDED or MISSING (neither the scheduler nor its accounting knows it)
    started_at: float | None = None
    end: JobEnd | None = None
    message: str = ""


@dataclass(frozen=True)
class QueueInfo:
    name: str
    used: int
    free: int
    total: int
    available: bool = True
    time_limit: int | None = None  # seconds; None = unlimited
    nodes: int | None = None  # nodes (hosts) serving the queue; None = the scheduler does not say
    free_nodes: int | None = None  # of which idle (running no job)
    gpus: int | None = None  # GPUs on those nodes; None = unknown, 0 = none
    free_gpus: int | None = None
    pending: int | None = None  # jobs waiting in the queue (everyone's, as the scheduler tells it)

    def to_json(self) -> dict:
        return {"name": self.name, "used": self.used, "free": self.free, "total": self.total,
                "available": self.available, "time_limit": self.time_limit, "nodes": self.nodes,
                "free_nodes": self.free_nodes, "gpus": self.gpus, "free_gpus": self.free_gpus,
                "pending": self.pending}


class ClusterBackend(Protocol):
    name: str

    def submit(self, spec: JobSpec) -> str:
        """Submit; return the scheduler's job id. ClusterUnavailable / SubmitRejected on failure."""

    def statuses(self, jobs: Iterable[JobRef]) -> dict[str, BackendStatus]:
        """The state of every job given, by backend id, from one scheduler query (plus, for jobs that
        left the queue, one accounting lookup). ClusterUnavailable when the scheduler is down."""

    def cancel(self, ref: JobRef) -> None:
        """Ask the scheduler to end the job (no error when it has already ended)."""

    def availability(self) -> list[QueueInfo]:
        """Queues (partitions) with slots used and free. ClusterUnavailable when down."""

    def close(self) -> None:
        """Release the scheduler session."""


def signal_name(number: int | None) -> str | None:
    if not number:
        return None
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def hms(seconds: int) -> str:
    seconds = max(int(seconds), 1)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


#: Each backend's class, imported only when a mode uses it (a session never loads libdrmaa or the
#: kubernetes client unless configured to). Each class has ``from_config(jobs_config, state_dir)``.
BACKENDS: dict[str, str] = {
    "local": "hebi_api.jobs.local:LocalBackend",
    "drmaa": "hebi_api.jobs.drmaa_backend:DrmaaBackend",
    "gridengine": "hebi_api.jobs.gridengine:GridEngineBackend",
    "slurm": "hebi_api.jobs.slurm:SlurmBackend",
    "slurmrest": "hebi_api.jobs.slurm_rest:SlurmRestBackend",
    "kubernetes": "hebi_api.jobs.kube_jobs:KubernetesJobsBackend",
}


def make_backend(name: str, config, state_dir: Path) -> ClusterBackend:
    """The backend configured under ``name`` (``config`` is the whole JobsConfig)."""
    try:
        module_name, _, class_name = BACKENDS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown cluster backend {name!r} ({', '.join(BACKENDS)})") from None
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class.from_config(config, state_dir)


def run_client_command(argv: list[str], clients: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one of a scheduler's client commands on this host (commands.LocalRunner); the scheduler is
    unavailable when the command is missing or hangs. Its exit code is the caller's."""
    from .commands import LocalRunner  # commands.py builds on this module's errors
    return LocalRunner(clients, timeout=timeout).run(argv)
