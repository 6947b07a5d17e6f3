"""A scientist's jobs on each backend - the local pool, real GridEngine through DRMAA, real Slurm - through
the session's API running as a real process: preview and full runs, failures, cancel, the time limit,
restarts of the API, a scheduler that goes away and comes back, and a long job list.

The job command is a stand-in for Savu (fake_savu.py) that behaves as its dataset file says.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests
from code_support import OCTAVE_PROJECT, PLOT, octave_result, require_octave, write_project
from jobs_support import CLUSTER_KINDS, ApiProcess, ClusterKind, _script, dataset, gridengine, slurm, write_session  # noqa: F401 - session fixtures, used through request.getfixturevalue
from support_kube import kube_jobs_cluster  # noqa: F401 - the kubernetes kind's session fixture
from support_slurmrest import slurmrest  # noqa: F401 - session fixture, used through request.getfixturevalue
from support_ssh import sshd  # noqa: F401 - the ssh kinds' session fixture

from hebi_common.savu.process_list import read_process_list


def placement(cluster, job: dict, timeout: float = 20) -> dict:
    """Where the job ran, as the job itself saw it (the scheduler's own environment variables)."""
    path = run_folder(cluster, job) / "placement.json"
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return json.loads(path.read_text())
ACTIVE = {"submitting", "queued", "running"}


class Cluster:
    def __init__(self, kind: ClusterKind, base: Path, api: ApiProcess):
        self.kind = kind
        self.name = kind.name
        self.base = base
        self.api = api
        self.timeout_job: dict | None = None


@pytest.fixture(scope="module", params=list(CLUSTER_KINDS))
def cluster(request):
    name = request.param
    kind = CLUSTER_KINDS[name]
    base = Path(tempfile.mkdtemp(prefix=f"hebi-jobs-{name}-", dir="/tmp"))
    env, jobs = kind.setup(request, base)
    api = ApiProcess(write_session(base, name, **jobs), env).start()
    try:
        yield Cluster(kind, base, api)
    finally:
        api.close(request, name)
        shutil.rmtree(base, ignore_errors=True)


def run_folder(cluster: Cluster, job: dict) -> Path:
    return cluster.base / "roots" / job["run_folder"]


def test_preview_runs_a_copy_keeping_the_chosen_central_slices(cluster):
    """Submitted first, checked to the end by the last test: the preview that outlives its time limit."""
    api = cluster.api
    job = api.submit(dataset(cluster.base, "long.nxs", seconds=300, steps=300), mode="preview", preview=3,
                     resources={"time_limit": cluster.kind.time_limit})
    cluster.timeout_job = job
    assert job["mode"] == "preview" and job["state"] in ACTIVE
    assert job["preview"] == [":", "mid-1:mid+2", ":"]
    running = api.wait(job["id"], "running", timeout=60)
    assert running["started_at"] is not None
    given = run_folder(cluster, job) / "preview.json"
    deadline = time.monotonic() + 20
    while not given.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert json.loads(given.read_text()) == [":", "mid-1:mid+2", ":"], "the job did not get the preview copy"
    assert placement(cluster, job) == {"queue": cluster.kind.queues[0], "mode": "preview", "cores": 1}
    original = read_process_list(cluster.base / "roots" / "processing" / "tomo.nxs")
    assert original.plugins[0].params["preview"] == [":", "0:2", ":"], "the user's own list must stay as it was"


def test_full_job_runs_the_list_as_it_is_and_finishes_with_outputs(cluster):
    api = cluster.api
    cores = cluster.kind.full_cores
    job = api.submit(dataset(cluster.base, "quick.nxs", seconds=1, steps=4), mode="full",
                     resources={"cores": cores})
    done = api.wait(job["id"], {"finished", "failed", "lost"}, timeout=90)
    assert done["state"] == "finished", done
    assert done["end"]["exit_code"] == 0 and done["end"]["reason"] == "finished"
    assert done["progress"] == 100.0
    assert done["end"]["wall_time"] is not None and done["end"]["wall_time"] >= 0
    assert json.loads((run_folder(cluster, job) / "preview.json").read_text()) == [":", "0:2", ":"]
    assert placement(cluster, job) == {"queue": cluster.kind.queues[1], "mode": "full", "cores": cores}
    outputs = api.get(f"/api/jobs/{job['id']}/outputs").json()
    names = {entry["path"].rsplit("/", 1)[-1] for entry in outputs["files"]}
    assert {"result_processed.nxs", "user.log"} <= names
    assert all(entry["path"].startswith(done["run_folder"] + "/") for entry in outputs["files"])
    stdout = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stdout"}).json()
    assert "fake savu:" in stdout["text"]
    user_log = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "user", "lines": 3}).json()
    assert "Processing Complete" in user_log["text"] and len(user_log["text"].splitlines()) == 3


def test_a_failing_run_reports_its_exit_code_stderr_and_reason(cluster):
    api = cluster.api
    crash = "Traceback (most recent call last):\n  File \"savu\", line 1\nKeyError: 'tomo' is not in the data file"
    job = api.submit(dataset(cluster.base, "broken.nxs", seconds=0.2, exit=3, stderr=crash))
    done = api.wait(job["id"], {"finished", "failed", "lost"}, timeout=90)
    assert done["state"] == "failed" and done["end"]["exit_code"] == 3, done
    assert "KeyError: 'tomo' is not in the data file" in done["message"], done
    stderr = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stderr"}).json()
    assert "Traceback" in stderr["text"]


def test_names_with_quotes_brackets_and_scheduler_patterns_run_and_are_kept(cluster):
    """Commands are argument lists: a job name and file names with quotes, brackets, spaces, and what
    GridEngine ($JOB_ID) or Slurm (%j) would expand in a log path, run as they are (issue 9 #18)."""
    api = cluster.api
    odd = "it's (a) [test] $JOB_ID %j \"q\" $(id)"
    shutil.copy(cluster.base / "roots" / "processing" / "tomo.nxs", cluster.base / "roots" / "processing" / f"{odd}.nxs")
    job = api.submit(dataset(cluster.base, f"{odd}.nxs", seconds=0.2, steps=1), output=f"output/{odd}", name=odd,
                     process_list=f"processing/{odd}.nxs")
    done = api.wait(job["id"], {"finished", "failed", "lost"}, timeout=90)
    assert done["state"] == "finished", done
    assert done["name"] == odd and done["run_folder"].startswith(f"output/{odd}/")
    assert (run_folder(cluster, done) / "result_processed.nxs").exists()
    stdout = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stdout"}).json()
    assert f"data/{odd}.nxs" in stdout["text"]


def test_cancel_ends_a_running_job(cluster):
    api = cluster.api
    job = api.submit(dataset(cluster.base, "cancel-me.nxs", seconds=120, steps=120))
    api.wait(job["id"], "running", timeout=60)
    # "running" is the scheduler's word: the job's process may not have started yet (Slurm reports a
    # job running once it has its node). Cancel once it is really writing its log.
    log = (run_folder(cluster, job) / "run_log" / "user.log")
    deadline = time.monotonic() + 60
    while not (log.exists() and log.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert log.exists(), "the running job never wrote its user.log"
    answer = api.post(f"/api/jobs/{job['id']}/cancel")
    assert answer.status_code == 200 and answer.json()["cancel_requested"]
    done = api.wait(job["id"], {"cancelled", "failed", "finished", "lost"}, timeout=60)
    assert done["state"] == "cancelled", done
    size = log.stat().st_size
    time.sleep(2.5)
    assert log.stat().st_size == size, "the cancelled job is still writing its log"


def test_api_restart_reattaches_running_jobs_and_resolves_ended_ones(cluster):
    api = cluster.api
    running = api.submit(dataset(cluster.base, "survivor.nxs", seconds=8, steps=8))
    api.wait(running["id"], "running", timeout=60)
    short = api.submit(dataset(cluster.base, "short.nxs", seconds=0.5, steps=1))
    api.kill()  # a crash: nobody watches while the short job ends
    time.sleep(5)
    api.start()
    listed = {job["id"] for job in api.get("/api/jobs").json()["jobs"]}
    assert {running["id"], short["id"]} <= listed
    assert api.job(running["id"])["state"] in {"running", "finished"}
    ended = api.wait(short["id"], {"finished", "failed", "lost", "cancelled"}, timeout=60)
    assert ended["state"] == "finished" and ended["end"]["exit_code"] == 0, ended
    survivor = api.wait(running["id"], {"finished", "failed", "lost", "cancelled"}, timeout=90)
    assert survivor["state"] == "finished" and survivor["end"]["exit_code"] == 0, survivor
    assert survivor["progress"] == 100.0


def test_two_hundred_jobs_are_listed_newest_first(cluster):
    api = cluster.api
    data = dataset(cluster.base, "many.nxs", seconds=60, steps=1)
    ids = [api.submit(data, output="output/many")["id"] for _ in range(200)]
    answer = api.get("/api/jobs", params={"limit": 1000})
    assert answer.status_code == 200
    listing = answer.json()
    ours = [job for job in listing["jobs"] if job["id"] in set(ids)]
    assert len(ours) == 200
    assert [job["id"] for job in ours] == list(reversed(ids)), "newest first"
    assert all(job["state"] in {"queued", "running"} for job in ours)
    queued = api.get("/api/jobs", params={"state": "queued", "limit": 1000}).json()["jobs"]
    assert queued and all(job["state"] == "queued" for job in queued)
    assert api.get("/api/jobs", params={"limit": 10, "offset": 5}).json()["jobs"][0]["id"] == listing["jobs"][5]["id"]
    for job_id in ids:
        assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        active = api.get("/api/jobs", params={"state": "submitting,queued,running", "limit": 1000}).json()["jobs"]
        if not [job for job in active if job["id"] in set(ids)]:
            break
        time.sleep(0.5)
    states = {job["state"] for job in api.get("/api/jobs", params={"limit": 1000}).json()["jobs"] if job["id"] in set(ids)}
    assert states == {"cancelled"}, states


def test_a_sweep_is_submitted_in_one_request_and_a_bad_job_in_it_submits_none(cluster):
    api = cluster.api
    data = dataset(cluster.base, "sweep.nxs", seconds=0.2, steps=1)
    body = {"process_list": "processing/tomo.nxs", "dataset": data, "output": "output/sweep", "mode": "full"}
    before = api.get("/api/jobs", params={"limit": 1}).json()["total"]
    refused = api.post("/api/jobs/batch", json={"jobs": [dict(body, name="fine"), dict(body, mode="fast")]})
    assert refused.status_code == 400 and refused.json()["error"].startswith("job 1: unknown mode"), refused.text
    assert refused.json()["index"] == 1
    assert api.get("/api/jobs", params={"limit": 1}).json()["total"] == before, "a refused batch submits nothing"
    answer = api.post("/api/jobs/batch", json={"jobs": [dict(body, name=f"sweep {n}") for n in range(5)]})
    assert answer.status_code == 201, answer.text
    submitted = answer.json()["jobs"]
    assert [job["name"] for job in submitted] == [f"sweep {n}" for n in range(5)]
    assert all(job["scheduler_id"] and job["state"] in {"queued", "running", "finished"} for job in submitted)
    assert len({job["scheduler_id"] for job in submitted}) == 5
    for job in submitted:
        done = api.wait(job["id"], {"finished", "failed", "lost"}, timeout=120)
        assert done["state"] == "finished", done
        assert (run_folder(cluster, done) / "result_processed.nxs").exists()


@pytest.mark.parametrize("cluster", ["drmaa", "slurm"], indirect=True)  # the local backend has no scheduler
def test_scheduler_stopped_and_started_loses_nothing(cluster):
    """Slurm: only the controller stops (as in a controller blip); the job runs on and is seen to finish.
    GridEngine: the whole scheduler stops, killing the job (GridEngine 8.1.9 here loses the end of jobs
    that run across a restart of its daemons, so a blip cannot be tested reliably); the job must end in
    a definite state from GridEngine's accounting, never stay "running" or unknown."""
    api = cluster.api
    seconds = 120 if cluster.name == "drmaa" else 12
    job = api.submit(dataset(cluster.base, "through-blip.nxs", seconds=seconds, steps=seconds))
    api.wait(job["id"], "running", timeout=60)
    deadline = time.monotonic() + 30
    while not api.job(job["id"])["progress"] and time.monotonic() < deadline:
        time.sleep(0.3)  # truly running on its host (its user.log advances), not just dispatched
    script, stop = ("gridengine.sh", "stop") if cluster.name == "drmaa" else ("slurm.sh", "stop-controller")
    before = api.get("/api/jobs", params={"limit": 1}).json()["total"]
    assert _script(script, stop).returncode == 0
    try:
        refused = api.post("/api/jobs", json={"process_list": "processing/tomo.nxs", "mode": "full",
                                              "dataset": "data/through-blip.nxs", "output": "output/runs"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"].startswith("cluster unavailable")
        time.sleep(0.5)
        listing = api.get("/api/jobs").json()
        assert listing["total"] == before, "a refused submission must leave no job behind"
        assert listing["cluster"]["available"] is False
        # Still listed with its last known state (GridEngine's stop may have ended it just before)
        last = next(item for item in listing["jobs"] if item["id"] == job["id"])["state"]
        assert last in ({"running", "failed"} if cluster.name == "drmaa" else {"running"})
        modes = api.get("/api/cluster").json()["modes"]
        assert not any(mode["available"] for mode in modes) and all(mode["reason"] for mode in modes)
    finally:
        started = _script(script, "start")
        assert started.returncode == 0, started.stderr
    done = api.wait(job["id"], {"finished", "failed", "lost", "cancelled", "timeout"}, timeout=120)
    if cluster.name == "drmaa":
        assert done["state"] == "failed" and "killed by GridEngine" in done["message"], done
        assert done["end"]["signal"] == "SIGKILL"
    else:
        assert done["state"] == "finished" and done["end"]["exit_code"] == 0, done
    assert api.get("/api/jobs").json()["cluster"]["available"] is True
    again = api.submit(dataset(cluster.base, "after-blip.nxs", seconds=0.2, steps=1))
    assert api.wait(again["id"], {"finished", "failed", "lost"}, timeout=90)["state"] == "finished"


def test_cluster_availability_names_the_queues_of_each_mode(cluster):
    modes = {mode["mode"]: mode for mode in cluster.api.get("/api/cluster").json()["modes"]}
    assert set(modes) == {"preview", "full"}
    for mode in modes.values():
        assert mode["available"] is True, mode
        assert mode["queues"] and all(queue["total"] >= 1 and queue["free"] >= 0 for queue in mode["queues"])
        for queue in mode["queues"]:  # what the Jobs area shows beside each mode
            assert queue["nodes"] >= 1 and 0 <= queue["free_nodes"] <= queue["nodes"], queue
            assert queue["gpus"] == 0, queue  # no GPU on these machines
            assert isinstance(queue["pending"], int) and queue["pending"] >= 0, queue
    if cluster.kind.family != "local":
        assert (modes["preview"]["queues"][0]["name"], modes["full"]["queues"][0]["name"]) == cluster.kind.queues


def test_job_changes_arrive_as_server_sent_events(cluster):
    api = cluster.api
    stream = api.http.get(api.url + "/api/jobs/events", stream=True, timeout=60)
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    job = api.submit(dataset(cluster.base, "watched.nxs", seconds=0.5, steps=2))
    seen = []
    deadline = time.monotonic() + 90
    event = None
    for line in stream.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "job":
            payload = json.loads(line[6:])
            if payload["id"] == job["id"]:
                seen.append(payload["state"])
                if payload["state"] in {"finished", "failed", "lost"}:
                    break
        if time.monotonic() > deadline:
            break
    stream.close()
    assert seen and seen[-1] == "finished", seen
    assert "running" in seen or "queued" in seen


def test_log_follows_a_running_job_live(cluster):
    api = cluster.api
    job = api.submit(dataset(cluster.base, "followed.nxs", seconds=2, steps=4))
    api.wait(job["id"], {"running", "finished"}, timeout=60)
    stream = api.http.get(api.url + f"/api/jobs/{job['id']}/log", params={"stream": "user", "follow": 1},
                          stream=True, timeout=90)
    text, ended = "", None
    event = None
    for line in stream.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            payload = json.loads(line[6:])
            if event == "log":
                text += payload["text"]
            elif event == "end":
                ended = payload["state"]
                break
    stream.close()
    assert ended == "finished"
    assert "FakeFilter - 100% complete" in text and "Processing Complete" in text


def test_preview_is_killed_at_its_time_limit_and_reported_so(cluster):
    job = cluster.timeout_job
    assert job is not None, "the first test submits this job"
    limit = cluster.kind.time_limit
    done = cluster.api.wait(job["id"], {"timeout", "failed", "finished", "lost", "cancelled"}, timeout=limit + 120)
    assert done["state"] == "timeout", done
    assert done["end"]["reason"] == "timeout" and "time limit" in done["message"]
    assert done["end"]["wall_time"] >= cluster.kind.time_limit * 0.9
    if cluster.kind.family == "gridengine":
        assert done["end"]["signal"] == "SIGKILL"


CODE_PROJECT = {
    "requirements.txt": "hebi-probe\n",
    "code.py": ("import json, os, hebi_probe\n"
                "try:\n"
                "    open('../escaped.txt', 'w').write('x')\n"
                "    escaped = 'written'\n"
                "except OSError as error:\n"
                "    escaped = type(error).__name__\n"
                "json.dump({'value': hebi_probe.VALUE, 'input': sorted(os.listdir('input')), 'uid': os.getuid(),\n"
                "           'outside output/': escaped}, open('output/result.json', 'w'))\n"
                "print('code ran')\n"),
}


def test_a_python_project_runs_with_its_requirements_from_the_wheelhouse(cluster):
    """A scientist's own code on this backend: its requirements from the facility's wheelhouse, the
    data chosen as input/, the results under output/ and nowhere else (the kernel refuses the rest); the
    next job with the same requirements reuses the environment the first one made."""
    api = cluster.api
    write_project(cluster.base / "roots" / "processing" / "project", CODE_PROJECT)
    data = dataset(cluster.base, "code-input.nxs")
    body = {"kind": "code", "project": "processing/project", "data": data, "output": "output/code", "mode": "full"}
    logs = []
    for _ in range(2):
        answer = api.post("/api/jobs", json=body)
        assert answer.status_code == 201, answer.text
        job = api.wait(answer.json()["id"], {"finished", "failed", "timeout", "lost", "cancelled"}, timeout=180)
        stderr = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stderr"}).json()["text"]
        assert job["state"] == "finished", (job, stderr)
        result = json.loads((run_folder(cluster, job) / "output" / "result.json").read_text())
        assert result["value"] == "from the wheelhouse 1.0" and result["input"] == ["code-input.nxs"]
        assert result["outside output/"] == "PermissionError", result  # Landlock, on this backend's node too
        assert "code ran" in api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stdout"}).json()["text"]
        logs.append(stderr)
    assert "made in" in logs[0] and "already made, reused" in logs[1], logs


def test_an_octave_project_writes_its_output(cluster):
    """A MATLAB-style app.m run with GNU Octave on this backend's node: the data chosen as input/, the
    result under output/, and its write beside output/ refused by the kernel."""
    require_octave()
    api = cluster.api
    write_project(cluster.base / "roots" / "processing" / "octave", OCTAVE_PROJECT)
    data = dataset(cluster.base, "octave-input.nxs")
    answer = api.post("/api/jobs", json={"kind": "code", "project": "processing/octave", "data": data,
                                         "output": "output/octave", "mode": "full"})
    assert answer.status_code == 201, answer.text
    job = api.wait(answer.json()["id"], {"finished", "failed", "timeout", "lost", "cancelled"}, timeout=180)
    stderr = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stderr"}).json()["text"]
    assert job["state"] == "finished" and job["language"] == "octave", (job, stderr)
    assert (run_folder(cluster, job) / "output" / "result.txt").read_text() == octave_result("octave-input.nxs")
    assert "ran" in api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stdout"}).json()["text"]


def test_a_notebook_runs_with_parameters_and_writes_a_plot(cluster):
    """A notebook executed headless on this backend, its parameters injected: the plot it draws, the
    executed notebook and its HTML are the job's outputs."""
    api = cluster.api
    (cluster.base / "roots" / "processing" / "angles.ipynb").write_text(PLOT)
    answer = api.post("/api/jobs", json={"kind": "code", "project": "processing/angles.ipynb", "output": "output/nb",
                                         "mode": "full", "parameters": {"angle": 2, "title": cluster.name}})
    assert answer.status_code == 201, answer.text
    job = api.wait(answer.json()["id"], {"finished", "failed", "timeout", "lost", "cancelled"}, timeout=180)
    stderr = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stderr"}).json()["text"]
    assert job["state"] == "finished", (job, stderr)
    output = run_folder(cluster, job) / "output"
    assert (output / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert f"plotted 2 {cluster.name}" in (output / "angles.ipynb").read_text()
    page = api.get(f"/api/jobs/{job['id']}/notebook")
    assert page.status_code == 200 and f"plotted 2 {cluster.name}" in page.text
