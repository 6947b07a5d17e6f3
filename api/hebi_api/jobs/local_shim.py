"""The supervisor of one local job: ``python -m hebi_api.jobs.local_shim JOB_FOLDER``.

Started by the local backend in a session of its own, so that it outlives a restart of the API. It
runs the job's command in a new process group (so cancel and the time limit reach every process the
job started), enforces the time limit (SIGTERM, then SIGKILL after the grace period), and records how
the job ended in ``state.json`` (written atomically). The API reads that file; it never has to be the
job's parent. Imports only the standard library, to start fast.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from hebi_common.atomic import atomic_write

from .states import JobState


def write_json(path: Path, value: dict) -> None:
    with atomic_write(path, text=True) as out:
        json.dump(value, out)


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def main(folder: str) -> int:
    job = Path(folder)
    spec = json.loads((job / "spec.json").read_text())
    state = {"shim_pid": os.getpid(), "shim_ticks": process_start_ticks(os.getpid()), "started_at": time.time()}
    if (job / "cancel").exists():
        write_json(job / "state.json", {**state, "ended_at": time.time(), "reason": JobState.CANCELLED,
                                        "message": "cancelled before it started"})
        return 0
    memory = int(spec.get("memory_mb") or 0)

    def limit_memory() -> None:
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory * 1024 * 1024, memory * 1024 * 1024))

    try:
        with open(spec["stdout"], "ab") as out, open(spec["stderr"], "ab") as err:
            child = subprocess.Popen(spec["command"], cwd=spec["workdir"], env=spec["env"], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err, start_new_session=True, preexec_fn=limit_memory)
    except OSError as error:
        write_json(job / "state.json", {**state, "ended_at": time.time(), "reason": JobState.FAILED, "exit_code": 127,
                                        "message": f"could not start {spec['command'][0]}: {error.strerror}"})
        return 0
    state["pgid"] = child.pid
    write_json(job / "state.json", state)

    # A cancel request from the API arrives as SIGTERM to the job's group; the shim is not in that group.
    deadline = state["started_at"] + float(spec["time_limit"])
    grace = float(spec.get("kill_grace", 5.0))
    timed_out = False
    cancel_seen = 0.0
    while True:
        try:
            returncode = child.wait(timeout=max(0.0, min(0.5, deadline - time.time())))
            break
        except subprocess.TimeoutExpired:
            pass
        if (job / "cancel").exists():
            if not cancel_seen:
                cancel_seen = time.time()
                _kill_group(child.pid, signal.SIGTERM)
            elif time.time() - cancel_seen > grace:
                _kill_group(child.pid, signal.SIGKILL)
        if time.time() >= deadline and not timed_out:
            timed_out = True
            _kill_group(child.pid, signal.SIGTERM)
            try:
                returncode = child.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                _kill_group(child.pid, signal.SIGKILL)
                returncode = child.wait()
                break
    _kill_group(child.pid, signal.SIGKILL)  # whatever the job left behind in its group
    ended = time.time()
    result = {**state, "ended_at": ended, "wall_time": round(ended - state["started_at"], 3)}
    if returncode < 0:
        result["signal"] = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
    else:
        result["exit_code"] = returncode
    if timed_out:
        result["reason"] = JobState.TIMEOUT
        result["message"] = f"killed at its time limit of {int(float(spec['time_limit']))} s"
    elif (job / "cancel").exists():
        result["reason"] = JobState.CANCELLED
    elif returncode == 0:
        result["reason"] = JobState.FINISHED
    else:
        result["reason"] = JobState.FAILED
    write_json(job / "state.json", result)
    return 0


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
