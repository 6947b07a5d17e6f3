"""REST for jobs: submit, list, show, cancel, log (tail and live), outputs, cluster availability, and a
server-sent event stream of job changes. Errors are JSON ``{"error": ...}`` like everywhere in the API."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, request, stream_with_context

from hebi_common.errors import UserError
from hebi_common.sandbox import SandboxError

from ..bodies import json_body
from ..state import hebi
from .code import refusal as code_refusal
from .kinds import parse_request
from .savu import log_tail
from .service import JOB_FOLDER, JobService
from .states import ACTIVE_STATES, JobState

blueprint = Blueprint("jobs", __name__)
STREAM_SECONDS = 300  # an event stream ends after this; EventSource reconnects by itself (Last-Event-ID)
LOG_STREAMS = ("stdout", "stderr", "user")
OUTPUTS_LISTED = 5000


def service() -> JobService:
    extensions = current_app.extensions["hebi"]
    jobs = extensions.get("jobs")
    if jobs is None:
        config, context = extensions["config"], extensions["context"]
        jobs = extensions["jobs"] = JobService(config.jobs, context.state_dir, context.roots)
    return jobs


def public(job: dict) -> dict:
    """A job as the API shows it: paths as <root>/<path>, nothing of the machine's layout."""
    summary = job["summary"]
    run_dir = summary.get("run_folder")  # recorded at submission: no filesystem call per job listed
    return {
        "id": job["id"], "kind": job["kind"], "name": job["name"], "mode": job["mode"], "state": job["state"],
        "message": job["message"], "backend": job["backend"], "scheduler_id": job["backend_id"],
        "queue": job["queue"], "process_list": job["process_list"], "dataset": job["dataset"],
        "output": job["output"], "run_folder": run_dir, "project": job["source"],
        "entry": summary.get("entry"), "language": summary.get("language"), "parameters": summary.get("parameters"),
        "resources": {key: summary.get(key) for key in ("time_limit", "cores", "memory_mb")},
        "preview": summary.get("preview"),
        "progress": job["progress"], "progress_text": job["progress_text"],
        "submitted_at": job["submitted_at"], "started_at": job["started_at"], "ended_at": job["ended_at"],
        "end": None if not JobState(job["state"]).final else {
            "reason": job["state"], "exit_code": job["exit_code"], "signal": job["signal"],
            "wall_time": job["wall_time"]},
        "cancel_requested": job["cancel_requested_at"] is not None,
    }


def _ref_or_none(roots, path: str) -> str | None:
    try:
        return roots.to_ref(Path(path))
    except Exception:  # noqa: BLE001 - the folder may not exist yet, or not be under a root
        return None


def _job_or_404(job_id: str) -> dict:
    job = service().registry.get(job_id)
    if job is None:
        abort(404, description=f"there is no job {job_id!r}")
    return job


def _cluster_note(jobs: JobService) -> dict:
    """Whether the scheduler answered at the last poll, and when that was (states are as of then)."""
    return {"available": not jobs.unavailable, "unavailable": dict(jobs.unavailable), "polled_at": jobs.polled_at}


@blueprint.post("/jobs")
def submit():
    jobs = service()
    job_request = parse_request(json_body(), hebi("context"), hebi("config").jobs, hebi("catalogue"))
    job = jobs.submit(job_request)
    return jsonify(public(job)), 201


@blueprint.post("/jobs/batch")
def submit_batch():
    """Many jobs in one request (a parameter sweep): ``{"jobs": [<a POST /jobs body>, ...]}``. Every job
    is checked before any is submitted; a bad one is refused with its index and nothing is submitted."""
    jobs = service()
    body = json_body()
    config = hebi("config").jobs
    if not isinstance(body, dict) or set(body) != {"jobs"} or not isinstance(body["jobs"], list):
        abort(400, description='send a JSON object {"jobs": [...]}: a list of job submissions')
    if not 1 <= len(body["jobs"]) <= config.max_batch:
        abort(400, description=f"a batch holds 1 to {config.max_batch} jobs, not {len(body['jobs'])}")
    requests = []
    for index, item in enumerate(body["jobs"]):
        try:
            requests.append(parse_request(item, hebi("context"), config, hebi("catalogue")))
        except UserError as error:
            raise UserError(f"job {index}: {error.message}", error.status, index=index, **error.extra) from None
        if requests[-1].kind != "savu":  # each copies its project: a batch could copy it a thousand times
            abort(400, description=f"job {index}: code jobs are submitted one at a time (POST /api/jobs)")
    submitted = jobs.submit_many(requests)
    return jsonify(jobs=[public(job) for job in submitted]), 201


@blueprint.get("/jobs")
def list_jobs():
    jobs = service()
    jobs.refresh(force=request.args.get("refresh") in ("1", "true", "yes"))
    states = [state for state in request.args.get("state", "").split(",") if state]
    for state in states:
        if state not in set(JobState):
            abort(400, description=f"unknown state {state!r} (one of {', '.join(JobState)})")
    mode = request.args.get("mode") or None
    if mode not in (None, "preview", "full"):
        abort(400, description=f"unknown mode {mode!r}: preview or full")
    limit = _int_arg("limit", 1000, 1, 10000)
    offset = _int_arg("offset", 0, 0, 10**9)
    since = request.args.get("since")
    try:
        since_value = float(since) if since else None
    except ValueError:
        abort(400, description="'since' is a time in seconds since 1970")
    found, total = jobs.registry.list(states=states or None, mode=mode, since=since_value,
                                      text=request.args.get("q") or None, limit=limit, offset=offset)
    # Serialised without key sorting: a list of 1000 jobs is most of what this request costs.
    body = json.dumps({"jobs": [public(job) for job in found], "total": total, "cluster": _cluster_note(jobs)},
                      separators=(",", ":"))
    return Response(body, mimetype="application/json")


@blueprint.get("/jobs/<job_id>")
def show_job(job_id: str):
    jobs = service()
    jobs.refresh(force=request.args.get("refresh") in ("1", "true", "yes"))
    job = _job_or_404(job_id)
    return jsonify(dict(public(job), cluster=_cluster_note(jobs)))


@blueprint.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    job = service().cancel(_job_or_404(job_id))
    return jsonify(public(job))


def _log_path(job: dict, which: str) -> Path:
    if which not in LOG_STREAMS:
        abort(400, description=f"unknown log {which!r}: stdout, stderr or user (Savu's run_log/user.log)")
    if which == "user":
        if job["kind"] != "savu":
            abort(400, description="a code job has no Savu user.log: stdout or stderr")
        return service().job_file(Path(job["run_dir"]) / "run_log" / "user.log", "user.log")
    return service().job_file(job["spec"].get(which, ""), which)


def _default_stream(job: dict) -> str:
    """Savu's user.log, except for an ended job whose user.log is empty or missing: a run that failed
    before Savu started its log said why on stderr. A code job has no user.log: what the program
    prints, or what it said on stderr when it failed."""
    if job["kind"] != "savu":
        return "stderr" if job["state"] in (JobState.FAILED, JobState.TIMEOUT) else "stdout"
    if JobState(job["state"]).final:
        try:
            user_log = _log_path(job, "user")
        except SandboxError:
            return "user"  # refused below, as an explicit ?stream=user would be
        if not user_log.is_file() or user_log.stat().st_size == 0:
            return "stderr"
    return "user"


@blueprint.get("/jobs/<job_id>/log")
def job_log(job_id: str):
    """``?stream=stdout|stderr|user&lines=N`` for the tail (no stream: see _default_stream; the answer
    names the one sent); ``&follow=1`` streams new lines as SSE."""
    jobs = service()
    job = _job_or_404(job_id)
    which = request.args.get("stream") or _default_stream(job)
    path = _log_path(job, which)
    lines = _int_arg("lines", 200, 0, 10000)
    if request.args.get("follow") not in ("1", "true", "yes"):
        text, size = log_tail(path, lines)
        return jsonify(job=job_id, stream=which, text=text, size=size, exists=path.exists())

    def follow():
        text, offset = log_tail(path, lines)
        if text:
            yield _event("log", {"text": text})
        deadline = time.monotonic() + STREAM_SECONDS
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            chunk, offset = _read_from(path, offset)
            if chunk:
                yield _event("log", {"text": chunk})
                quiet_since = time.monotonic()
            else:
                current = jobs.registry.get(job_id)
                if current and current["state"] not in ACTIVE_STATES:
                    chunk, offset = _read_from(path, offset)
                    if chunk:
                        yield _event("log", {"text": chunk})
                    yield _event("end", {"state": current["state"]})
                    return
                if time.monotonic() - quiet_since > 15:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                jobs.refresh()
                time.sleep(0.5)
    return _sse(follow())


def _read_from(path: Path, offset: int) -> tuple[str, int]:
    try:
        # Not through a symlink put there after the path was checked.
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size < offset:
                offset = 0
            handle.seek(offset)
            data = handle.read(min(size - offset, 1024 * 1024))
    except OSError:  # not there yet, or a symlink
        return "", offset
    end = data.rfind(b"\n") + 1  # whole lines only; the rest comes with the next read
    return data[:end].decode("utf-8", "replace"), offset + end


@blueprint.get("/jobs/<job_id>/outputs")
def job_outputs(job_id: str):
    """Files the run wrote (a Savu job's run folder, a code job's ``output/``), as <root>/<path> names the
    file browser understands; at most OUTPUTS_LISTED."""
    job = _job_or_404(job_id)
    roots = hebi("context").roots
    run_dir = service().job_file(job["run_dir"], "run folder")
    top = run_dir / "output" if job["kind"] == "code" else run_dir
    files = []
    if top.is_dir():
        for folder, subfolders, names in os.walk(top):
            subfolders[:] = sorted(name for name in subfolders if name != JOB_FOLDER)
            for name in sorted(names):
                path = Path(folder) / name
                try:
                    ref = roots.to_ref(path)  # a symlink leading out of the roots is not listed
                    stat = path.stat()
                except (OSError, SandboxError):
                    continue
                files.append({"path": ref, "size": stat.st_size, "modified": int(stat.st_mtime)})
                if len(files) >= OUTPUTS_LISTED:
                    break
            if len(files) >= OUTPUTS_LISTED:
                break
    return jsonify(job=job_id, run_folder=_ref_or_none(roots, str(run_dir)), exists=run_dir.is_dir(), files=files)


#: A notebook's HTML is the user's (or whoever wrote the notebook's) content: shown in a sandbox, a
#: unique origin that runs no script and loads nothing but the pictures inside it.
NOTEBOOK_POLICY = ("sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline' data:; font-src data:; "
                   "form-action 'none'; frame-ancestors 'self'")


@blueprint.get("/jobs/<job_id>/notebook")
def job_notebook(job_id: str):
    """A notebook job's executed notebook as HTML (made by the job beside the .ipynb in output/)."""
    job = _job_or_404(job_id)
    if job["kind"] != "code" or job["summary"].get("language") != "notebook":
        abort(404, description="this job ran no notebook")
    entry = Path(job["summary"].get("entry") or "notebook.ipynb")
    page = service().job_file(Path(job["run_dir"]) / "output" / entry.with_suffix(".html").name, "notebook")
    if not page.is_file():
        abort(404, description="the notebook has not been kept as HTML (yet): the job is still running, or failed "
                               "before it ran")
    response = Response(page.read_bytes(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = NOTEBOOK_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.get("/cluster")
def cluster():
    jobs = service()
    refused = code_refusal(hebi("context"), hebi("config").jobs)
    return jsonify(modes=jobs.availability(), code={"available": not refused, **({"reason": refused} if refused else {})})


@blueprint.get("/jobs/events")
def job_events():
    """Server-sent events: one ``job`` event per change of a job (its whole public form). Resumes from
    ``Last-Event-ID`` (or ``?after=``); without one it starts with the jobs changed from now on."""
    jobs = service()
    last = request.headers.get("Last-Event-ID") or request.args.get("after")
    try:
        after = int(last) if last else jobs.registry.last_change()
    except ValueError:
        abort(400, description="Last-Event-ID must be a number")

    def stream():
        nonlocal after
        yield "retry: 2000\n\n"
        deadline = time.monotonic() + STREAM_SECONDS
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            jobs.refresh()
            changed = jobs.registry.changed_since(after)
            for job in changed:
                after = max(after, job["change"])
                yield _event("job", public(job), event_id=job["change"])
            if changed:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 15:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            with jobs.changed:
                jobs.changed.wait(timeout=min(1.0, jobs.config.poll_interval))
    return _sse(stream())


def _event(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


def _sse(generator) -> Response:
    response = Response(stream_with_context(generator), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx must pass events on at once
    return response


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    value = request.args.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        abort(400, description=f"'{name}' must be a whole number")
    if not low <= number <= high:
        abort(400, description=f"'{name}' must be between {low} and {high}")
    return number
