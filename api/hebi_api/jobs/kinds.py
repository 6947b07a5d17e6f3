"""Job kinds: what a job runs. Every kind shares the registry, the backends, the event stream, logs,
cancel and outputs; a kind only says how a submission is checked, what command the scheduler is given,
and how progress and a failure's reason are read back.

- ``savu``: a process list on a dataset (jobs/savu.py).
- ``code``: the user's own Python project, Octave script or notebook (jobs/code.py), allowed only where
  the session is isolated as the user (docs/jobs.md, "Job kinds").
"""
from __future__ import annotations

from typing import Any, Protocol

from .backend import JobSpec
from .requests import JobRequestError


class JobKind(Protocol):
    name: str

    def parse(self, body: dict, context, jobs_config, catalogue=None) -> Any:
        """A request (with ``kind``, ``mode``, ``queue`` and the resources) or a JobRequestError;
        ``context`` is the session's (its roots, whether it is isolated as the user)."""

    def prepare(self, service, request: Any, job_id: str, now: float) -> tuple[dict[str, Any], JobSpec]:
        """The registry record and what the scheduler is given; makes the job folder."""

    def progress(self, service, job: dict) -> tuple[float | None, str]:
        """(percent or None, a line of text) for a running or ended job."""

    def failure_reason(self, service, job: dict) -> str:
        """A sentence for a failed job whose scheduler said nothing."""


def _kinds() -> dict[str, JobKind]:
    from .code import CodeKind
    from .savu import SavuKind
    return {"savu": SavuKind(), "code": CodeKind()}


_KINDS: dict[str, JobKind] = {}


def kind(name: str) -> JobKind:
    if not _KINDS:
        _KINDS.update(_kinds())
    if name not in _KINDS:
        raise JobRequestError(f"unknown job kind {name!r} ({', '.join(sorted(_KINDS))})")
    return _KINDS[name]


def parse_request(body: Any, context, jobs_config, catalogue=None) -> Any:
    """A submission of any kind (``"kind"``, default ``savu``), checked by that kind."""
    if not isinstance(body, dict):
        raise JobRequestError('send a JSON object: {"kind", "mode", "output", "resources", ...}')
    name = body.get("kind", "savu")
    if not isinstance(name, str):
        raise JobRequestError("'kind' must be text: savu or code")
    return kind(name).parse({key: value for key, value in body.items() if key != "kind"}, context, jobs_config,
                            catalogue)
