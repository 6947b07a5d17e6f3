"""A job's states: one vocabulary for the registry, the service, the backends and the routes.

A ``StrEnum``, so a state is stored in SQLite, written to a local job's ``state.json`` and sent as JSON
as its plain name. Imports only the standard library (``local_shim`` uses it and must start fast).
"""
from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    SUBMITTING = "submitting"  # recorded, not yet accepted by the scheduler
    QUEUED = "queued"
    RUNNING = "running"
    UNKNOWN = "unknown"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"  # killed at its time limit
    LOST = "lost"  # neither the scheduler nor its accounting knows how it ended

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


ACTIVE_STATES = (JobState.SUBMITTING, JobState.QUEUED, JobState.RUNNING, JobState.UNKNOWN)
#: How a job can end: the reasons a backend's JobEnd gives.
FINAL_STATES = (JobState.FINISHED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT, JobState.LOST)
