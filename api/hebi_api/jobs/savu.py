"""Building a Savu job from what a user asked: checks, the preview copy of the list, the command, and
reading the run's progress back from its ``run_log/user.log``.

A job is a process list + a dataset + an output folder + a mode. Preview runs a copy of the list whose
loader ``preview`` keeps a few central slices (or the slices the user chose); full runs the list as it
is. The command is an argument list (``savu DATA LIST OUT -f FOLDER`` or the runner) and no shell ever
sees it, so user text only ever becomes whole arguments: names may hold quotes, brackets and spaces.
What can be known to fail is refused at submission: a dataset h5py cannot open, GPU plugins on a queue
without GPUs.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hebi_common.sandbox import Roots, SandboxError
from hebi_common.savu.catalogue import Catalogue
from hebi_common.savu.process_list import ProcessList, ProcessListError, read_process_list
from hebi_common.savu.validation import check_runnable

from .requests import JobRequestError, check_text, existing, existing_file, output_folder, parse_mode, parse_resources

RUNNING_LINE = re.compile(r"\*Running the (?P<name>\S+) plugin\*")


@dataclass
class SavuJobRequest:
    process_list: Path
    dataset: Path
    output: Path
    mode: str
    name: str
    time_limit: int
    cores: int
    memory_mb: int
    queue: str
    preview_slices: str | None  # the loader preview entry for the slice dimension (preview mode)
    refs: dict[str, str]  # process_list/dataset/output as <root>/<path>
    plugins: int  # active processing plugins (for overall progress)
    kind: str = "savu"


def parse_request(body: Any, roots: Roots, jobs_config, catalogue: Catalogue | None = None) -> SavuJobRequest:
    """Check everything a submission asks for; raise JobRequestError naming the first problem."""
    if not isinstance(body, dict):
        raise JobRequestError("send a JSON object: {\"process_list\", \"dataset\", \"output\", \"mode\", \"resources\"}")
    unknown = sorted(set(body) - {"process_list", "dataset", "output", "mode", "resources", "name", "preview"})
    if unknown:
        raise JobRequestError(f"unknown field '{unknown[0]}'")
    for field in ("process_list", "dataset", "output", "mode"):
        if not body.get(field):
            raise JobRequestError(f"'{field}' is required")
    refs = {field: check_text(field, body[field]) for field in ("process_list", "dataset", "output")}
    mode = parse_mode(body["mode"])
    name = check_text("name", body.get("name") or "", 100)
    mode_config = getattr(jobs_config, mode)

    process_list = existing_file(roots, refs["process_list"], "process list")
    plugins, gpu_plugins = _check_process_list(process_list, refs["process_list"], catalogue)
    if gpu_plugins and not mode_config.gpus:
        where = f"the {mode} queue {mode_config.queue!r}" if mode_config.queue else f"the {mode} queue"
        raise JobRequestError(f"{refs['process_list']}: {', '.join(gpu_plugins)} needs a GPU, and {where} has none: "
                              "switch it off or use a CPU plugin instead (e.g. AstraReconCpu, TomobarRecon)")
    dataset = existing(roots, refs["dataset"], "dataset")
    if dataset.is_file():  # a folder is a dataset too, for Savu's image-stack loaders
        _check_hdf5(dataset, refs["dataset"], roots)
    output = output_folder(roots, refs["output"])

    time_limit, cores, memory, queue = parse_resources(body.get("resources"), mode, mode_config)

    slices = None
    if mode == "preview":
        slices = preview_entry(body.get("preview"), jobs_config.preview_slices)
    elif body.get("preview") not in (None, ""):
        raise JobRequestError("'preview' (the slices to keep) applies to preview jobs only")
    return SavuJobRequest(process_list, dataset, output, mode, name, time_limit, cores, memory, queue, slices,
                          refs, plugins)


def preview_entry(asked: Any, default_count: int) -> str:
    """The loader preview entry for the slice dimension: N central slices, or the user's expression."""
    from hebi_common.savu.preview import entry_problem as preview_entry_problem
    if asked in (None, ""):
        asked = default_count
    if isinstance(asked, bool):
        raise JobRequestError("'preview' is a number of central slices or a Savu preview such as 'mid-2:mid+3'")
    if isinstance(asked, int):
        if not 1 <= asked <= 1000:
            raise JobRequestError("'preview' must keep between 1 and 1000 slices")
        before = asked // 2
        after = asked - before
        return f"mid-{before}:mid+{after}" if before else f"mid:mid+{after}"
    if not isinstance(asked, str) or len(asked) > 100:
        raise JobRequestError("'preview' must be text of at most 100 characters, e.g. 'mid-2:mid+3'")
    text = asked.strip()
    # The editor's own grammar (hebi_common.savu.preview); the text goes into the list, never a command.
    problem = preview_entry_problem(text)
    if problem:
        raise JobRequestError(f"'preview' {problem}; use start[:stop[:step[:chunk]]] with numbers and the "
                              "words start, mid and end, e.g. 'mid-2:mid+3'")
    return text


def _check_hdf5(path: Path, ref: str, roots: Roots) -> None:
    """Refuse a dataset file h5py cannot open (Savu's loaders would fail on it after the queue wait), and
    one whose links lead out of the user's roots: a real Savu lets HDF5 follow every link, so only this
    check stands between its job and another user's files (hebi-runner checks again as it reads).

    A sweep submits the same dataset many times: a file that passed is not opened again until it changes."""
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key in _FINE_DATASETS:
        return
    # h5py only when a job is submitted: an idle session's API does not carry it (bench/session).
    import h5py

    from hebi_common.confine import check_whole_file
    try:
        with h5py.File(path, "r"):
            pass
    except OSError as error:
        reason = str(error).split("(", 1)[0].strip() or "not an HDF5 file"
        raise JobRequestError(f"the dataset {ref} is not a readable NeXus/HDF5 file ({reason}); "
                              "choose the scan's .nxs or .h5 file") from None
    try:
        check_whole_file(roots, path, "the dataset")
    except SandboxError as error:
        raise JobRequestError(f"{ref}: {error.message}", error.status) from None
    if len(_FINE_DATASETS) > 1024:
        _FINE_DATASETS.clear()
    _FINE_DATASETS.add(key)


#: (path, inode, size, mtime) of dataset files that opened and whose links all stay inside the roots.
_FINE_DATASETS: set[tuple] = set()
#: (path, inode, size, mtime) -> (plugins, GPU plugins): a list is checked once per version.
_CHECKED: dict[tuple, tuple[int, list[str]]] = {}


def _check_process_list(path: Path, ref: str, catalogue: Catalogue | None) -> tuple[int, list[str]]:
    """Open the list the way the runner and Savu will; the number of active processing plugins, and
    the active plugins that need a GPU (as ``pos Name``).

    Reading a list with h5py costs tens of milliseconds; submitting the same unchanged list again (the
    usual preview, preview, full) reuses the verdict, keyed by the file's identity and modification."""
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key in _CHECKED:
        return _CHECKED[key]
    verdict = _read_and_check(path, ref, catalogue)
    if len(_CHECKED) > 256:
        _CHECKED.clear()
    _CHECKED[key] = verdict
    return verdict


def _read_and_check(path: Path, ref: str, catalogue: Catalogue | None) -> tuple[int, list[str]]:
    try:
        process_list = read_process_list(path, catalogue)
    except ProcessListError as error:
        raise JobRequestError(f"{ref}: {error.message}") from None
    except OSError as error:
        raise JobRequestError(f"{ref}: cannot be read as a process list: {error}") from None
    if not process_list.plugins:
        raise JobRequestError(f"{ref}: the process list is empty")
    # The editor's own checks: unknown (facility or retired) plugins are kept in a list, and refused
    # here, when a run would need them active.
    problems = check_runnable(process_list, catalogue)
    if problems:
        raise JobRequestError(f"{ref}: cannot run: {problems[0].message}")
    plugins = sum(1 for plugin in process_list.plugins[1:] if plugin.active and not plugin.name.endswith("Loader"))
    return plugins, _gpu_plugins(process_list, catalogue)


def _gpu_plugins(process_list: ProcessList, catalogue: Catalogue | None) -> list[str]:
    from hebi_common.savu.catalogue import default_catalogue
    catalogue = catalogue or default_catalogue()
    return [f"{entry.pos} {entry.name}" for entry in process_list.plugins
            if entry.active and (definition := catalogue.get(entry.name)) is not None and definition.needs_gpu]


# -- the preview copy ---------------------------------------------------------------------------------

def write_preview_copy(source: Path, target: Path, slices: str) -> list[Any]:
    """Write ``source`` to ``target`` with the loader's preview keeping ``slices`` in the slice (second)
    dimension and everything else as it was; returns the new preview. The one place that edits a list."""
    from hebi_common.savu.process_list import read_process_list, write_process_list
    process_list = read_process_list(source)
    loader = process_list.plugins[0]
    current = loader.params.get("preview")
    if isinstance(current, dict) and current:
        preview: Any = {name: _with_slices(value, slices) for name, value in current.items()}
    else:
        preview = _with_slices(current if isinstance(current, list) else [], slices)
    loader.params["preview"] = preview
    loader.raw_data = None
    write_process_list(process_list, target)
    return preview


def _with_slices(current: list, slices: str) -> list:
    entries = [str(entry) for entry in current] if isinstance(current, list) else []
    while len(entries) < 3:
        entries.append(":")
    entries[1] = slices
    return entries


# -- the command --------------------------------------------------------------------------------------

def job_command(template: list[str], *, data: Path, process_list: Path, output: Path, folder: str) -> list[str]:
    """The configured command with its placeholders replaced, argument by argument (no shell)."""
    # The session's own environment first: hebi-runner is installed beside the Python that runs the API
    # (a virtual environment whose bin/ need not be on PATH), and a cluster node sees the same path.
    search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    if not template:
        program = "savu" if shutil.which("savu", path=search) else "hebi-runner"
        template = [program, "{data}", "{process_list}", "{output}", "-f", "{folder}"]
    values = {"{data}": str(data), "{process_list}": str(process_list), "{output}": str(output), "{folder}": folder}
    command = []
    for argument in template:
        for key, value in values.items():
            argument = argument.replace(key, value)
        command.append(argument)
    resolved = shutil.which(command[0], path=search)
    if resolved:
        command[0] = resolved
    return command


def run_folder_name(dataset: Path, mode: str, job_id: str, when: float) -> str:
    stem = dataset.name.split(".")[0] or "data"
    return f"{time.strftime('%Y%m%d%H%M%S', time.localtime(when))}_{stem}_{mode}_{job_id}"


# -- progress -----------------------------------------------------------------------------------------

def read_progress(run_dir: Path, plugins: int) -> tuple[float | None, str]:
    """(percent of the whole run, last user.log message) from the run's ``run_log/user.log``."""
    log = run_dir / "run_log" / "user.log"
    try:
        with open(log, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 256 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return None, ""
    done_plugins = 0
    current = 0.0
    last_message = ""
    for line in text.splitlines():
        message = line.split(" - ", 1)[1] if " - " in line[:40] else line
        if message.strip():
            last_message = message.strip()
        if RUNNING_LINE.search(message):
            current = 0.0
        match = re.search(r"(\d{1,3})% complete", message)
        if match:
            current = min(float(match.group(1)), 100.0)
            if current >= 100.0:
                done_plugins += 1
                current = 0.0
        if "Processing Complete" in message:
            return 100.0, last_message
    if plugins:
        percent = min(100.0 * (done_plugins + current / 100.0) / plugins, 99.0)
    else:
        percent = current
    return round(percent, 1), last_message[:300]


def log_tail(path: Path, lines: int) -> tuple[str, int]:
    """The last ``lines`` lines of a text file and its size (the offset to follow from)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            block = min(size, max(4096, lines * 200))
            while True:
                handle.seek(size - block)
                data = handle.read(block)
                if data.count(b"\n") > lines or block == size:
                    break
                block = min(size, block * 4)
    except FileNotFoundError:
        return "", 0
    text = data.decode("utf-8", "replace")
    kept = text.splitlines()[-lines:] if lines else []
    return "\n".join(kept) + ("\n" if kept and text.endswith("\n") else ""), size



# -- why a run failed ---------------------------------------------------------------------------------

ERROR_LINE = re.compile(r"\b(ERROR|Error|error|failed|FAILED)\b")


def failure_reason(stderr: str, user_log: str) -> str:
    """The line that says why a run failed, for the job's message: the runner's own refusal (it prints
    ``hebi-runner: ...``), else the exception a Python traceback ends with (Savu's crashes), else the
    last error line of the run's user.log, else the last line of stderr."""
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    runner = [line for line in lines if line.startswith("hebi-runner:")]
    if runner:
        return runner[-1][:300]
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("Traceback (most recent call last)"):
            # The exception is the first line after the traceback that is not indented (its frames are).
            tail = [line for line in lines[index + 1:] if not line.startswith((" ", "\t"))]
            if tail:
                return tail[0][:300]
    for line in reversed(user_log.splitlines()):
        message = line.split(" - ", 1)[1] if " - " in line[:40] else line
        if ERROR_LINE.search(message):
            return message.strip()[:300]
    return lines[-1][:300] if lines else ""


# -- the Savu job kind --------------------------------------------------------------------------------

class SavuKind:
    """A process list run on a dataset (jobs/kinds.py): progress and failures read from Savu's user.log."""

    name = "savu"

    def parse(self, body: dict, context, jobs_config, catalogue: Catalogue | None = None) -> SavuJobRequest:
        return parse_request(body, context.roots, jobs_config, catalogue)

    def prepare(self, service, request: SavuJobRequest, job_id: str, now: float):
        folder = run_folder_name(request.dataset, request.mode, job_id, now)
        job_dir = service.job_folder(request.refs["output"], job_id)
        process_list = request.process_list
        extra: dict[str, Any] = {"plugins": request.plugins}
        if request.mode == "preview":
            process_list = job_dir / f"{request.process_list.stem}_preview{request.process_list.suffix or '.nxs'}"
            extra["preview"] = write_preview_copy(request.process_list, process_list, request.preview_slices)
        command = job_command(service.config.command, data=request.dataset, process_list=process_list,
                              output=request.output, folder=folder)
        spec = service.job_spec(request, job_id, job_dir, command)
        record = service.job_record(
            request, job_id, now, spec, name=request.name or request.process_list.stem,
            process_list=request.refs["process_list"], dataset=request.refs["dataset"],
            output=request.refs["output"], run_dir=str(request.output / folder),
            details={**extra, "run_folder": f"{service.roots.to_ref(request.output)}/{folder}",
                  "process_list_used": str(process_list)})
        return record, spec

    def progress(self, service, job: dict) -> tuple[float | None, str]:
        """Progress from the run's user.log, only while that log is in the user's roots."""
        try:
            service.job_file(Path(job["run_dir"]) / "run_log" / "user.log", "user.log")
        except SandboxError:
            return None, ""
        return read_progress(Path(job["run_dir"]), job["spec"].get("plugins", 0))

    def failure_reason(self, service, job: dict) -> str:
        """Why a run failed, from its stderr and user.log (only while they are in the user's roots)."""
        texts = []
        for path, what in ((job["spec"].get("stderr", ""), "stderr"),
                           (Path(job["run_dir"]) / "run_log" / "user.log", "user.log")):
            try:
                texts.append(log_tail(service.job_file(path, what), 200)[0])
            except SandboxError:
                texts.append("")
        return failure_reason(*texts)
