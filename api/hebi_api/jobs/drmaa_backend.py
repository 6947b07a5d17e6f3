"""The DRMAA backend, for GridEngine (tested on Son of Grid Engine 8.1.9 with DRMAA 1.0).

Submit and cancel go through DRMAA (drmaa-python). State does NOT: DRMAA asks the scheduler once per
job, calls a job killed at its h_rt "done", and a new session can neither ``wait`` on nor see the end
of jobs an earlier API process submitted. So the state of all of a user's jobs comes from ONE
``qstat -u USER -xml``, and jobs that left qstat are looked up in GridEngine's accounting file, read
incrementally (only the bytes added since the last look). Its ``failed`` code tells the reason:
0 ended by itself, 37 killed at its time limit, 100 killed (by a cancel or a stopping execd).

Loading libdrmaa needs, from the start of the process, ``GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384``
(or ``LD_PRELOAD`` of libjemalloc): ``scripts/gridengine.sh env`` prints it.
"""
from __future__ import annotations

import getpass
import os
import re
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
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
    run_client_command,
    signal_name,
)
from .states import JobState

FAILED_TIME_LIMIT = 37
FAILED_KILLED = 100


class AccountingRecord:
    __slots__ = ("qname", "owner", "job_name", "job_number", "submission_time", "start_time", "end_time", "failed",
                 "failed_text", "exit_status", "wallclock")


class GridEngineAccounting:
    """GridEngine's accounting file (``$SGE_ROOT/$SGE_CELL/common/accounting``), read as it grows."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._inode = None
        self._records: dict[str, list[AccountingRecord]] = {}
        self._lock = threading.Lock()

    def find(self, job_number: str, job_name: str) -> AccountingRecord | None:
        with self._lock:
            self._read_new()
            for record in reversed(self._records.get(job_number, [])):
                if record.job_name == job_name:  # ids restart after a reinstall; names are hebi's own
                    return record
        return None

    def _read_new(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return
        if stat.st_ino != self._inode or stat.st_size < self._offset:  # rotated or truncated
            self._inode, self._offset, self._records = stat.st_ino, 0, {}
        if stat.st_size == self._offset:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(stat.st_size - self._offset)
        end = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += end
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            if not line or line.startswith("#"):
                continue
            fields = line.split(":")
            if len(fields) < 14:
                continue
            record = AccountingRecord()
            record.qname, record.owner, record.job_name = fields[0], fields[3], fields[4]
            record.job_number = fields[5]
            record.submission_time, record.start_time, record.end_time = (_int(fields[8]), _int(fields[9]),
                                                                        _int(fields[10]))
            record.failed_text = fields[11]
            record.failed = _int(fields[11].split()[0] if fields[11] else "0")
            record.exit_status = _int(fields[12])
            record.wallclock = _float(fields[13])
            self._records.setdefault(record.job_number, []).append(record)


def end_from_accounting(record: AccountingRecord, cancel_requested: bool) -> JobEnd:
    exit_status = record.exit_status
    wall = record.wallclock if record.start_time else 0.0
    if record.failed == FAILED_TIME_LIMIT:
        return JobEnd(JobState.TIMEOUT, exit_code=None, signal="SIGKILL", wall_time=wall,
                      message="killed at its time limit (GridEngine h_rt)")
    if record.failed == FAILED_KILLED:
        if cancel_requested:
            return JobEnd(JobState.CANCELLED, signal=signal_name(exit_status - 128) if exit_status > 128 else None,
                          wall_time=wall)
        return JobEnd(JobState.FAILED, signal=signal_name(exit_status - 128) if exit_status > 128 else None, wall_time=wall,
                      message="killed by GridEngine (its execution daemon stopped, or an admin deleted the job)")
    if record.failed:
        return JobEnd(JobState.FAILED, exit_code=None, wall_time=wall,
                      message=f"GridEngine could not run the job: failed {record.failed_text.strip()}")
    if exit_status > 128:
        return JobEnd(JobState.CANCELLED if cancel_requested else JobState.FAILED, signal=signal_name(exit_status - 128),
                      wall_time=wall)
    return JobEnd(JobState.FINISHED if exit_status == 0 else JobState.FAILED, exit_code=exit_status, wall_time=wall)


class DrmaaBackend:
    name = "drmaa"

    def __init__(self, config):
        self.config = config
        if config.library_path:
            os.environ["DRMAA_LIBRARY_PATH"] = config.library_path
        if config.sge_root:
            os.environ["SGE_ROOT"] = config.sge_root
        if config.sge_cell:
            os.environ["SGE_CELL"] = config.sge_cell
        root = os.environ.get("SGE_ROOT", "/var/lib/gridengine")
        cell = os.environ.get("SGE_CELL", "default")
        self.accounting = GridEngineAccounting(Path(root) / cell / "common" / "accounting")
        self.user = getpass.getuser()
        self._session = None
        self._drmaa = None
        self._lock = threading.Lock()

    # -- the DRMAA session ----------------------------------------------------------------------------

    def _open(self):
        if self._session is not None:
            return self._session
        try:
            import drmaa  # loads libdrmaa: the TLS note in the module docstring applies
        except (ImportError, OSError, RuntimeError) as error:
            text = str(error)
            if "static TLS" in text:
                text += (" — start the API with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 "
                         "(scripts/gridengine.sh env)")
            raise ClusterUnavailable(f"cannot load DRMAA: {text}") from None
        self._drmaa = drmaa
        session = drmaa.Session()
        try:
            session.initialize()
        except drmaa.errors.AlreadyActiveSessionException:
            pass
        except drmaa.errors.DrmaaException as error:
            raise ClusterUnavailable(f"cannot open a DRMAA session: {_first_line(error)}") from None
        self._session = session
        return session

    def _reset(self) -> None:
        if self._session is not None:
            try:
                self._session.exit()
            except Exception:  # noqa: BLE001 - the session is being thrown away anyway
                pass
        self._session = None

    # -- interface ------------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        with self._lock:
            for attempt in (1, 2):
                session = self._open()
                drmaa = self._drmaa
                template = session.createJobTemplate()
                try:
                    template.remoteCommand = spec.command[0]
                    template.args = list(spec.command[1:])
                    template.jobName = spec.name
                    template.workingDirectory = str(spec.workdir)
                    template.jobEnvironment = dict(spec.env)
                    template.outputPath = ":" + str(spec.stdout)
                    template.errorPath = ":" + str(spec.stderr)
                    template.nativeSpecification = self.native_specification(spec)
                    return str(session.runJob(template))
                except drmaa.errors.DeniedByDrmException as error:
                    raise SubmitRejected(f"GridEngine refused the job: {_first_line(error)}") from None
                except (drmaa.errors.DrmCommunicationException, drmaa.errors.InternalException) as error:
                    # A qmaster restart can leave the session unusable: open a new one once.
                    self._reset()
                    if attempt == 2:
                        raise ClusterUnavailable(f"GridEngine does not answer: {_first_line(error)}") from None
                except drmaa.errors.DrmaaException as error:
                    raise SubmitRejected(f"GridEngine refused the job: {_first_line(error)}") from None
                finally:
                    try:
                        session.deleteJobTemplate(template)
                    except Exception:  # noqa: BLE001 - a stale session cannot delete; harmless
                        pass
        raise AssertionError("unreachable")

    def native_specification(self, spec: JobSpec) -> str:
        parts = ["-q", spec.queue, "-l", f"h_rt={hms(spec.time_limit)}"]
        if spec.cores > 1:
            parts += ["-pe", self.config.parallel_environment, str(spec.cores)]
        if spec.memory_mb:
            parts += ["-l", f"{self.config.memory_resource}={spec.memory_mb}M"]
        if self.config.native_specification:
            parts.append(self.config.native_specification)
        return " ".join(parts)

    def statuses(self, jobs: Iterable[JobRef]) -> dict[str, BackendStatus]:
        jobs = list(jobs)
        if not jobs:
            return {}
        listed = self._qstat_jobs()
        result = {}
        for ref in jobs:
            entry = listed.get(ref.backend_id)
            if entry is not None and entry["name"] == ref.name:
                state = entry["state"]
                if "E" in state:
                    result[ref.backend_id] = BackendStatus(QUEUED, message=f"GridEngine holds the job in error "
                                                           f"state ({state}); `qstat -j {ref.backend_id}` says why")
                elif "r" in state:
                    result[ref.backend_id] = BackendStatus(RUNNING, started_at=entry["start"])
                elif "t" in state:  # dispatched, not yet confirmed running by its host
                    result[ref.backend_id] = BackendStatus(QUEUED, message="starting on its host")
                else:
                    result[ref.backend_id] = BackendStatus(QUEUED)
                continue
            record = self.accounting.find(ref.backend_id, ref.name)
            if record is None:
                result[ref.backend_id] = BackendStatus(MISSING)
            else:
                result[ref.backend_id] = BackendStatus(
                    ENDED, started_at=float(record.start_time) if record.start_time else None,
                    end=end_from_accounting(record, ref.cancel_requested))
        return result

    def _qstat_jobs(self) -> dict[str, dict]:
        output = self._run(["qstat", "-u", self.user, "-xml"])
        try:
            tree = ElementTree.fromstring(output)
        except ElementTree.ParseError as error:
            raise ClusterUnavailable(f"qstat answered something that is not XML: {error}") from None
        jobs = {}
        for job in tree.iter("job_list"):
            start = job.findtext("JAT_start_time")
            jobs[job.findtext("JB_job_number", "")] = {
                "name": job.findtext("JB_name", ""), "state": job.findtext("state", ""),
                "start": _iso_time(start) if start else None}
        return jobs

    def cancel(self, ref: JobRef) -> None:
        with self._lock:
            session = self._open()
            drmaa = self._drmaa
            try:
                session.control(ref.backend_id, drmaa.JobControlAction.TERMINATE)
            except drmaa.errors.InvalidJobException:
                return  # already ended
            except (drmaa.errors.DrmCommunicationException, drmaa.errors.InternalException) as error:
                self._reset()
                raise ClusterUnavailable(f"GridEngine does not answer: {_first_line(error)}") from None
            except drmaa.errors.DrmaaException as error:
                if "does not exist" in str(error):
                    return
                raise ClusterUnavailable(f"GridEngine did not cancel the job: {_first_line(error)}") from None

    def availability(self) -> list[QueueInfo]:
        output = self._run(["qstat", "-g", "c"])
        queues = []
        for line in output.splitlines():
            fields = line.split()
            if len(fields) >= 6 and not line.startswith(("CLUSTER", "-")):
                try:
                    used, available, total = int(fields[2]), int(fields[4]), int(fields[5])
                except ValueError:
                    continue
                queues.append(QueueInfo(fields[0], used=used, free=available, total=total,
                                        available=available > 0 or used > 0))
        return queues

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _run(self, argv: list[str]) -> str:
        done = run_client_command(argv, "GridEngine's client commands")
        if done.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(argv[:2])} failed: {_first_line(done.stderr or done.stdout)}")
        return done.stdout


def _first_line(value) -> str:
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


def _iso_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
