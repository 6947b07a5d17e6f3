"""The Kubernetes Jobs backend: the Job it builds (as a dict, checked against Kubernetes' own schema), and
jobs on the fake cluster (tests/fakekube, its kubelet running each Pod with podman from the hebi-api
image) that fail, outlive their time limit, cannot fit on any node or wait for a free one, and queue
behind the per-user limit, all through exactly the RBAC rules docs/jobs.md asks a facility for."""
from __future__ import annotations

import json
import time
from pathlib import Path

import kubernetes_validate
import pytest
from support_kube import IMAGE_PYTHON, JOB_UID, grant, runner_image

from hebi_api.jobs.backend import ENDED, QUEUED, RUNNING, JobRef, JobSpec
from hebi_api.jobs.kube_jobs import KubernetesJobsBackend, job_name, label_value, make_job
from hebi_api.jobs.states import JobState
from hebi_common.config import KubernetesJobsConfig, KubeVolumeConfig

KUBERNETES = "1.33.0"
#: The Role and ClusterRole of docs/jobs.md ("Kubernetes Jobs").
JOB_RULES = [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "create", "patch", "delete"]},
             {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
NODE_RULES = [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list"]}]


def spec_of(base: Path, command: list[str], job_id: str, **resources) -> JobSpec:
    roots = {name: {"path": str(base / name), "writable": name != "data"} for name in ("data", "output")}
    workdir = base / "output" / ".hebi" / job_id
    workdir.mkdir(parents=True, exist_ok=True)
    return JobSpec(command=command, workdir=workdir, name=f"hebi-full-{job_id}", stdout=workdir / "stdout.txt",
                   stderr=workdir / "stderr.txt", queue="full",
                   env={"HEBI_JOB_ROOTS": json.dumps(roots), "HEBI_JOB_ID": job_id, "HEBI_JOB_MODE": "full",
                        "PATH": "/a/host/venv/bin:/usr/bin"}, **resources)


# -- the Job as a dict ------------------------------------------------------------------------------------


def test_the_job_runs_as_the_user_with_their_roots_its_time_limit_and_resources(tmp_path):
    config = KubernetesJobsConfig(image="registry.example/hebi-api:1", roots={"output": KubeVolumeConfig(
        claim="output-{user}", sub_path="u{uid}")}, mounts={"/dls_sw": KubeVolumeConfig(host_path="/dls_sw")},
        node_selectors={"full": {"hebi/queue": "full"}})
    spec = spec_of(tmp_path, ["savu", "it's $(id) $HOME"], "6b0fb2aa000001", time_limit=1800, cores=2, memory_mb=4096)
    job = make_job(spec, config, user="alice", uid=20101, gid=20200, groups=[20200, 3001])
    kubernetes_validate.validate(job, KUBERNETES, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["activeDeadlineSeconds"] == 1800 and job["spec"]["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"].items() >= {"runAsUser": 20101, "runAsGroup": 20200, "fsGroup": 20200,
                                              "runAsNonRoot": True, "supplementalGroups": [3001]}.items()
    container = pod["containers"][0]
    assert container["image"] == "registry.example/hebi-api:1"
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4096Mi"},
                                      "limits": {"cpu": "2", "memory": "4096Mi"}}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    data, output = mounts[str(tmp_path / "data")], mounts[str(tmp_path / "output")]
    assert data["readOnly"] is True and volumes[data["name"]]["hostPath"]["path"] == str(tmp_path / "data")
    assert output["readOnly"] is False and output["subPath"] == "u20101"
    assert volumes[output["name"]]["persistentVolumeClaim"] == {"claimName": "output-alice"}
    assert mounts["/dls_sw"]["readOnly"] is True
    assert pod["nodeSelector"] == {"hebi/queue": "full"}
    # Kubernetes turns $$ into $ and expands $(VAR): the command comes back exactly as the user named it.
    assert container["command"][-1] == "it's $$(id) $$HOME"
    assert container["command"][3:6] == [str(spec.stdout), str(spec.stderr), str(spec.workdir)]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert "PATH" not in env, "the session's PATH means nothing in the image"
    assert env["HEBI_JOB_QUEUE"] == "full" and env["HEBI_JOB_CORES"] == "2"
    assert job["metadata"]["labels"]["hebi/user"] == "alice" and job["metadata"]["labels"]["hebi/job"] == "6b0fb2aa000001"


def test_a_job_never_runs_as_root_and_odd_user_names_still_make_valid_names(tmp_path):
    spec = spec_of(tmp_path, ["savu"], "6b0fb2aa000002")
    with pytest.raises(ValueError, match="never runs as root"):
        make_job(spec, KubernetesJobsConfig(), user="alice", uid=0, gid=0)
    job = make_job(spec, KubernetesJobsConfig(), user="_svc-", uid=20101, gid=20101)
    kubernetes_validate.validate(job, KUBERNETES, strict=True)
    assert label_value("_svc-") != label_value("svc") and len(job_name("hebi-preview-" + "f" * 60, "bob")) <= 63
    assert job_name("hebi-full-1", "alice") != job_name("hebi-full-1", "bob")


# -- jobs on the fake cluster ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from fakekube import FakeCluster
    from fakekube.fixtures import require_podman
    require_podman()
    image = runner_image()
    base = tmp_path_factory.mktemp("kube-jobs-unit")
    with FakeCluster(base / "cluster", node_cpu="4", node_memory="8Gi", rules=JOB_RULES,
                     cluster_rules=NODE_RULES) as fake:
        fake.image = image
        yield fake


@pytest.fixture
def roots(tmp_path):
    for name in ("data", "output"):
        (tmp_path / name).mkdir()
        grant(tmp_path / name, JOB_UID)
    return tmp_path


def backend_for(cluster, **settings) -> KubernetesJobsBackend:
    config = KubernetesJobsConfig(kubeconfig=str(cluster.kubeconfig), image=cluster.image, run_as_user=JOB_UID,
                                  kill_grace=1, **settings)
    return KubernetesJobsBackend(config, queues=["full"], user="alice")


def python(code: str) -> list[str]:
    return [IMAGE_PYTHON, "-c", code]


_ids = iter(range(1, 10_000))


def submit(backend, roots, command, **resources) -> JobRef:
    job_id = f"6b0fb3{time.time_ns() % 10**6:06d}{next(_ids):02d}"
    spec = spec_of(roots, command, job_id, **resources)
    return JobRef(backend.submit(spec), spec.name, time.time())


def wait(backend, ref: JobRef, until, limit: float = 90):
    """The job's status once ``until(status)`` holds (the limit only stops a broken test)."""
    deadline = time.monotonic() + limit
    while True:
        status = backend.statuses([ref])[ref.backend_id]
        if until(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def ended(status) -> bool:
    return status.state == ENDED


def test_a_failing_run_ends_failed_with_its_exit_code_and_stderr(cluster, roots):
    backend = backend_for(cluster)
    ref = submit(backend, roots, python("import sys; print('KeyError: tomo', file=sys.stderr); sys.exit(3)"))
    status = wait(backend, ref, ended)
    assert status.end.reason == JobState.FAILED and status.end.exit_code == 3, status
    job_dir = roots / "output" / ".hebi"
    assert "KeyError: tomo" in next(job_dir.glob("*/stderr.txt")).read_text()


def test_a_run_past_its_time_limit_is_killed_and_reported_as_a_timeout(cluster, roots):
    backend = backend_for(cluster)
    ref = submit(backend, roots, python("import time\nprint('started', flush=True)\ntime.sleep(600)"), time_limit=8)
    assert wait(backend, ref, lambda s: s.state != QUEUED).state in (RUNNING, ENDED)
    status = wait(backend, ref, ended)
    assert status.end.reason == JobState.TIMEOUT and "time limit" in status.end.message, status
    assert status.end.wall_time >= 8
    assert not [p for p in cluster.list("pods", label_selector="hebi/user=alice")
                if p["status"]["phase"] not in ("Succeeded", "Failed")], "the killed job's pod still runs"


def test_a_job_no_node_can_ever_fit_waits_and_says_so(cluster, roots):
    backend = backend_for(cluster)
    ref = submit(backend, roots, python("print('never')"), cores=64)
    status = wait(backend, ref, lambda s: "no node" in s.message)
    assert status.state == QUEUED
    assert "no node can ever fit it" in status.message and "64 cores (the largest node has 4 cores)" in status.message
    backend.cancel(ref)
    cancelled = JobRef(ref.backend_id, ref.name, ref.submitted_at, cancel_requested=True)
    assert wait(backend, cancelled, ended).end.reason == JobState.CANCELLED


def test_a_job_waits_for_a_busy_node_and_starts_once_it_is_free(cluster, roots):
    backend = backend_for(cluster)
    big = submit(backend, roots, python("import time; time.sleep(600)"), cores=3)
    wait(backend, big, lambda s: s.state == RUNNING)
    queue = backend.availability()[0]
    assert (queue.name, queue.total, queue.nodes) == ("full", 4, 1) and queue.used >= 3 and queue.free <= 1
    small = submit(backend, roots, python("print('fits now')"), cores=2)
    waiting = wait(backend, small, lambda s: "no node" in s.message)
    assert waiting.state == QUEUED and "no node can fit it now" in waiting.message
    assert "Insufficient cpu" in waiting.message
    backend.cancel(big)
    done = wait(backend, small, ended)
    assert done.end.reason == JobState.FINISHED and done.end.exit_code == 0


def test_jobs_beyond_the_users_limit_wait_suspended_and_start_as_others_end(cluster, roots):
    backend = backend_for(cluster, max_parallel=1)
    first = submit(backend, roots, python("import time; time.sleep(600)"))
    second = submit(backend, roots, python("print('my turn')"))
    wait(backend, first, lambda s: s.state == RUNNING)
    held = backend.statuses([second])[second.backend_id]
    assert held.state == QUEUED and "at most 1 run at once" in held.message
    assert cluster.get("jobs", second.backend_id)["spec"]["suspend"] is True
    assert backend.availability()[0].pending >= 1
    backend.cancel(first)
    cancelled = JobRef(first.backend_id, first.name, first.submitted_at, cancel_requested=True)
    assert wait(backend, cancelled, ended).end.reason == JobState.CANCELLED
    done = wait(backend, second, ended)
    assert done.end.reason == JobState.FINISHED
    assert "my turn" in (roots / "output" / ".hebi" / second.name.removeprefix("hebi-full-") / "stdout.txt").read_text()


def test_without_the_right_to_list_nodes_availability_is_the_users_own_share(tmp_path):
    from fakekube import FakeCluster
    with FakeCluster(tmp_path / "cluster", kubelet=False, rules=JOB_RULES) as fake:
        fake.image = "localhost/hebi-api:unused"
        queue = backend_for(fake, max_parallel=3).availability()[0]
        assert (queue.name, queue.total, queue.used, queue.free, queue.available) == ("full", 3, 0, 3, True)
