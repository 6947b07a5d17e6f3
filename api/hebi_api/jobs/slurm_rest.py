"""The Slurm backend through slurmrestd, Slurm's REST API (tested on Slurm 22.05, API v0.0.38), for a pod
that is no submit host: it needs only HTTP to slurmrestd and the shared file system for the logs.

- authentication: a JWT (``scontrol token``) read from a file and re-read whenever the file changes, so
  a renewed token is used at once. ``X-SLURM-USER-NAME`` is the session's user: with the user's own token
  that is the token's owner; with a service token (one of SlurmUser's or root's) slurmrestd maps it.
- submit: ``POST job/submit`` with a fixed launcher script. The argument list travels in the job's
  environment (``HEBI_ARGC``, ``HEBI_ARG_0``...), which the script turns back into ``"$@"``, so no shell
  ever parses user text. (The API's own ``argv`` field would do it, but slurmrestd 22.05 crashes after
  submitting a job that has one.)
- state: ONE ``GET jobs`` (every job the controller still holds, MinJobAge after their end) with the
  raw wait status as exit code; jobs it no longer holds are looked up in ONE ``GET slurmdb/jobs``, whose
  22.05 exit codes are wrong (0 for failed jobs), so from there a failure has no exit code.
- states are those of the command-line Slurm backend (slurm.py): one vocabulary for both.
"""
from __future__ import annotations

import base64
import binascii
import getpass
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from .backend import (
    ENDED,
    MISSING,
    QUEUED,
    RUNNING,
    BackendStatus,
    ClusterUnavailable,
    JobRef,
    JobSpec,
    QueueInfo,
    SubmitRejected,
)
from .slurm import PENDING_STATES, REASON_BY_STATE, RUNNING_STATES, job_end, pending_reason

#: Rebuilds the argument list from the environment and runs it: bash's ${!name} reads a variable by
#: name without evaluating its value, and the variables are unset so the command does not inherit them.
LAUNCHER = """#!/bin/bash
# hebi: run the job's argument list (HEBI_ARGC, HEBI_ARG_0...) as given, without a shell parsing it
args=()
for ((i = 0; i < HEBI_ARGC; i++)); do name=HEBI_ARG_$i; args+=("${!name}"); unset "$name"; done
unset HEBI_ARGC name i
exec "${args[@]}"
"""
# Slurm's error numbers (slurm_errno.h) that mean the controller was never reached...
UNREACHABLE_ERRORS = {1001, 1002, 1003, 1004, 1800, 1801, 1802, 1803, 1804, 5004}
# ...or that it refused the token: slurmctld drops the connection of a request it cannot authenticate,
# which slurmrestd reports as "Zero Bytes were transmitted or received" (5005).
AUTH_ERRORS = {1007, 5005, *range(6000, 6010)}
INVALID_JOB_ID = 2017
NO_VALUE = {None, 0, -1, 0xFFFFFFFF, 0xFFFFFFFE}  # how the API says "unset" or "infinite"


class SlurmRestBackend:
    name = "slurmrest"

    @classmethod
    def from_config(cls, jobs, state_dir: Path) -> SlurmRestBackend:
        return cls(jobs.slurmrest)

    def __init__(self, config):
        if not config.url:
            raise ClusterUnavailable("jobs.slurmrest.url is not set (slurmrestd's address)")
        self.config = config
        self.user = config.user_name or getpass.getuser()
        self.base = config.url.rstrip("/")
        self.version = config.api_version
        self.token_path = Path(os.path.expanduser(config.token_file)) if config.token_file else None
        self.http = requests.Session()  # one pool of kept-alive connections for every request
        self._token_lock = threading.Lock()
        self._token: tuple[Any, str, float | None] | None = None  # (file identity, token, its expiry)

    # -- the token --------------------------------------------------------------------------------------

    def _where(self) -> str:
        return str(self.token_path) if self.token_path else "the SLURM_JWT environment variable"

    def token(self) -> str:
        """The current token: read again whenever its file changed (a renewal replaces the file)."""
        with self._token_lock:
            try:
                if self.token_path is None:
                    identity = text = os.environ.get("SLURM_JWT", "")
                else:
                    stat = self.token_path.stat()
                    identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                    if self._token is None or self._token[0] != identity:
                        text = self.token_path.read_text()
            except OSError as error:
                raise ClusterUnavailable(f"no Slurm token: cannot read {self.token_path} "
                                         f"({error.strerror or error})") from None
            if self._token is None or self._token[0] != identity:
                token = text.strip().removeprefix("SLURM_JWT=")
                self._token = (identity, token, _expiry(token))
            _, token, expires = self._token
        if not token:
            raise ClusterUnavailable(f"no Slurm token: {self._where()} is empty")
        if expires is None and token.count(".") != 2:
            raise ClusterUnavailable(f"the Slurm token in {self._where()} is not a JWT (scontrol token makes one)")
        if expires is not None and expires <= time.time():
            when = datetime.fromtimestamp(expires).isoformat(sep=" ", timespec="seconds")
            raise ClusterUnavailable(f"the Slurm token in {self._where()} expired at {when}: put a renewed one "
                                     "there (scontrol token) and it is used at once")
        return token

    # -- HTTP -------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, what: str, **kwargs) -> dict:
        """One call to slurmrestd: its JSON answer, or ClusterUnavailable naming what failed and why."""
        headers = {"X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": self.token()}
        try:
            answer = self.http.request(method, self.base + path, headers=headers,
                                       timeout=(self.config.connect_timeout, self.config.timeout), **kwargs)
        except requests.Timeout:
            raise ClusterUnavailable(f"slurmrestd at {self.base} did not answer within "
                                     f"{self.config.timeout:.0f} s") from None
        except requests.ConnectionError as error:
            raise ClusterUnavailable(f"slurmrestd at {self.base} cannot be reached ({_connection_reason(error)})") from None
        if answer.status_code in (401, 403):
            raise ClusterUnavailable(f"slurmrestd did not accept the Slurm token in {self._where()} for user "
                                     f"{self.user} (HTTP {answer.status_code}): it is expired or not valid here")
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ClusterUnavailable(f"slurmrestd at {self.base} gave no JSON to {what} (HTTP {answer.status_code})")
        body["_status"] = answer.status_code
        return body

    def _failure(self, body: dict, what: str) -> ClusterUnavailable:
        """Why a call that answered with errors failed: the controller unreachable, the token refused, or
        (asked of the controller with a harmless probe when the error says nothing) one of the two."""
        number, message = _first_error(body)
        if number in AUTH_ERRORS:
            return self._refused()
        if number in UNREACHABLE_ERRORS:
            return _unreachable(body)
        # slurmrestd 22.05 answers "Unspecified error" both when slurmctld is down and when it refused the
        # token. Cancelling job 0 (which never exists) tells them apart without touching any job.
        probe = self._request("DELETE", f"/slurm/{self.version}/job/0", what="probe Slurm")
        probe_number, _ = _first_error(probe)
        if probe_number in AUTH_ERRORS:
            return self._refused()
        if probe_number in UNREACHABLE_ERRORS:
            return _unreachable(probe)
        return ClusterUnavailable(f"Slurm could not {what}: {message}")

    def _refused(self) -> ClusterUnavailable:
        # Slurm says no more than that the connection was dropped; the token is the one thing it checks.
        return ClusterUnavailable(f"Slurm did not accept the token in {self._where()} for user {self.user}: "
                                  "it is not valid for this cluster, or not this user's")

    def _get(self, path: str, what: str, **params) -> dict:
        body = self._request("GET", path, what=what, params=params or None)
        if body.get("errors") or body["_status"] >= 400:
            raise self._failure(body, what)
        return body

    # -- interface --------------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        env = dict(spec.env)
        env["HEBI_ARGC"] = str(len(spec.command))
        env.update({f"HEBI_ARG_{index}": argument for index, argument in enumerate(spec.command)})
        job: dict[str, Any] = {
            **self.config.job_properties,
            "name": spec.name, "partition": spec.queue, "time_limit": max(1, math.ceil(spec.time_limit / 60)),
            "current_working_directory": str(spec.workdir), "standard_output": str(spec.stdout),
            "standard_error": str(spec.stderr), "cpus_per_task": spec.cores, "environment": env,
        }
        if spec.memory_mb:
            job["memory_per_node"] = spec.memory_mb
        body = self._request("POST", f"/slurm/{self.version}/job/submit", what="submit the job",
                             json={"script": LAUNCHER, "job": job})
        number, message = _first_error(body)
        if body.get("job_id") and not body.get("errors"):
            return str(body["job_id"])
        if number in AUTH_ERRORS or number in UNREACHABLE_ERRORS or number is None:
            raise self._failure(body, "submit the job")
        raise SubmitRejected(f"Slurm refused the job: {message}")

    def statuses(self, jobs: Iterable[JobRef]) -> dict[str, BackendStatus]:
        jobs = list(jobs)
        if not jobs:
            return {}
        listed = {}
        for entry in self._get(f"/slurm/{self.version}/jobs", "list the jobs").get("jobs", []):
            if entry.get("user_name") == self.user:
                listed[str(entry.get("job_id"))] = entry
        result: dict[str, BackendStatus] = {}
        gone: list[JobRef] = []
        for ref in jobs:
            entry = listed.get(ref.backend_id)
            if entry is None or entry.get("name") != ref.name:
                gone.append(ref)  # ended long ago, or an older job with the same id
                continue
            state = _state(entry.get("job_state"))
            if state in PENDING_STATES:
                result[ref.backend_id] = BackendStatus(QUEUED, message=pending_reason(entry.get("state_reason") or ""))
            elif state in RUNNING_STATES:
                result[ref.backend_id] = BackendStatus(RUNNING, started_at=_epoch(entry.get("start_time")))
            elif state in REASON_BY_STATE:
                start, end = _epoch(entry.get("start_time")), _epoch(entry.get("end_time"))
                status = entry.get("exit_code")
                record = {"state": state, "start": start,
                          "exit": status >> 8 & 0xFF if isinstance(status, int) else None,
                          "signal": status & 0x7F if isinstance(status, int) else 0,
                          "elapsed": max(end - start, 0.0) if start is not None and end is not None else None}
                result[ref.backend_id] = BackendStatus(ENDED, started_at=start, end=job_end(record))
            else:
                gone.append(ref)
        if gone:
            accounted = self._accounting(gone)
            for ref in gone:
                record = accounted.get(ref.backend_id)
                if record is None:
                    result[ref.backend_id] = BackendStatus(MISSING)
                elif record["state"] in REASON_BY_STATE:
                    result[ref.backend_id] = BackendStatus(ENDED, started_at=record["start"], end=job_end(record))
                elif record["state"] in RUNNING_STATES:
                    result[ref.backend_id] = BackendStatus(RUNNING, started_at=record["start"])
                elif record["state"] in PENDING_STATES:
                    result[ref.backend_id] = BackendStatus(QUEUED)
                else:
                    result[ref.backend_id] = BackendStatus(MISSING)
        return result

    def _accounting(self, refs: list[JobRef]) -> dict[str, dict]:
        """slurmdbd's records of jobs the controller no longer holds (empty without accounting)."""
        since = datetime.fromtimestamp(min(ref.submitted_at for ref in refs) - 60).strftime("%Y-%m-%dT%H:%M:%S")
        try:
            body = self._get(f"/slurmdb/{self.version}/jobs", "read Slurm's accounting",
                             step=",".join(ref.backend_id for ref in refs), submit_time=since, skip_steps="true")
        except ClusterUnavailable:
            return {}  # no slurmdbd: the controller's view is all there is, and such jobs become lost
        wanted = {ref.backend_id: ref for ref in refs}
        records = {}
        for job in body.get("jobs", []):
            ref = wanted.get(str(job.get("job_id")))
            times = job.get("time") or {}
            submitted = _epoch(times.get("submission"))
            if ref is None or job.get("name") != ref.name or (submitted is not None and submitted < ref.submitted_at - 120):
                continue  # another job with the same id (ids restart when Slurm's state is reset)
            state = _state((job.get("state") or {}).get("current"))
            code = (job.get("exit_code") or {}).get("return_code")
            # 22.05 reports return code 0 for jobs that failed: only a non-zero code or a success is believed.
            exit_code = code if isinstance(code, int) and (code != 0 or state == "COMPLETED") else None
            records[ref.backend_id] = {"state": state, "exit": exit_code, "signal": 0,
                                       "elapsed": float(times.get("elapsed") or 0), "start": _epoch(times.get("start"))}
        return records

    def cancel(self, ref: JobRef) -> None:
        body = self._request("DELETE", f"/slurm/{self.version}/job/{ref.backend_id}", what="cancel the job")
        number, message = _first_error(body)
        if not body.get("errors") and body["_status"] < 400:
            return
        if number == INVALID_JOB_ID or "already completed" in message:
            return  # ended, and the controller forgot it: nothing left to cancel
        raise self._failure(body, "cancel the job")

    def availability(self) -> list[QueueInfo]:
        partitions = self._get(f"/slurm/{self.version}/partitions", "list the partitions").get("partitions", [])
        nodes = self._get(f"/slurm/{self.version}/nodes", "list the nodes").get("nodes", [])
        jobs = self._get(f"/slurm/{self.version}/jobs", "list the jobs").get("jobs", [])
        pending: dict[str, int] = {}
        for job in jobs:
            if _state(job.get("job_state")) == "PENDING":
                for name in str(job.get("partition") or "").split(","):
                    pending[name] = pending.get(name, 0) + 1
        queues = []
        for partition in partitions:
            name = partition.get("name", "")
            members = [node for node in nodes if name in (node.get("partitions") or [])]
            usable = [node for node in members if _usable(node)]
            total_gpus = sum(_gpus(node.get("gres")) for node in members)
            used_gpus = sum(_gpus(node.get("gres_used")) for node in usable)
            limit = partition.get("max_time_limit")
            queues.append(QueueInfo(
                name, used=sum(int(node.get("alloc_cpus") or 0) for node in members),
                free=sum(int(node.get("idle_cpus") or 0) for node in usable),
                total=int(partition.get("total_cpus") or sum(int(node.get("cpus") or 0) for node in members)),
                available=str(partition.get("state", "")).upper() == "UP",
                time_limit=None if limit in NO_VALUE else int(limit) * 60,
                nodes=len(members), free_nodes=sum(1 for node in usable if _state(node.get("state")) == "IDLE"),
                gpus=total_gpus, free_gpus=max(sum(_gpus(node.get("gres")) for node in usable) - used_gpus, 0),
                pending=pending.get(name, 0)))
        return queues

    def close(self) -> None:
        self.http.close()


def _expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read, not verified: Slurm verifies it), or None when it has none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None


def _first_error(body: dict) -> tuple[int | None, str]:
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            number = error.get("error_number", error.get("error_code", error.get("errno")))
            text = error.get("description") or error.get("error") or "unspecified error"
            if error.get("error") and error.get("error") not in text:
                text = f"{text}: {error['error']}"
            return (number if isinstance(number, int) else None), str(text)[:300]
    return None, f"HTTP {body.get('_status')}"


def _unreachable(body: dict) -> ClusterUnavailable:
    reason = next((error.get("error") for error in body.get("errors") or [] if isinstance(error, dict)), "")
    return ClusterUnavailable(f"Slurm does not answer: slurmrestd cannot reach slurmctld ({reason})")


def _connection_reason(error: requests.ConnectionError) -> str:
    text = str(error)
    for reason in ("Connection refused", "Name or service not known", "No route to host", "Connection reset"):
        if reason in text:
            return reason.lower()
    return text[-200:]


def _state(value) -> str:
    text = value[0] if isinstance(value, list) and value else value
    return str(text or "").split()[0].rstrip("+").upper() if text else ""


def _epoch(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value not in NO_VALUE else None


def _usable(node: dict) -> bool:
    """A node that can take jobs: up, and neither drained nor draining nor down."""
    flags = {str(flag).upper() for flag in node.get("state_flags") or []}
    return (_state(node.get("state")) in ("IDLE", "MIXED", "ALLOCATED")
            and not flags & {"DRAIN", "DRAINING", "DRAINED", "DOWN", "FAIL", "MAINTENANCE", "NOT_RESPONDING"})


def _gpus(gres) -> int:
    """GPUs in a gres string such as ``gpu:2``, ``gpu:a100:4(S:0-1),mps:100`` or ``gpu:1(IDX:0)``."""
    count = 0
    for item in re.sub(r"\([^)]*\)", "", str(gres or "")).split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu" and len(parts) >= 2 and parts[-1].isdigit():
            count += int(parts[-1])
    return count
