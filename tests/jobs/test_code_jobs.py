"""A scientist's own Python project as a job (kind "code"), in-process on the local backend: it runs
where the session is isolated as the user and is refused where it is not; a folder or a zip becomes a
run folder with output/ and input/; requirements come from the facility's wheelhouse into a cached
environment; unsafe archives are refused and leave nothing behind; failures, cancel and the time limit
read as they do for Savu jobs; an old registry is brought forward with its jobs."""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import time
import zipfile
from pathlib import Path

import pytest
from code_support import OCTAVE_PROJECT, PLOT, WHEEL_PACKAGE, notebook, octave_result, require_octave, write_project
from conftest import signed_client
from jobs_support import dataset, wait_ended, write_session

from hebi_common.config import load_config
from hebi_common.sandbox import Roots
from hebi_common.session import SessionContext

CODE = ("import os, pathlib\n"
        "data = sorted(os.listdir('input')) if os.path.isdir('input') else []\n"
        "pathlib.Path('output/result.txt').write_text('read ' + ','.join(data))\n"
        "print('done')\n")


def make_client(base: Path, *, isolated: bool = True, **code):
    from hebi_api.app import create_app
    config = load_config(write_session(base, "local", code={"allow_unisolated": False, **code}), environ={})
    context = SessionContext(user="alice", home="", secret="s", roots=Roots.from_config(config.session.roots, "alice"),
                             state_dir=Path(config.session.state_dir.replace("{user}", "alice")), isolated=isolated)
    return signed_client(create_app(config, context), context)


@pytest.fixture
def session(tmp_path):
    client = make_client(tmp_path)
    dataset(tmp_path, "scan.nxs", seconds=0.1)
    write_project(tmp_path / "roots" / "processing" / "project", {"code.py": CODE})
    return tmp_path, client


def submit(client, **fields):
    body = {"kind": "code", "project": "processing/project", "output": "output/mine", "mode": "full", **fields}
    return client.post("/api/jobs", json=body)


def run_ok(client, **fields) -> dict:
    answer = submit(client, **fields)
    assert answer.status_code == 201, answer.get_json()
    job = wait_ended(client, answer.get_json()["id"], 60)
    assert job["state"] == "finished", job
    return job


def log(client, job: dict, stream: str = "stderr") -> str:
    return client.get(f"/api/jobs/{job['id']}/log", query_string={"stream": stream, "lines": 200}).get_json()["text"]


def test_a_project_folder_runs_with_its_data_and_writes_its_output(session):
    base, client = session
    job = run_ok(client, data="data/scan.nxs")
    assert job["kind"] == "code" and job["project"] == "processing/project"
    assert job["entry"] == "code.py" and job["language"] == "python" and job["dataset"] == "data/scan.nxs"
    run = base / "roots" / job["run_folder"]
    assert (run / "output" / "result.txt").read_text() == "read scan.nxs"
    assert (base / "roots" / "processing" / "project").exists() and not (
        base / "roots" / "processing" / "project" / "output").exists(), "the project itself is left as it was"
    assert "done" in log(client, job, "stdout")
    listed = client.get("/api/jobs").get_json()["jobs"]
    assert [j["kind"] for j in listed] == ["code"]


def test_requirements_come_from_the_wheelhouse_and_the_environment_is_reused(session):
    base, client = session
    write_project(base / "roots" / "processing" / "project", {
        "requirements.txt": "hebi-probe==1.0\n",
        "code.py": f"import {WHEEL_PACKAGE}, numpy\nopen('output/value.txt', 'w').write({WHEEL_PACKAGE}.VALUE)\n"})
    first = run_ok(client)
    assert (base / "roots" / first["run_folder"] / "output" / "value.txt").read_text() == "from the wheelhouse 1.0"
    assert "made in" in log(client, first)
    second = run_ok(client)
    assert "already made, reused" in log(client, second)
    assert len([p for p in (base / "roots" / "output" / ".hebi" / "envs").iterdir() if not p.name.startswith(".")]) == 1


def test_a_package_the_wheelhouse_lacks_is_named(session):
    base, client = session
    write_project(base / "roots" / "processing" / "project", {"requirements.txt": "no-such-package-here\n"})
    answer = submit(client)
    job = wait_ended(client, answer.get_json()["id"], 60)
    assert job["state"] == "failed"
    assert "'no-such-package-here' cannot be found" in job["message"], job["message"]


def test_a_zip_of_a_folder_runs_from_inside_its_top_folder(session):
    base, client = session
    with zipfile.ZipFile(base / "roots" / "processing" / "project.zip", "w") as archive:
        archive.writestr("project/app.py", CODE)
        archive.writestr("project/input/notes.txt", "mine")
    job = run_ok(client, project="processing/project.zip")
    assert job["entry"] == "app.py"
    assert (base / "roots" / job["run_folder"] / "output" / "result.txt").read_text() == "read notes.txt"


def test_a_failing_program_says_why(session):
    base, client = session
    write_project(base / "roots" / "processing" / "project", {"code.py": "raise ValueError('the angle is wrong')\n"})
    job = wait_ended(client, submit(client).get_json()["id"], 60)
    assert job["state"] == "failed" and job["end"]["exit_code"] == 1
    assert job["message"] == "ValueError: the angle is wrong"


def test_an_octave_script_runs_with_its_functions_and_data_and_writes_only_output(session):
    """A MATLAB-style project (app.m and a function file beside it), found as the entry point without
    being named, run with GNU Octave; its write beside output/ is refused by the kernel."""
    require_octave()
    base, client = session
    project = base / "roots" / "processing" / "octave"
    write_project(project, OCTAVE_PROJECT)
    job = run_ok(client, project="processing/octave", data="data/scan.nxs")
    assert job["entry"] == "app.m" and job["language"] == "octave"
    run = base / "roots" / job["run_folder"]
    assert (run / "output" / "result.txt").read_text() == octave_result("scan.nxs")
    assert not (run / "escaped.txt").exists()
    printed = log(client, job, "stdout")
    assert "octave 7" in printed or "octave 8" in printed
    assert "not used for an Octave script" in log(client, job)


def test_a_failing_octave_script_fails_the_job_with_its_error(session):
    require_octave()
    base, client = session
    write_project(base / "roots" / "processing" / "octave", {"main.m": "x = 3;\nerror('the angle %d is wrong', x);\n"})
    job = wait_ended(client, submit(client, project="processing/octave").get_json()["id"], 60)
    assert job["state"] == "failed" and job["end"]["exit_code"] == 1
    assert job["message"] == "error: the angle 3 is wrong"


def test_where_octave_is_not_installed_the_job_says_so(tmp_path):
    client = make_client(tmp_path, octave="octave-not-installed")
    write_project(tmp_path / "roots" / "processing" / "octave", {"app.m": "disp(1)\n"})
    job = wait_ended(client, submit(client, project="processing/octave").get_json()["id"], 60)
    assert job["state"] == "failed"
    assert "GNU Octave (octave-not-installed) is not installed where this job ran" in job["message"]


def test_cancel_and_the_time_limit_stop_the_program(session):
    base, client = session
    sleeper = "import time\nprint('started', flush=True)\ntime.sleep(120)\n"
    write_project(base / "roots" / "processing" / "project", {"code.py": sleeper})
    running = submit(client).get_json()
    deadline = time.monotonic() + 30
    while "started" not in log(client, running, "stdout") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.post(f"/api/jobs/{running['id']}/cancel").status_code == 200
    assert wait_ended(client, running["id"], 30)["state"] == "cancelled"
    limited = wait_ended(client, submit(client, resources={"time_limit": 2}).get_json()["id"], 60)
    assert limited["state"] == "timeout"


def test_code_is_refused_where_the_session_runs_as_the_service_account(tmp_path):
    client = make_client(tmp_path, isolated=False)
    write_project(tmp_path / "roots" / "processing" / "project", {"code.py": CODE})
    answer = submit(client)
    assert answer.status_code == 403
    assert "service's account" in answer.get_json()["error"]
    assert client.get("/api/jobs").get_json()["total"] == 0
    assert not (tmp_path / "roots" / "output" / "mine").exists()
    allowed = make_client(tmp_path / "demo", isolated=False, allow_unisolated=True)
    write_project(tmp_path / "demo" / "roots" / "processing" / "project", {"code.py": CODE})
    assert submit(allowed).status_code == 201


def zip_with(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)


def symlink_entry(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.create_system = 3
    return info


@pytest.mark.parametrize("entries, words", [
    ([("../outside.py", b"x"), ("code.py", b"")], "leads out of the project"),
    ([("/etc/cron.d/x", b"x")], "is not a name inside the project"),
    ([("a\\..\\..\\x.py", b"x")], "is not a name inside the project"),
    ([("bad\nname.py", b"x")], "control characters"),
    ([(symlink_entry("code.py", "/etc/passwd"), b"/etc/passwd")], "symbolic link"),
    ([("code.py", b"1"), ("code.py", b"2")], "in it twice"),
    ([(f"f{i}.py", b"") for i in range(30)], "more than 20 files"),
    ([("code.py", b""), ("big.bin", b"\0" * (3 * 1024 * 1024))], "more than 2 MB"),
    ([("x" * 300 + ".py", b"")], "longer than 255 bytes"),
])
def test_an_unsafe_zip_is_refused_and_leaves_nothing(tmp_path, entries, words):
    client = make_client(tmp_path, max_files=20, max_mb=2)
    archive = tmp_path / "roots" / "processing" / "project.zip"
    with pytest.warns(UserWarning) if words == "in it twice" else contextlib.nullcontext():
        zip_with(archive, entries)
    answer = submit(client, project="processing/project.zip")
    assert answer.status_code == 400, answer.get_json()
    assert words in answer.get_json()["error"]
    assert client.get("/api/jobs").get_json()["total"] == 0
    output = tmp_path / "roots" / "output" / "mine"
    assert [p.name for p in output.iterdir()] == [] if output.exists() else True
    assert not list((tmp_path / "roots" / "output").glob("**/.hebi-unpack-*"))


def test_a_zip_that_lies_about_its_sizes_is_stopped_as_it_unpacks(tmp_path):
    client = make_client(tmp_path, max_mb=5)
    archive = tmp_path / "roots" / "processing" / "project.zip"
    zip_with(archive, [("code.py", b""), ("bomb.bin", b"\0" * (1024 * 1024))])
    data = bytearray(archive.read_bytes())
    # Both headers of bomb.bin say 10 bytes: the central directory's uncompressed size, and the local one.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (10).to_bytes(4, "little")
    local = data.find(b"PK\x03\x04", data.find(b"bomb.bin") - 40)
    data[local + 22:local + 26] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    answer = submit(client, project="processing/project.zip")
    assert answer.status_code == 400
    assert "cannot be unpacked" in answer.get_json()["error"] or "more than it says" in answer.get_json()["error"]
    assert not list((tmp_path / "roots" / "output").glob("**/.hebi-unpack-*"))


def test_a_project_folder_holding_a_link_is_refused(session):
    base, client = session
    os.symlink("/etc/passwd", base / "roots" / "processing" / "project" / "passwd")
    answer = submit(client)
    assert answer.status_code == 400 and "symbolic link" in answer.get_json()["error"]
    assert client.get("/api/jobs").get_json()["total"] == 0
    assert list((base / "roots" / "output" / "mine").iterdir()) == []


@pytest.mark.parametrize("fields, status, words", [
    ({"entry": "../code.py"}, 400, "a path inside the project"),
    ({"entry": "/etc/passwd"}, 400, "a path inside the project"),
    ({"entry": "missing.py"}, 400, "has no file missing.py"),
    ({"entry": "app.m"}, 400, "has no file app.m"),
    ({"entry": "notes.txt"}, 400, "an Octave script (.m)"),
    ({"project": "processing/nothing"}, 404, "does not exist"),
    ({"project": "data/scan.nxs"}, 400, "is a file"),
    ({"output": "data/out"}, 403, "read-only"),
    ({"kind": "matlab"}, 400, "unknown job kind"),
    ({"process_list": "processing/tomo.nxs"}, 400, "unknown field 'process_list'"),
])
def test_a_bad_code_submission_is_refused_clearly(session, fields, status, words):
    base, client = session
    answer = submit(client, **fields)
    assert answer.status_code == status, answer.get_json()
    assert words in answer.get_json()["error"]
    assert client.get("/api/jobs").get_json()["total"] == 0


def test_code_jobs_are_not_batched(session):
    base, client = session
    body = {"kind": "code", "project": "processing/project", "output": "output/mine", "mode": "full"}
    answer = client.post("/api/jobs/batch", json={"jobs": [body]})
    assert answer.status_code == 400 and "one at a time" in answer.get_json()["error"]


def test_an_old_registry_keeps_its_jobs_and_takes_code_jobs(session):
    from hebi_api.jobs.registry import MIGRATIONS, VERSION_1, JobRegistry
    base, client = session
    path = base / "old" / "jobs.sqlite3"
    path.parent.mkdir()
    old = sqlite3.connect(path)
    old.executescript(VERSION_1)  # as the first releases left it: no user_version
    old.execute("INSERT INTO jobs (id, name, mode, backend, state, submitted_at, updated_at, process_list, dataset,"
                " output, job_dir) VALUES ('old1', 'tomo', 'full', 'local', 'finished', 1, 1, 'processing/tomo.nxs',"
                " 'data/scan.nxs', 'output/runs', '/nowhere')")
    old.commit()
    old.close()
    registry = JobRegistry(path)
    job = registry.get("old1")
    assert job["kind"] == "savu" and job["process_list"] == "processing/tomo.nxs" and job["state"] == "finished"
    registry.add({"id": "new1", "kind": "code", "name": "p", "mode": "full", "backend": "local", "state": "queued",
                  "submitted_at": 2, "source": "processing/project", "output": "output/mine", "job_dir": "/x"})
    assert registry.get("new1")["dataset"] is None
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    check.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    check.commit()
    check.close()
    with pytest.raises(RuntimeError, match="newer than this API knows"):
        JobRegistry(path)


def test_the_outputs_of_a_code_job_are_what_it_wrote_under_output(session):
    base, client = session
    job = run_ok(client, data="data/scan.nxs")
    outputs = client.get(f"/api/jobs/{job['id']}/outputs").get_json()
    assert [f["path"] for f in outputs["files"]] == [f"{job['run_folder']}/output/result.txt"]


def test_a_notebook_runs_with_its_parameters_and_is_kept_executed_and_as_html(session):
    base, client = session
    (base / "roots" / "processing" / "angles.ipynb").write_text(PLOT)
    job = run_ok(client, project="processing/angles.ipynb", parameters={"angle": 3, "title": "from hebi"})
    assert job["language"] == "notebook" and job["entry"] == "angles.ipynb"
    assert job["parameters"] == {"angle": 3, "title": "from hebi"}
    output = base / "roots" / job["run_folder"] / "output"
    assert (output / "plot.png").read_bytes().startswith(b"\x89PNG")
    executed = (output / "angles.ipynb").read_text()
    assert "injected-parameters" in executed and "plotted 3 from hebi" in executed
    page = client.get(f"/api/jobs/{job['id']}/notebook")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "plotted 3 from hebi" in page.get_data(as_text=True)
    assert page.headers["Content-Security-Policy"].startswith("sandbox;")  # its scripts never run in hebi's origin
    listed = [f["path"].rsplit("/", 1)[-1] for f in client.get(f"/api/jobs/{job['id']}/outputs").get_json()["files"]]
    assert sorted(listed) == ["angles.html", "angles.ipynb", "plot.png"]


def test_an_entry_of_any_case_runs_in_its_language(session):
    """The API takes "Angles.IPYNB" as a notebook; the runner must run it as one (it once ran it with
    Python, which failed on its JSON)."""
    base, client = session
    (base / "roots" / "processing" / "Angles.IPYNB").write_text(PLOT)
    job = run_ok(client, project="processing/Angles.IPYNB", parameters={"angle": 2, "title": "case"})
    assert job["language"] == "notebook"
    output = base / "roots" / job["run_folder"] / "output"
    assert "plotted 2 case" in (output / "Angles.IPYNB").read_text()


def kernel_folders() -> set[Path]:
    return {found for base in ("/dev/shm", "/tmp") for found in Path(base).glob("hebi-kernel-*")}


def test_a_notebook_job_leaves_no_folder_behind_outside_its_own(session):
    """The kernel's sockets folder is outside the job's (a socket's path must be short) and the job is
    confined when it ends: it must still remove it (it used to leave one in /tmp per notebook)."""
    base, client = session
    (base / "roots" / "processing" / "angles.ipynb").write_text(PLOT)
    before = kernel_folders()
    run_ok(client, project="processing/angles.ipynb", parameters={"angle": 1, "title": "t"})
    assert kernel_folders() - before == set()


def test_a_failing_notebook_fails_the_job_with_its_error_and_is_still_kept(session):
    base, client = session
    (base / "roots" / "processing" / "broken.ipynb").write_text(notebook(
        ("code", "print('before')", []), ("code", "1 / 0", []), ("code", "print('never')", [])))
    job = wait_ended(client, submit(client, project="processing/broken.ipynb").get_json()["id"], 120)
    assert job["state"] == "failed"
    assert job["message"].startswith("ZeroDivisionError"), job["message"]
    html = client.get(f"/api/jobs/{job['id']}/notebook").get_data(as_text=True)
    assert "before" in html and "ZeroDivisionError" in html


@pytest.mark.parametrize("fields, words", [
    ({"parameters": {"angle": 1}}, "'parameters' are for notebooks"),
    ({"project": "processing/angles.ipynb", "parameters": {"not a name": 1}}, "is not a Python name"),
    ({"project": "processing/angles.ipynb", "parameters": {"class": 1}}, "is not a Python name"),
    ({"project": "processing/angles.ipynb", "parameters": [1, 2]}, "must be an object"),
    ({"project": "processing/angles.ipynb", "parameters": {"big": "x" * 70000}}, "larger than 64 KiB"),
    ({"project": "processing/angles.ipynb", "entry": "other.ipynb"}, "it is the entry point"),
])
def test_bad_notebook_parameters_are_refused(session, fields, words):
    base, client = session
    (base / "roots" / "processing" / "angles.ipynb").write_text(PLOT)
    answer = submit(client, **fields)
    assert answer.status_code == 400 and words in answer.get_json()["error"], answer.get_json()
    assert client.get("/api/jobs").get_json()["total"] == 0


def test_a_python_job_has_no_notebook_page(session):
    base, client = session
    job = run_ok(client)
    assert client.get(f"/api/jobs/{job['id']}/notebook").status_code == 404


def test_a_cancelled_notebook_leaves_no_kernel_behind(session):
    import psutil
    base, client = session
    (base / "roots" / "processing" / "slow.ipynb").write_text(notebook(
        ("code", "import time\nprint('started', flush=True)\ntime.sleep(300)", [])))
    job = submit(client, project="processing/slow.ipynb").get_json()
    run = str(base / "roots" / job["run_folder"])

    def kernels():
        found = []
        for process in psutil.process_iter(["cmdline", "cwd"]):
            if "ipykernel_launcher" in " ".join(process.info["cmdline"] or []) and (process.info["cwd"] or "") == run:
                found.append(process)
        return found
    deadline = time.monotonic() + 60
    while "started" not in log(client, job, "stdout") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kernels(), "the notebook's kernel runs in the run folder"
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    assert wait_ended(client, job["id"], 30)["state"] == "cancelled"
    deadline = time.monotonic() + 10
    while kernels() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not kernels(), "the kernel outlived its cancelled job"


ESCAPES = ("import json, os, pathlib\n"
           "tries = {'run folder': '../escaped.txt', 'own processing root': PROCESSING + '/written-by-code.txt',\n"
           "         'project copy': 'code.py'}\n"
           "report = {}\n"
           "for what, path in tries.items():\n"
           "    try:\n"
           "        open(path, 'a').write('x')\n"
           "        report[what] = 'written'\n"
           "    except OSError as error:\n"
           "        report[what] = type(error).__name__\n"
           "try:\n"
           "    os.remove(INPUT_DATA)\n"
           "    report['remove data'] = 'removed'\n"
           "except OSError as error:\n"
           "    report['remove data'] = type(error).__name__\n"
           "pathlib.Path('output/report.json').write_text(json.dumps(report))\n")


def test_the_kernel_keeps_a_program_from_writing_outside_output(session):
    """Landlock: the program writes its results under output/, and nowhere else in the user's own
    folders - not their process lists, not their data, not the run folder, not the project's copy."""
    base, client = session
    processing = base / "roots" / "processing"
    write_project(processing / "project", {"code.py": f"PROCESSING = {str(processing)!r}\n"
                                                      f"INPUT_DATA = {str(base / 'roots' / 'data' / 'scan.nxs')!r}\n"
                                                      + ESCAPES})
    job = run_ok(client, data="data/scan.nxs")
    report = json.loads((base / "roots" / job["run_folder"] / "output" / "report.json").read_text())
    assert report == {"run folder": "PermissionError", "own processing root": "PermissionError",
                      "project copy": "PermissionError", "remove data": "PermissionError"}, report
    assert not (processing / "written-by-code.txt").exists() and (base / "roots" / "data" / "scan.nxs").exists()
    assert "the kernel enforces it" in log(client, job)
