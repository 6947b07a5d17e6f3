"""The ``code`` job kind: a user's own Python project, Octave script or notebook run on the cluster,
as the user.

A project is a folder in the user's roots, or a ``.zip`` of one, holding an entry point (``code.py``,
``app.py`` or ``main.py``, or an Octave ``code.m``, ``app.m`` or ``main.m``, unless the user names
another), perhaps a ``requirements.txt`` and an ``input/`` folder. At submission the project is
copied (or safely unpacked, jobs/unpack.py) into a run folder in the output folder, beside an empty
``output/``; the chosen data appears as ``input/<its name>``. The job runs ``hebi_runner.code`` there,
which makes (or reuses) the environment for ``requirements.txt`` and then becomes the user's program.
What it writes under ``output/`` is the result; its stdout and stderr are the job's logs. An ``.m``
entry runs with GNU Octave (MATLAB's language) instead of Python. A notebook (the entry, or a lone
``.ipynb`` as the project) is executed headless with papermill, its ``parameters`` injected, and kept
executed and as HTML in ``output/``.

User code can do anything the session's uid can do, so it runs only where that uid is the user's own:
a session the launcher isolated (podman, kubernetes), unless ``jobs.code.allow_unisolated`` says this
is a single-user machine.
"""
from __future__ import annotations

import json
import keyword
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hebi_common.atomic import atomic_write
from hebi_common.languages import language_of
from hebi_common.sandbox import SandboxError

from .requests import (
    JobRequestError,
    check_text,
    existing,
    output_folder,
    parse_mode,
    parse_resources,
)
from .savu import log_tail
from .unpack import ProjectProblem, copy_notebook, copy_project, unpack_zip

#: Entry points looked for, in this order, when the user names none.
ENTRY_POINTS = ("code.py", "app.py", "main.py", "code.m", "app.m", "main.m")
FIELDS = {"project", "entry", "data", "output", "mode", "resources", "name", "parameters"}
#: A notebook's parameters, as JSON: small values a scientist types, not data.
MAX_PARAMETERS_BYTES = 64 * 1024


@dataclass
class CodeJobRequest:
    project: Path  # a folder or a .zip in the user's roots
    entry: str  # relative to the project, "/"-separated
    language: str
    data: Path | None
    output: Path
    mode: str
    name: str
    time_limit: int
    cores: int
    memory_mb: int
    queue: str
    refs: dict[str, str]  # project/data/output as <root>/<path>
    parameters: dict[str, Any] | None = None  # a notebook's, injected papermill-style
    kind: str = "code"


def refusal(context, jobs_config) -> str:
    """Why this session may not run the user's code; empty when it may."""
    if not jobs_config.code.enabled:
        return "running your own code is switched off here (jobs.code.enabled)"
    if not context.isolated and not jobs_config.code.allow_unisolated:
        return ("your own code cannot run from this session: it runs under the service's account, not yours, "
                "so your code could reach other people's files. Ask your administrator for a container session "
                "(launcher podman or kubernetes)")
    return ""


def parse_request(body: Any, context, jobs_config) -> CodeJobRequest:
    refused = refusal(context, jobs_config)
    if refused:
        raise JobRequestError(refused, 403)
    if not isinstance(body, dict):
        raise JobRequestError('send a JSON object: {"kind": "code", "project", "output", "mode", "resources"}')
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise JobRequestError(f"unknown field '{unknown[0]}'")
    for field in ("project", "output", "mode"):
        if not body.get(field):
            raise JobRequestError(f"'{field}' is required")
    refs = {field: check_text(field, body[field]) for field in ("project", "output")}
    if body.get("data"):
        refs["data"] = check_text("data", body["data"])
    mode = parse_mode(body["mode"])
    name = check_text("name", body.get("name") or "", 100)
    time_limit, cores, memory, queue = parse_resources(body.get("resources"), mode, getattr(jobs_config, mode))

    roots = context.roots
    project = existing(roots, refs["project"], "project")
    if project.is_file() and language_of(project.name) == "notebook":  # a notebook alone is a project too
        if body.get("entry") not in (None, "", project.name):
            raise JobRequestError(f"the project {refs['project']} is a notebook: it is the entry point")
        entry = project.name
    elif project.is_file() and project.suffix.lower() != ".zip":
        raise JobRequestError(f"the project {refs['project']} is a file: choose its folder, a .zip of it, "
                              "or a notebook (.ipynb)")
    else:
        entry = _entry(body.get("entry"), project, refs["project"])
    parameters = _parameters(body.get("parameters"), entry)
    data = existing(roots, refs["data"], "data") if "data" in refs else None
    output = output_folder(roots, refs["output"])
    language = language_of(entry) or "python"  # no entry yet: a zip's, found once it is unpacked
    return CodeJobRequest(project, entry, language, data, output, mode, name, time_limit, cores, memory, queue, refs,
                          parameters)


def _parameters(asked: Any, entry: str) -> dict[str, Any] | None:
    if asked in (None, {}):
        return None
    if entry and language_of(entry) != "notebook":
        raise JobRequestError("'parameters' are for notebooks (injected after their \"parameters\" cell)")
    if not isinstance(asked, dict):
        raise JobRequestError("'parameters' must be an object of names and values, e.g. {\"angle\": 45}")
    if len(json.dumps(asked)) > MAX_PARAMETERS_BYTES:
        raise JobRequestError(f"'parameters' are larger than {MAX_PARAMETERS_BYTES // 1024} KiB: pass data as a file")
    for key in asked:
        if not key.isidentifier() or keyword.iskeyword(key):
            raise JobRequestError(f"the parameter {key[:50]!r} is not a Python name")
    return asked


def _entry(asked: Any, project: Path, ref: str) -> str:
    """The entry point: the one named (checked to be a plain relative path), or the first of
    ENTRY_POINTS the project folder holds. A zip's entries are only known once unpacked."""
    if asked not in (None, ""):
        entry = check_text("entry", asked, 255)
        parts = entry.split("/")
        if entry.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in entry:
            raise JobRequestError(f"'entry' must be a path inside the project such as code.py, not {entry!r}")
    elif project.is_dir():
        found = [name for name in ENTRY_POINTS if (project / name).is_file()]
        if not found:
            raise JobRequestError(f"the project {ref} has none of {', '.join(ENTRY_POINTS)}: name the 'entry' to run")
        entry = found[0]
    else:
        return ""  # found once the zip is unpacked
    if language_of(entry) is None:
        raise JobRequestError(f"'entry' {entry!r} is not a Python file (.py), an Octave script (.m) or a notebook (.ipynb)")
    if project.is_dir():
        target = project / entry
        if target.is_symlink() or not target.is_file():
            raise JobRequestError(f"the project {ref} has no file {entry}")
    return entry


def run_folder_name(project: Path, job_id: str) -> str:
    stem = project.stem if project.is_file() else project.name
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "project"
    return f"{safe[:60]}_{job_id}"


def runner_command(run: Path, entry: str, envs: Path, code_config) -> list[str]:
    """``python -m hebi_runner.code``: the session's own Python, which a cluster node sees at the same path."""
    command = [code_config.python or sys.executable, "-m", "hebi_runner.code", str(run), entry, "--envs", str(envs),
               "--octave", code_config.octave]
    if code_config.index_url:
        command += ["--index-url", code_config.index_url]
    for link in code_config.find_links:
        command += ["--find-links", link]
    return command


class CodeKind:
    """The user's own Python project, Octave script or notebook (see the module's text)."""

    name = "code"

    def parse(self, body: dict, context, jobs_config, catalogue=None) -> CodeJobRequest:
        return parse_request(body, context, jobs_config)

    def prepare(self, service, request: CodeJobRequest, job_id: str, now: float):
        code_config = service.config.code
        job_dir = service.job_folder(request.refs["output"], job_id)
        folder = run_folder_name(request.project, job_id)
        run = request.output / folder
        try:
            if request.project.is_dir():
                copy_project(request.project, run, code_config.max_files, code_config.max_mb)
            elif language_of(request.project.name) == "notebook":
                copy_notebook(request.project, run, code_config.max_mb)
            else:
                unpack_zip(request.project, run, code_config.max_files, code_config.max_mb)
        except ProjectProblem as problem:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise JobRequestError(f"the project {request.refs['project']}: {problem}") from None
        entry = request.entry or next((name for name in ENTRY_POINTS if (run / name).is_file()), "")
        if not entry or (run / entry).is_symlink() or not (run / entry).is_file():
            shutil.rmtree(run, ignore_errors=True)
            shutil.rmtree(job_dir, ignore_errors=True)
            wanted = request.entry or f"any of {', '.join(ENTRY_POINTS)}"
            raise JobRequestError(f"the project {request.refs['project']} has no file {wanted}: name the 'entry' to run")
        request.entry = entry
        request.language = language_of(entry) or "python"
        (run / "output").mkdir(exist_ok=True)
        if request.data is not None:
            (run / "input").mkdir(exist_ok=True)
            link = run / "input" / request.data.name
            if not link.exists() and not link.is_symlink():
                os.symlink(request.data, link)
        envs = service.roots.resolve_ref(request.refs["output"])[0].path / ".hebi" / "envs"
        # The program's TMPDIR: the job's own folder, so that the scratch space it may write is its own.
        command = runner_command(run, request.entry, envs, code_config) + ["--scratch", str(job_dir / "tmp")]
        if request.parameters:
            with atomic_write(job_dir / "parameters.json", text=True) as out:
                out.write(json.dumps(request.parameters))
            command += ["--parameters", str(job_dir / "parameters.json")]
        spec = service.job_spec(request, job_id, job_dir, command)
        run_ref = f"{service.roots.to_ref(request.output)}/{folder}"
        record = service.job_record(
            request, job_id, now, spec, name=request.name or Path(folder).name.rsplit("_", 1)[0],
            source=request.refs["project"], dataset=request.refs.get("data"), output=request.refs["output"],
            run_dir=str(run), details={"run_folder": run_ref, "entry": request.entry, "language": request.language,
                                                "parameters": request.parameters,
                                                "made": [str(run)]})
        return record, spec

    def progress(self, service, job: dict) -> tuple[float | None, str]:
        return None, ""

    def failure_reason(self, service, job: dict) -> str:
        """The error the program wrote last to stderr: a Python traceback ends with it, Octave follows
        its ``error: ...`` line with where it was called from."""
        try:
            text = log_tail(service.job_file(job["spec"].get("stderr", ""), "stderr"), 50)[0]
        except SandboxError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if job["spec"].get("language") == "octave":
            errors = [line for line in lines if line.startswith("error: ") and line != "error: called from"]
            lines = errors or lines
        return lines[-1][:500] if lines else ""
