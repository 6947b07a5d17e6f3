"""The Slurm backend, through Slurm's own commands (tested on Slurm 22.05 with slurmdbd).

- submit: ``sbatch --parsable`` with a two-line launcher script (``exec "$@"``) and the job's argument
  list after it, so no shell ever parses user text; the environment is sbatch's own (``--export=ALL``).
- state: ONE ``squeue -u USER -t all`` for all of the user's jobs; jobs that ended (or left squeue after
  MinJobAge) are looked up in ONE ``sacct -j id,id,...`` for their exit code and wall time. ``sacct -P``
  text is used, not ``--json``: 22.05's JSON reports exit code 0 for failed jobs.
- Slurm time limits have one-minute granularity: a limit is rounded up to whole minutes.
- The commands run here or on a submit host over SSH (commands.py). Over SSH the launcher is written
  to the job's folder, the one folder the submit host must see anyway (the job starts there).
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from hebi_common.atomic import atomic_write

from .backend import (
    ENDED,
    MISSING,
    QUEUED,
    RUNNING,
    BackendStatus,
    ClusterUnavailable,
    JobEnd,
    JobRef,
    JobSpec,
    QueueInfo,
    SubmitRejected,
    signal_name,
)
from .commands import LocalRunner, SshRunner, make_runner
from .states import JobState

CLIENTS = "Slurm's client commands"

LAUNCHER = '#!/bin/sh\n# hebi: run the job\'s argument list as given, without a shell parsing it\nexec "$@"\n'
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED",
                  "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}
RUNNING_STATES = {"RUNNING", "COMPLETING"}
REASON_BY_STATE = {"COMPLETED": JobState.FINISHED, "FAILED": JobState.FAILED, "TIMEOUT": JobState.TIMEOUT,
                   "CANCELLED": JobState.CANCELLED, "DEADLINE": JobState.TIMEOUT,
                   **dict.fromkeys(("OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "PREEMPTED", "REVOKED", "SPECIAL_EXIT",
                                    "LAUNCH_FAILED"), JobState.FAILED)}
MESSAGES = {"OUT_OF_MEMORY": "killed: it used more memory than it asked for",
            "NODE_FAIL": "its node failed", "BOOT_FAIL": "its node failed to boot",
            "TIMEOUT": "killed at its time limit", "DEADLINE": "killed at its deadline",
            "PREEMPTED": "preempted by another job"}


class SlurmBackend:
    name = "slurm"

    @classmethod
    def from_config(cls, jobs, state_dir: Path) -> SlurmBackend:
        return cls(jobs.slurm, state_dir, make_runner(jobs, state_dir, CLIENTS, keep=("SLURM_CONF", "MUNGE")))

    def __init__(self, config, state_dir: Path, runner=None):
        self.config = config
        # sbatch's environment is the job's: of this process's, only Slurm's and munge's settings.
        self.runner = runner or LocalRunner(CLIENTS, keep=("SLURM_CONF", "MUNGE"))
        self.user = self.runner.user
        self.launcher = state_dir / "slurm-launcher.sh"
        self._lock = threading.Lock()

    def _cmd(self, name: str) -> str:
        return os.path.join(self.config.bin_dir, name) if self.config.bin_dir else name

    def _ensure_launcher(self, spec: JobSpec) -> Path:
        launcher = spec.workdir / "hebi-launcher.sh" if isinstance(self.runner, SshRunner) else self.launcher
        if not launcher.exists() or launcher.read_text() != LAUNCHER:
            launcher.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(launcher, 0o755, text=True) as out:
                out.write(LAUNCHER)
        return launcher

    # -- interface ------------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        launcher = self._ensure_launcher(spec)
        argv = [self._cmd("sbatch"), "--parsable", "--job-name", spec.name, "--partition", spec.queue,
                "--time", str(max(1, math.ceil(spec.time_limit / 60))), "--chdir", str(spec.workdir),
                "--output", str(spec.stdout), "--error", str(spec.stderr), "--cpus-per-task", str(spec.cores),
                "--export", "ALL", *self.config.sbatch_args]
        if spec.memory_mb:
            argv += ["--mem", f"{spec.memory_mb}M"]
        argv += [str(launcher), *spec.command]
        done = self.runner.run(argv, env=dict(spec.env))
        if done.returncode != 0:
            message = _clean(done.stderr or done.stdout)
            if _unreachable(message):
                raise ClusterUnavailable(f"Slurm does not answer: {message}")
            raise SubmitRejected(f"Slurm refused the job: {message}")
        return done.stdout.strip().split(";")[0]

    def statuses(self, jobs: Iterable[JobRef]) -> dict[str, BackendStatus]:
        jobs = list(jobs)
        if not jobs:
            return {}
        listed = {}
        output = self._run([self._cmd("squeue"), "-h", "-t", "all", "-u", self.user, "-o", "%i|%T|%j|%S|%r|%e"])
        for line in output.splitlines():
            parts = line.split("|")
            if len(parts) >= 6:
                listed[parts[0]] = {"state": parts[1].split()[0].rstrip("+"), "name": parts[2],
                                    "start": _time(parts[3]), "reason": parts[4], "end": _time(parts[5])}
        result: dict[str, BackendStatus] = {}
        ended: list[JobRef] = []
        for ref in jobs:
            entry = listed.get(ref.backend_id)
            if entry is not None and entry["name"] == ref.name:
                if entry["state"] in PENDING_STATES:
                    result[ref.backend_id] = BackendStatus(QUEUED, message=pending_reason(entry["reason"]))
                    continue
                if entry["state"] in RUNNING_STATES:
                    result[ref.backend_id] = BackendStatus(RUNNING, started_at=entry["start"])
                    continue
            ended.append(ref)
        if ended:
            accounted = self._sacct(ended)
            for ref in ended:
                # slurmdbd can lag behind the controller (sacct still says PENDING for a job squeue already
                # calls CANCELLED): a final state from either counts, sacct's first for its exit code.
                record = accounted.get(ref.backend_id)
                entry = listed.get(ref.backend_id)
                if entry is not None and entry["name"] != ref.name:
                    entry = None
                if record is not None and record["state"] in REASON_BY_STATE:
                    result[ref.backend_id] = BackendStatus(ENDED, started_at=record["start"], end=job_end(record))
                elif entry is not None and entry["state"] in REASON_BY_STATE:
                    # squeue's start and end give the wall time that sacct does not have yet
                    elapsed = (max(entry["end"] - entry["start"], 0.0)
                               if entry["start"] is not None and entry["end"] is not None else None)
                    fallback = {"state": entry["state"], "exit": 0 if entry["state"] == "COMPLETED" else None,
                                "elapsed": elapsed, "start": entry["start"]}
                    result[ref.backend_id] = BackendStatus(ENDED, started_at=entry["start"], end=job_end(fallback))
                elif record is not None and record["state"] in PENDING_STATES:
                    result[ref.backend_id] = BackendStatus(QUEUED)
                elif record is not None and record["state"] in RUNNING_STATES:
                    result[ref.backend_id] = BackendStatus(RUNNING, started_at=record["start"])
                else:
                    result[ref.backend_id] = BackendStatus(MISSING)
        return result

    def _sacct(self, refs: list[JobRef]) -> dict[str, dict]:
        since = datetime.fromtimestamp(min(ref.submitted_at for ref in refs) - 60).strftime("%Y-%m-%dT%H:%M:%S")
        try:
            output = self._run([self._cmd("sacct"), "-n", "-P", "-X", "-S", since, "-j",
                                ",".join(ref.backend_id for ref in refs),
                                "-o", "JobIDRaw,State,ExitCode,ElapsedRaw,Start,Submit"])
        except ClusterUnavailable:
            return {}  # no accounting (slurmdbd down or not configured): squeue's view is all there is
        submitted = {ref.backend_id: ref.submitted_at for ref in refs}
        records = {}
        for line in output.splitlines():
            parts = line.split("|")
            if len(parts) < 6 or parts[0] not in submitted:
                continue
            submit = _time(parts[5])
            if submit is not None and submit < submitted[parts[0]] - 120:
                continue  # an older job with the same id (ids restart when Slurm's state is reset)
            exit_code, _, sig = parts[2].partition(":")
            records[parts[0]] = {"state": parts[1].split()[0].rstrip("+"), "exit": int(exit_code or 0),
                                 "signal": int(sig or 0), "elapsed": float(parts[3] or 0), "start": _time(parts[4])}
        return records

    def cancel(self, ref: JobRef) -> None:
        done = self.runner.run([self._cmd("scancel"), ref.backend_id])
        if done.returncode != 0:
            message = _clean(done.stderr)
            if "already completed" in message or "Invalid job id" in message:
                return
            raise ClusterUnavailable(f"Slurm did not cancel the job: {message}")

    def availability(self) -> list[QueueInfo]:
        # One line per partition and kind of node (%G splits them), summed per partition; then the
        # pending jobs of everyone, per partition, from one squeue.
        output = self._run([self._cmd("sinfo"), "-h", "-o", "%P|%a|%C|%l|%F|%G"])
        queues: dict[str, dict] = {}
        for line in output.splitlines():
            parts = line.split("|")
            if len(parts) < 6:
                continue
            allocated, idle, _other, total = (int(value) for value in parts[2].split("/"))
            _busy, idle_nodes, _down, nodes = (int(value) for value in parts[4].split("/"))
            name = parts[0].rstrip("*")
            queue = queues.setdefault(name, {"used": 0, "free": 0, "total": 0, "nodes": 0, "free_nodes": 0,
                                             "gpus": 0, "available": parts[1] == "up", "time_limit": _limit(parts[3])})
            queue["used"] += allocated
            queue["free"] += idle
            queue["total"] += total
            queue["nodes"] += nodes
            queue["free_nodes"] += idle_nodes
            queue["gpus"] += _gpus(parts[5]) * nodes
        pending: dict[str, int] = {}
        for partition in self._run([self._cmd("squeue"), "-h", "-t", "PENDING", "-o", "%P"]).split():
            for name in partition.split(","):  # a job may wait for any of several partitions
                pending[name] = pending.get(name, 0) + 1
        return [QueueInfo(name, used=queue["used"], free=queue["free"], total=queue["total"],
                          available=queue["available"], time_limit=queue["time_limit"], nodes=queue["nodes"],
                          free_nodes=queue["free_nodes"], gpus=queue["gpus"], pending=pending.get(name, 0))
                for name, queue in queues.items()]

    def close(self) -> None:
        self.runner.close()

    def _run(self, argv: list[str]) -> str:
        done = self.runner.run(argv)
        if done.returncode != 0:
            raise ClusterUnavailable(f"{os.path.basename(argv[0])}: {_clean(done.stderr or done.stdout)}")
        return done.stdout


def job_end(record: dict) -> JobEnd:
    """How an ended job ended, from its accounting record (Slurm's state, exit code and signal); the
    command-line and the REST backends read the same states."""
    state = record["state"]
    reason = REASON_BY_STATE.get(state, JobState.FAILED)
    exit_code = record.get("exit")
    sig = signal_name(record.get("signal") or 0)
    if reason == JobState.FINISHED and exit_code not in (0, None):
        reason = JobState.FAILED
    if reason in (JobState.CANCELLED, JobState.TIMEOUT):
        exit_code = None
    return JobEnd(reason, exit_code=exit_code, signal=sig, wall_time=record.get("elapsed"),
                  message=MESSAGES.get(state, ""))


def pending_reason(reason: str) -> str:
    """What a queued job's user is told: nothing for the ordinary waits, Slurm's reason otherwise."""
    return "" if reason in ("None", "Priority", "Resources", "") else f"waiting: {reason}"


def _time(text: str) -> float | None:
    if not text or text in ("N/A", "Unknown", "None"):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _gpus(gres: str) -> int:
    """GPUs per node from sinfo's %G, e.g. ``gpu:2``, ``gpu:a100:4(S:0-1)``, ``(null)``."""
    count = 0
    for item in gres.split(","):
        kind, _, rest = item.partition(":")
        if kind == "gpu":
            last = rest.split("(")[0].rsplit(":", 1)[-1]
            count += int(last) if last.isdigit() else 1
    return count


def _limit(text: str) -> int | None:
    """sinfo's time limit (``10:00``, ``1-00:00:00``, ``infinite``) in seconds."""
    if text in ("infinite", "UNLIMITED", "n/a"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(part) for part in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def _clean(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " ".join(lines)[:300]


def _unreachable(message: str) -> bool:
    return any(part in message for part in ("Unable to contact slurm controller", "Socket timed out",
                                            "Connection refused", "Zero Bytes were transmitted",
                                            "Unable to establish connection"))
