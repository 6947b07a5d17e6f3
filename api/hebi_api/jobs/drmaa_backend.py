"""The DRMAA backend, for GridEngine (tested on Son of Grid Engine 8.1.9 with DRMAA 1.0).

Submit and cancel go through DRMAA (drmaa-python). State does NOT: DRMAA asks the scheduler once per
job, calls a job killed at its h_rt "done", and a new session can neither ``wait`` on nor see the end
of jobs an earlier API process submitted. So the state of all of a user's jobs comes from ONE
``qstat -u USER -xml``, and jobs that left qstat are looked up in GridEngine's accounting file, read
incrementally (only the bytes added since the last look). What qstat and the accounting say is read
by gridengine.py, the backend through GridEngine's commands, for both.

Loading libdrmaa needs, from the start of the process, ``GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384``
(or ``LD_PRELOAD`` of libjemalloc): ``scripts/gridengine.sh env`` prints it.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

from .backend import (
    BackendStatus,
    ClusterUnavailable,
    JobRef,
    JobSpec,
    QueueInfo,
    SubmitRejected,
)
from .commands import LocalRunner
from .gridengine import (  # noqa: F401 - FAILED_*, end_from_accounting: also read from here
    CLIENTS,
    FAILED_KILLED,
    FAILED_TIME_LIMIT,
    QUEUES_QUERY,
    AccountingRecord,
    _float,
    _int,
    end_from_accounting,
    ended_status,
    first_line,
    listed_status,
    parse_qstat_jobs,
    parse_queues,
    query,
    resource_arguments,
)


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
            record = AccountingRecord(
                qname=fields[0], owner=fields[3], job_name=fields[4], job_number=fields[5],
                submission_time=_int(fields[8]), start_time=_int(fields[9]), end_time=_int(fields[10]),
                failed_text=fields[11], failed=_int(fields[11].split()[0] if fields[11] else "0"),
                exit_status=_int(fields[12]), wallclock=_float(fields[13]))
            self._records.setdefault(record.job_number, []).append(record)


class DrmaaBackend:
    name = "drmaa"

    @classmethod
    def from_config(cls, jobs, state_dir: Path) -> DrmaaBackend:
        return cls(jobs.drmaa)

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
        self.runner = LocalRunner(CLIENTS)
        self.user = self.runner.user
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
            raise ClusterUnavailable(f"cannot open a DRMAA session: {first_line(error)}") from None
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
                    raise SubmitRejected(f"GridEngine refused the job: {first_line(error)}") from None
                except (drmaa.errors.DrmCommunicationException, drmaa.errors.InternalException) as error:
                    # A qmaster restart can leave the session unusable: open a new one once.
                    self._reset()
                    if attempt == 2:
                        raise ClusterUnavailable(f"GridEngine does not answer: {first_line(error)}") from None
                except drmaa.errors.DrmaaException as error:
                    raise SubmitRejected(f"GridEngine refused the job: {first_line(error)}") from None
                finally:
                    try:
                        session.deleteJobTemplate(template)
                    except Exception:  # noqa: BLE001 - a stale session cannot delete; harmless
                        pass
        raise AssertionError("unreachable")

    def native_specification(self, spec: JobSpec) -> str:
        parts = resource_arguments(spec, self.config.parallel_environment, self.config.memory_resource)
        if self.config.native_specification:
            parts.append(self.config.native_specification)
        return " ".join(parts)

    def statuses(self, jobs: Iterable[JobRef]) -> dict[str, BackendStatus]:
        jobs = list(jobs)
        if not jobs:
            return {}
        listed = parse_qstat_jobs(self._run(["qstat", "-u", self.user, "-xml"]))
        result = {}
        for ref in jobs:
            entry = listed.get(ref.backend_id)
            if entry is not None and entry["name"] == ref.name:
                result[ref.backend_id] = listed_status(entry, ref.backend_id)
            else:
                result[ref.backend_id] = ended_status(self.accounting.find(ref.backend_id, ref.name), ref)
        return result

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
                raise ClusterUnavailable(f"GridEngine does not answer: {first_line(error)}") from None
            except drmaa.errors.DrmaaException as error:
                if "does not exist" in str(error):
                    return
                raise ClusterUnavailable(f"GridEngine did not cancel the job: {first_line(error)}") from None

    def availability(self) -> list[QueueInfo]:
        return parse_queues(self._run(["qstat", *QUEUES_QUERY]))

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _run(self, argv: list[str]) -> str:
        return query(self.runner, argv)

