"""GridEngine through its client commands (tested on Son of Grid Engine 8.1.9), here or on a submit
host over SSH (commands.py); and what GridEngine says, read once for this backend and for DRMAA's.

- submit: ``qsub -terse -b y -shell n`` with the job's argument list after the options: a binary job
  started without a shell, so GridEngine hands each argument to the job as it is and nothing parses
  user text. ``-V`` gives the job qsub's environment, which is the job's own (``env K=V`` over SSH).
- state: ONE ``qstat -u USER -xml`` for all of the user's jobs; jobs that left qstat are looked up in
  GridEngine's accounting with ``qacct -j ID``, all of them in one command (over SSH the accounting
  file is not ours to read). Its ``failed`` code tells the reason: 0 ended by itself, 37 killed at its
  time limit, 100 killed (by a cancel or a stopping execd).
- cancel: ``qdel``; availability: ``qstat -f -xml`` with everyone's jobs (slots, hosts, GPUs, pending).
- Every command gets ``gridengine.sge_root``/``sge_cell`` in its environment when they are set: a
  command over SSH runs without a login profile, so the submit host's settings must be named.
"""
from __future__ import annotations

import os
import re
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

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
    hms,
    signal_name,
)
from .commands import make_runner
from .states import JobState

FAILED_TIME_LIMIT = 37
FAILED_KILLED = 100
CLIENTS = "GridEngine's client commands"

#: Looks up each job id given in GridEngine's accounting, in one process: the script is fixed, the
#: qacct path and the ids are its arguments. A job not (yet) there is only missing from the output.
QACCT_EACH = 'q=$1; shift; command -v "$q" >/dev/null || exit 127; for id do "$q" -j "$id"; done; exit 0'

#: What the client commands say when the qmaster cannot be reached (rather than refusing the job).
_UNREACHABLE = ("commlib error", "unable to contact qmaster", "unable to send message to qmaster",
                "cannot reach qmaster", "can't connect", "Please set the environment variable SGE_ROOT",
                "cell directory", "act_qmaster")


@dataclass
class AccountingRecord:
    """One job's line of GridEngine's accounting (the file, or ``qacct -j``)."""

    qname: str = ""
    owner: str = ""
    job_name: str = ""
    job_number: str = ""
    submission_time: int = 0
    start_time: int = 0  # 0: never started
    end_time: int = 0
    failed: int = 0
    failed_text: str = ""
    exit_status: int = 0
    wallclock: float = 0.0


def end_from_accounting(record: AccountingRecord, cancel_requested: bool) -> JobEnd:
    exit_status = record.exit_status
    wall = record.wallclock if record.start_time else 0.0
    killed_by = signal_name(exit_status - 128) if exit_status > 128 else None
    if record.failed == FAILED_TIME_LIMIT:
        return JobEnd(JobState.TIMEOUT, exit_code=None, signal="SIGKILL", wall_time=wall,
                      message="killed at its time limit (GridEngine h_rt)")
    if record.failed == FAILED_KILLED:
        if cancel_requested:
            return JobEnd(JobState.CANCELLED, signal=killed_by, wall_time=wall)
        return JobEnd(JobState.FAILED, signal=killed_by, wall_time=wall,
                      message="killed by GridEngine (its execution daemon stopped, or an admin deleted the job)")
    if record.failed:
        return JobEnd(JobState.FAILED, exit_code=None, wall_time=wall,
                      message=f"GridEngine could not run the job: failed {record.failed_text.strip()}")
    if exit_status > 128:
        return JobEnd(JobState.CANCELLED if cancel_requested else JobState.FAILED, signal=killed_by, wall_time=wall)
    return JobEnd(JobState.FINISHED if exit_status == 0 else JobState.FAILED, exit_code=exit_status, wall_time=wall)


def ended_status(record: AccountingRecord | None, ref: JobRef) -> BackendStatus:
    """A job no longer in qstat, from its accounting record (None: not there, or not yet)."""
    if record is None:
        return BackendStatus(MISSING)
    return BackendStatus(ENDED, started_at=float(record.start_time) if record.start_time else None,
                         end=end_from_accounting(record, ref.cancel_requested))


def resource_arguments(spec: JobSpec, parallel_environment: str, memory_resource: str) -> list[str]:
    """The queue and resources of a job, as qsub options (DRMAA's native specification too)."""
    arguments = ["-q", spec.queue, "-l", f"h_rt={hms(spec.time_limit)}"]
    if spec.cores > 1:
        arguments += ["-pe", parallel_environment, str(spec.cores)]
    if spec.memory_mb:
        arguments += ["-l", f"{memory_resource}={spec.memory_mb}M"]
    return arguments


def parse_qstat_jobs(xml_text: str) -> dict[str, dict]:
    """``qstat -u USER -xml``: each job's name, state letters and start time, by job number."""
    try:
        tree = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as error:
        raise ClusterUnavailable(f"qstat answered something that is not XML: {error}") from None
    jobs = {}
    for job in tree.iter("job_list"):
        start = job.findtext("JAT_start_time")
        jobs[job.findtext("JB_job_number", "")] = {
            "name": job.findtext("JB_name", ""), "state": job.findtext("state", ""),
            "start": _iso_time(start) if start else None}
    return jobs


def listed_status(entry: dict, backend_id: str) -> BackendStatus:
    """A job qstat lists, from its state letters."""
    state = entry["state"]
    if "E" in state:
        return BackendStatus(QUEUED, message=f"GridEngine holds the job in error state ({state}); "
                             f"`qstat -j {backend_id}` says why")
    if "r" in state:
        return BackendStatus(RUNNING, started_at=entry["start"])
    if "t" in state:  # dispatched, not yet confirmed running by its host
        return BackendStatus(QUEUED, message="starting on its host")
    return BackendStatus(QUEUED)


#: The command whose answer parse_queues reads: every queue instance (queue@host) with its slots, the
#: GPUs still free there (the ``gpu`` consumable, when the site defines one), and everyone's jobs with
#: the queue and resources they asked for.
QUEUES_QUERY = ["-f", "-xml", "-r", "-u", "*", "-F", "gpu"]
#: Queue instance states in which it takes no new job (unknown, disabled, error, suspended, ...).
_CLOSED_STATES = set("udEsSCDo")


def parse_queues(xml_text: str) -> list[QueueInfo]:
    """``qstat`` + QUEUES_QUERY: per cluster queue its slots, hosts (nodes), GPUs and pending jobs.

    A host is free when its instance runs nothing and takes jobs; GPUs are the free ``gpu``
    consumable plus what the queue's running jobs hold (per slot, as GridEngine counts consumables).
    """
    try:
        tree = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as error:
        raise ClusterUnavailable(f"qstat answered something that is not XML: {error}") from None
    queues: dict[str, dict] = {}
    for instance in tree.iter("Queue-List"):
        name = instance.findtext("name", "").partition("@")[0]
        used = _int(instance.findtext("slots_used", "0")) + _int(instance.findtext("slots_resv", "0"))
        total = _int(instance.findtext("slots_total", "0"))
        open_ = not (set(instance.findtext("state", "")) & _CLOSED_STATES)
        queue = queues.setdefault(name, {"used": 0, "free": 0, "total": 0, "nodes": 0, "free_nodes": 0,
                                         "free_gpus": 0, "held_gpus": 0, "open": False, "pending": 0})
        queue["used"] += used
        queue["total"] += total
        queue["free"] += max(total - used, 0) if open_ else 0
        queue["nodes"] += 1
        queue["free_nodes"] += 1 if open_ and used == 0 else 0
        queue["open"] = queue["open"] or open_
        queue["free_gpus"] += sum(_int(resource.text or "0") for resource in instance.iter("resource")
                                  if resource.get("name") == "gpu")
        for job in instance.iter("job_list"):
            queue["held_gpus"] += _gpu_request(job) * max(_int(job.findtext("slots", "1")), 1)
    for job in tree.iter("job_list"):
        if job.get("state") == "pending":
            for name in (job.findtext("hard_req_queue") or "").split(","):
                if name in queues:
                    queues[name]["pending"] += 1
    return [QueueInfo(name, used=queue["used"], free=queue["free"], total=queue["total"], available=queue["open"],
                      nodes=queue["nodes"], free_nodes=queue["free_nodes"],
                      gpus=queue["free_gpus"] + queue["held_gpus"], free_gpus=queue["free_gpus"],
                      pending=queue["pending"])
            for name, queue in sorted(queues.items())]


def _gpu_request(job) -> int:
    return sum(_int(request.text or "0") for request in job.iter("hard_request") if request.get("name") == "gpu")


def parse_qacct(text: str) -> list[AccountingRecord]:
    """``qacct -j``'s records (each begins with a line of '='), in the order given."""
    records: list[AccountingRecord] = []
    fields: dict[str, str] = {}

    def flush():
        if fields.get("jobnumber"):
            failed_text = fields.get("failed", "0")
            records.append(AccountingRecord(
                qname=fields.get("qname", ""), owner=fields.get("owner", ""), job_name=fields.get("jobname", ""),
                job_number=fields["jobnumber"], submission_time=_qacct_time(fields.get("qsub_time", "")),
                start_time=_qacct_time(fields.get("start_time", "")), end_time=_qacct_time(fields.get("end_time", "")),
                failed=_int(failed_text.split()[0] if failed_text.split() else "0"), failed_text=failed_text,
                exit_status=_int(fields.get("exit_status", "0")),
                wallclock=_duration(fields.get("ru_wallclock", "0"))))
        fields.clear()

    for line in text.splitlines():
        if line.startswith("==="):
            flush()
            continue
        key, _, value = line.partition(" ")
        if key:
            fields[key] = value.strip()
    flush()
    return records


class GridEngineBackend:
    name = "gridengine"

    @classmethod
    def from_config(cls, jobs, state_dir: Path) -> GridEngineBackend:
        return cls(jobs.gridengine, make_runner(jobs, state_dir, CLIENTS, keep=("SGE_", "PATH", "HOME")))

    def __init__(self, config, runner):
        self.config = config
        self.runner = runner
        self.user = runner.user
        self.sge_env = {key: value for key, value in (("SGE_ROOT", config.sge_root), ("SGE_CELL", config.sge_cell))
                        if value}
        self._lock = threading.Lock()

    def _cmd(self, name: str) -> str:
        return os.path.join(self.config.bin_dir, name) if self.config.bin_dir else name

    # -- interface ------------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        # GridEngine keeps a job's arguments one to a line: a line break would cut one short, and the
        # job would run with a different path than the user gave.
        broken = next((word for word in spec.command if "\n" in word or "\r" in word), None)
        if broken is not None:
            raise SubmitRejected(f"GridEngine cannot give a job an argument with a line break in it: {broken!r}")
        # ":path": no host part, so a colon in the path is the path's own.
        argv = [self._cmd("qsub"), "-terse", "-N", spec.name, *resource_arguments(
                    spec, self.config.parallel_environment, self.config.memory_resource),
                "-wd", str(spec.workdir), "-o", f":{spec.stdout}", "-e", f":{spec.stderr}", "-j", "n", "-V",
                *self.config.qsub_args, "-b", "y", "-shell", "n", *spec.command]
        done = self.runner.run(argv, env={**spec.env, **self.sge_env})
        if done.returncode != 0:
            message = first_line(done.stderr or done.stdout)
            if done.returncode == 127 or _unreachable(done.stderr + done.stdout):
                raise ClusterUnavailable(f"GridEngine does not answer: {message}")
            raise SubmitRejected(f"GridEngine refused the job: {message}")
        job_id = done.stdout.strip().split(".")[0]
        if not job_id.isdigit():
            raise ClusterUnavailable(f"qsub answered no job id: {first_line(done.stdout + done.stderr)}")
        return job_id

    def statuses(self, jobs: Iterable[JobRef]) -> dict[str, BackendStatus]:
        jobs = list(jobs)
        if not jobs:
            return {}
        listed = parse_qstat_jobs(self._run([self._cmd("qstat"), "-u", self.user, "-xml"]))
        result, ended = {}, []
        for ref in jobs:
            entry = listed.get(ref.backend_id)
            if entry is not None and entry["name"] == ref.name:
                result[ref.backend_id] = listed_status(entry, ref.backend_id)
            else:
                ended.append(ref)
        if ended:
            accounted = self._qacct([ref.backend_id for ref in ended])
            for ref in ended:
                # ids restart after a reinstall; names are hebi's own
                matching = [record for record in accounted.get(ref.backend_id, []) if record.job_name == ref.name]
                result[ref.backend_id] = ended_status(matching[-1] if matching else None, ref)
        return result

    def _qacct(self, job_ids: list[str]) -> dict[str, list[AccountingRecord]]:
        done = self.runner.run(["sh", "-c", QACCT_EACH, "sh", self._cmd("qacct"), *job_ids],
                               env={**self.sge_env, "LC_ALL": "C"})  # qacct's dates in C's words
        if done.returncode == 127:
            raise ClusterUnavailable(f"qacct is not installed ({CLIENTS})")
        if done.returncode != 0:
            raise ClusterUnavailable(f"qacct failed: {first_line(done.stderr or done.stdout)}")
        records: dict[str, list[AccountingRecord]] = {}
        for record in parse_qacct(done.stdout):
            records.setdefault(record.job_number, []).append(record)
        return records

    def cancel(self, ref: JobRef) -> None:
        done = self.runner.run([self._cmd("qdel"), ref.backend_id], env=self.sge_env or None)
        if done.returncode != 0:
            message = first_line(done.stderr or done.stdout)
            if "does not exist" in message or "already" in message:
                return  # it has ended (or is ending) already
            raise ClusterUnavailable(f"GridEngine did not cancel the job: {message}")

    def availability(self) -> list[QueueInfo]:
        return parse_queues(self._run([self._cmd("qstat"), *QUEUES_QUERY]))

    def close(self) -> None:
        self.runner.close()

    def _run(self, argv: list[str]) -> str:
        return query(self.runner, argv, self.sge_env or None)


def query(runner, argv: list[str], env: dict[str, str] | None = None) -> str:
    """The output of a GridEngine command that only reads; ClusterUnavailable when it fails."""
    done = runner.run(argv, env=env)
    if done.returncode != 0:
        raise ClusterUnavailable(f"{' '.join(argv[:2])} failed: {first_line(done.stderr or done.stdout)}")
    return done.stdout


def _unreachable(message: str) -> bool:
    return any(part.lower() in message.lower() for part in _UNREACHABLE)


def first_line(value) -> str:
    text = str(value).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return re.sub(r"\s+", " ", lines[0] if lines else text)[:300]


def _int(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _duration(text: str) -> float:
    """qacct's ``ru_wallclock``: ``5s``, ``5.012s`` or plain seconds."""
    return _float(text.strip().removesuffix("s"))


def _qacct_time(text: str) -> int:
    """qacct's ``Wed Dec  2 05:46:42 2026`` (local time of the host); 0 for ``-/-`` (never)."""
    try:
        return int(time.mktime(time.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")))
    except ValueError:
        return 0


def _iso_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
