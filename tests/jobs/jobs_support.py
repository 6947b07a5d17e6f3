"""Support for the job tests: real GridEngine and real Slurm started by the project's scripts, and the
session's API as a real process (hebi_common.serve) that a test can kill and start again on the same state.

Each scheduler is started once per test run (session scope). Without root they cannot be installed or
started: the tests that need them are skipped, or fail under HEBI_REQUIRE_REAL=1 (CI).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from code_support import write_wheel
from conftest import FIXTURES, REPO, real_component
from support_kube import kubernetes_setup
from support_ssh import gridengine_ssh_setup, slurm_ssh_setup

from hebi_common.identity import HEADER, Identity, sign_identity

FAKE_SAVU = Path(__file__).with_name("fake_savu.py")
PROCESS_LIST = FIXTURES / "process_lists" / "basic_tomo_process.nxs"
SECRET = "jobs-test-secret"
USER = "alice"


def _script(name: str, action: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts" / name), action], capture_output=True, text=True, timeout=timeout)


def _start_scheduler(script: str, what: str) -> bool:
    """Install (when missing) and start a scheduler; True when it runs. Root only."""
    if os.geteuid() != 0:
        real_component(what, False, f"needs root to install and start it (scripts/{script} install && start)")
    for action in ("install", "start"):
        done = _script(script, action)
        if done.returncode != 0:
            real_component(what, False, f"scripts/{script} {action} failed: {(done.stderr or done.stdout)[-800:]}")
    return True


@pytest.fixture(scope="session")
def gridengine():
    was_running = _script("gridengine.sh", "status").returncode == 0 if os.geteuid() == 0 else False
    _start_scheduler("gridengine.sh", "GridEngine")
    env = {}
    for line in _script("gridengine.sh", "env").stdout.splitlines():
        for pair in line.removeprefix("export ").split():
            key, _, value = pair.partition("=")
            env[key] = value
    yield env
    if not was_running:
        _script("gridengine.sh", "stop")


@pytest.fixture(scope="session")
def slurm():
    was_running = _script("slurm.sh", "status").returncode == 0 if os.geteuid() == 0 else False
    _start_scheduler("slurm.sh", "Slurm")
    yield {}
    if not was_running:
        _script("slurm.sh", "stop")


@dataclass(frozen=True)
class ClusterKind:
    """One way of running jobs that the whole job suite (test_backends.py) runs against.

    ``setup(request, base)`` starts what the kind needs (through session fixtures) and returns the
    environment of the API process and overrides of the ``jobs`` configuration section.
    """

    name: str
    backend: str
    queues: tuple[str, str]  # preview's and full's queue, as the job itself sees it
    family: str  # "local", "gridengine", "slurm" or "kubernetes": what the scheduler is underneath
    time_limit: int  # the preview's time limit in the time-limit test (Slurm counts whole minutes)
    full_cores: int = 1  # cores the full test asks for
    setup: Callable[[Any, Path], tuple[dict[str, str], dict[str, Any]]] = lambda request, base: ({}, {})


def _gridengine_setup(request, base):
    return request.getfixturevalue("gridengine"), {}


def _slurm_setup(request, base):
    request.getfixturevalue("slurm")
    return {}, {}


#: Every kind the job suite runs against; each new backend adds itself here.
CLUSTER_KINDS: dict[str, ClusterKind] = {kind.name: kind for kind in (
    ClusterKind("local", "local", ("local", "local"), "local", 3),
    # Two cores on GridEngine (its smp parallel environment); Slurm's one node is busy with the preview.
    ClusterKind("drmaa", "drmaa", ("preview.q", "full.q"), "gridengine", 5, 2, _gridengine_setup),
    ClusterKind("slurm", "slurm", ("preview", "full"), "slurm", 60, 1, _slurm_setup),
    # Slurm through slurmrestd (support_slurmrest.py): the same Slurm, reached over HTTP with a JWT.
    ClusterKind("slurmrest", "slurmrest", ("preview", "full"), "slurm", 60, 1,
                lambda request, base: ({}, request.getfixturevalue("slurmrest").jobs_overrides(base))),
    # The command-line backends with a submit host over SSH (support_ssh.py: sshd on loopback).
    ClusterKind("gridengine-ssh", "gridengine", ("preview.q", "full.q"), "gridengine", 5, 2, gridengine_ssh_setup),
    ClusterKind("slurm-ssh", "slurm", ("preview", "full"), "slurm", 60, 1, slurm_ssh_setup),
    # Kubernetes counts activeDeadlineSeconds from the Job's start, its Pod's start-up (podman here) included.
    ClusterKind("kubernetes", "kubernetes", ("preview", "full"), "kubernetes", 20, 1, kubernetes_setup),
)}


def write_session(base: Path, backend: str, **jobs_overrides) -> Path:
    """Roots with a process list and 'behaviour' datasets for the fake Savu, and a config whose preview
    and full modes use the kind ``backend`` of CLUSTER_KINDS."""
    roots = base / "roots"
    for name in ("data", "processing", "output"):
        (roots / name).mkdir(parents=True, exist_ok=True)
    shutil.copy(PROCESS_LIST, roots / "processing" / "tomo.nxs")
    kind = CLUSTER_KINDS[backend]
    modes = {mode: {"backend": kind.backend, "queue": "" if kind.backend == "local" else queue}
             for mode, queue in zip(("preview", "full"), kind.queues)}
    modes["preview"].update(time_limit=60, max_time_limit=600, max_cores=1)
    modes["full"].update(time_limit=600, max_time_limit=3600, max_cores=2, max_memory_mb=4096)
    # Code jobs install from a wheelhouse in the roots, which every backend's nodes see at the same path.
    # The suite's API runs as root on this machine, not as the user: code jobs are let through here;
    # tests/jobs/test_code_jobs.py shows them refused where the session is not isolated.
    wheelhouse = roots / "data" / "wheelhouse"
    write_wheel(wheelhouse)
    code = {"allow_unisolated": True, "index_url": "", "find_links": [str(wheelhouse)],
            **jobs_overrides.pop("code", {})}
    config = {
        "logging": {"level": "info"},
        "session": {"roots": {name: {"path": str(roots / name), "writable": name != "data"}
                              for name in ("data", "processing", "output")},
                    "state_dir": str(base / "{user}" / "state")},
        "jobs": {"command": [sys.executable, str(FAKE_SAVU), "{data}", "{process_list}", "{output}", "-f", "{folder}"],
                 "poll_interval": 0.3, "lost_after": 60, "local": {"workers": 2, "kill_grace": 2}, **modes,
                 "code": code, **jobs_overrides},
    }
    path = base / "hebi.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dataset(base: Path, name: str, **behaviour) -> str:
    """A tiny real HDF5 dataset (submission refuses files h5py cannot open) whose ``fake_savu`` attribute
    tells the fake Savu how to behave (seconds to run, exit code, stderr); its <root>/<path>."""
    import h5py
    with h5py.File(base / "roots" / "data" / name, "w") as data:
        data.attrs["fake_savu"] = json.dumps(behaviour)
    return f"data/{name}"


def wait_ended(client, job_id, timeout: float = 30) -> dict:
    """The job (through an in-process Flask client) once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", query_string={"refresh": 1}).get_json()
        if job["state"] not in ("submitting", "queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _signed(request: requests.PreparedRequest) -> requests.PreparedRequest:
    request.headers[HEADER] = sign_identity(Identity(user=USER), SECRET)
    return request


class ApiProcess:
    """The session's API as the launcher runs it (hebi_common.serve); ``kill()`` is a crash, ``start()`` a restart."""

    def __init__(self, config_path: Path, env: dict[str, str] | None = None):
        self.config_path = config_path
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.http = requests.Session()
        self.http.auth = _signed  # signed afresh for each request, as the gateway does: a signature ages out
        self.url = ""

    def start(self, timeout: float = 30) -> ApiProcess:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, HEBI_CONFIG=str(self.config_path), HEBI_SESSION_USER=USER,
                   HEBI_SESSION_SECRET=SECRET, HEBI_SESSION_HOME="", PYTHONUNBUFFERED="1",
                   HEBI_SESSION_STATE_DIR=str(self.config_path.parent / USER / "state"), **self.extra_env)
        log = open(self.config_path.parent / "api.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hebi_common.serve", "--bind", f"127.0.0.1:{port}",
             "--threads", "8", "--graceful-timeout", "2", "--timeout", "120",
             "hebi_api.app:create_app()"], env=env, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.http.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the API did not start: {(self.config_path.parent / 'api.log').read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the API's whole process group, as a crash or an OOM kill would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def get(self, path: str, **kwargs):
        return self.http.get(self.url + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs):
        return self.http.post(self.url + path, timeout=60, **kwargs)

    def submit(self, data: str, mode: str = "full", output: str = "output/runs", **extra) -> dict:
        body = {"process_list": "processing/tomo.nxs", "dataset": data, "output": output, "mode": mode, **extra}
        answer = self.post("/api/jobs", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def job(self, job_id: str) -> dict:
        answer = self.get(f"/api/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def close(self, request, name: str) -> None:
        """The end of a module's cluster: no job of ours is left on a shared scheduler, the API stops, and
        when a test failed its log's tail is printed (the scheduler's side of a failure is there)."""
        try:
            for job in self.get("/api/jobs", params={"state": "queued,running", "limit": 10000}).json()["jobs"]:
                self.post(f"/api/jobs/{job['id']}/cancel")
        except (requests.RequestException, ValueError, KeyError):
            pass
        self.stop()
        if request.session.testsfailed:
            log = self.config_path.parent / "api.log"
            print(f"\n--- {name} API log (tail) ---\n" + log.read_text(errors="replace")[-4000:])

    def wait(self, job_id: str, states, timeout: float = 60) -> dict:
        """Poll until the job is in one of ``states``; the job as last seen."""
        states = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        job = self.job(job_id)
        while job["state"] not in states and time.monotonic() < deadline:
            time.sleep(0.25)
            job = self.job(job_id)
        assert job["state"] in states, f"job {job_id} is {job['state']} ({job['message']}), expected {states}"
        return job
