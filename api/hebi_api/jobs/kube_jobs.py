"""The Kubernetes Jobs backend: each hebi job is a batch/v1 Job, for a facility without a batch scheduler.

- The Job is built by a pure function (``make_job``): the user's uid/gid (the session's own, from the API's
  process, which runs as the user in its pod), the runner image, the user's roots mounted at their own
  paths, ``activeDeadlineSeconds`` = the time limit, ``backoffLimit: 0`` (a failed run is not tried
  again), requests = limits from cores and memory. Its one container runs the image's Python with a
  small wrapper that points stdout/stderr at the job's files on the shared roots and then ``exec``s the
  job's argument list: no shell, and every ``$`` doubled so that Kubernetes' ``$(VAR)`` expansion
  leaves user text alone.
- State: ONE list of the user's Jobs and ONE list of their Pods (label ``hebi/user``) per poll. The
  Job's terminal condition says how it ended (Complete; Failed with DeadlineExceeded = timeout, else the
  Pod's exit code and reason); a Pod the scheduler cannot place keeps the job queued with the
  scheduler's reason, and says so plainly when the job asks for more than any node has.
- Per-user parallelism (``max_parallel``): beyond it, Jobs are created with ``spec.suspend: true`` and
  resumed, oldest first, as the user's others end. Suspension keeps the waiting jobs in the cluster,
  where a restarted API, ``kubectl get jobs`` and cancel all find them, and it is the mechanism Kueue
  uses, so a facility that runs Kueue sets ``max_parallel: 0`` and lets it admit the Jobs instead.
- Cancel deletes the Job (propagationPolicy Background); the job is cancelled once its Pod is gone.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from hebi_common.kube import NoCluster, connect

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
    signal_name,
)
from .states import JobState

MANAGED_BY = "app.kubernetes.io/managed-by"
USER_LABEL = "hebi/user"
JOB_LABEL = "hebi/job"
MODE_LABEL = "hebi/mode"
USER_ANNOTATION = "hebi/user-name"
QUEUE_ANNOTATION = "hebi/queue"
NAME_ANNOTATION = "hebi/scheduler-name"
#: The Pod label the job controller gives every Pod of a Job.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
GPU = "nvidia.com/gpu"
#: Variables of the session that mean nothing in the image: the image's own PATH finds its programs.
NOT_PASSED = ("PATH",)
#: Runs in the image's Python as ``python -c WRAPPER STDOUT STDERR WORKDIR ARGV...``: the job's output
#: goes to its files on the roots (the API shows them), then the job's own program replaces it.
WRAPPER = """\
import os, sys
out, err, workdir, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
for fd, path in ((1, out), (2, err)):
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, fd)
    os.close(target)
os.chdir(workdir)
try:
    os.execvp(argv[0], argv)
except OSError as error:
    print(f"hebi: cannot run {argv[0]}: {error.strerror}", file=sys.stderr, flush=True)
    sys.exit(127)
"""
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: Container reasons that mean the job cannot start until someone acts.
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                 "CreateContainerConfigError", "CreateContainerError")


# -- pure: names, labels, the Job --------------------------------------------------------------------


def label_value(text: str) -> str:
    """``text`` as a label value: itself when valid, else made valid with a hash of it (so never
    another user's)."""
    if len(text) <= 63 and _LABEL_VALUE.match(text):
        return text
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-_.") or "user"
    return f"{safe[:55].rstrip('-_.')}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def job_name(scheduler_name: str, user: str) -> str:
    """The Job's name: hebi's scheduler name (``hebi-<mode>-<id>``) and a hash of the user, so two users'
    jobs never clash in one namespace; at most 63 characters (it becomes a label of its Pods)."""
    base = re.sub(r"[^a-z0-9-]", "-", scheduler_name.lower()).strip("-")[:52].rstrip("-") or "hebi"
    return f"{base}-{hashlib.sha256(user.encode()).hexdigest()[:6]}"


def user_selector(user: str) -> str:
    return f"{MANAGED_BY}=hebi,{USER_LABEL}={label_value(user)}"


def _escape(text: str) -> str:
    """Kubernetes expands ``$(VAR)`` in command, args and env values, and ``$$`` to ``$``: doubling every
    ``$`` makes it give back exactly the text."""
    return str(text).replace("$", "$$")


def _expand(template: str, user: str, uid: int, gid: int) -> str:
    return template.replace("{user}", user).replace("{uid}", str(uid)).replace("{gid}", str(gid))


def volume_source(volume, user: str, uid: int, gid: int) -> tuple[dict, str]:
    """A configured volume (KubeVolumeConfig) as a Pod volume source for one user, and its subPath."""
    if volume.host_path:
        source = {"hostPath": {"path": _expand(volume.host_path, user, uid, gid), "type": "Directory"}}
    elif volume.claim:
        source = {"persistentVolumeClaim": {"claimName": _expand(volume.claim, user, uid, gid)}}
    else:
        source = {"nfs": {"server": _expand(volume.nfs_server, user, uid, gid),
                          "path": _expand(volume.nfs_path, user, uid, gid)}}
    return source, _expand(volume.sub_path, user, uid, gid)


def job_roots(spec: JobSpec) -> dict[str, dict]:
    """The roots the API gave the job (HEBI_JOB_ROOTS: name -> path, writable)."""
    from hebi_common.confine import JOB_ROOTS_VARIABLE
    try:
        return json.loads(spec.env.get(JOB_ROOTS_VARIABLE) or "{}")
    except ValueError:
        return {}


def make_job(spec: JobSpec, config, *, user: str, uid: int, gid: int, groups: Iterable[int] = (),
             suspend: bool = False) -> dict:
    """The batch/v1 Job of one hebi job (``config``: KubernetesJobsConfig)."""
    if uid == 0:
        raise ValueError("a job never runs as root: the API runs as root here, so set jobs.kubernetes.run_as_user")
    name = job_name(spec.name, user)
    labels = {MANAGED_BY: "hebi", USER_LABEL: label_value(user)}
    for label, variable in ((JOB_LABEL, "HEBI_JOB_ID"), (MODE_LABEL, "HEBI_JOB_MODE")):
        if spec.env.get(variable):
            labels[label] = label_value(spec.env[variable])
    volumes, mounts = [], []
    for index, (root, entry) in enumerate(sorted(job_roots(spec).items())):
        configured = config.roots.get(root)
        source, sub_path = (volume_source(configured, user, uid, gid) if configured
                            else ({"hostPath": {"path": entry["path"], "type": "Directory"}}, ""))
        volumes.append({"name": f"root-{index}"} | source)
        mounts.append({"name": f"root-{index}", "mountPath": entry["path"], "readOnly": not entry.get("writable")}
                      | ({"subPath": sub_path} if sub_path else {}))
    for index, (path, volume) in enumerate(sorted(config.mounts.items())):
        source, sub_path = volume_source(volume, user, uid, gid)
        volumes.append({"name": f"mount-{index}"} | source)
        mounts.append({"name": f"mount-{index}", "mountPath": path, "readOnly": True}
                      | ({"subPath": sub_path} if sub_path else {}))
    # The image's root filesystem stays read-only; the job's scratch space is its own /tmp.
    volumes.append({"name": "tmp", "emptyDir": {}})
    mounts.append({"name": "tmp", "mountPath": "/tmp"})
    env = {key: value for key, value in spec.env.items() if key not in NOT_PASSED}
    # Where the job runs, as GridEngine's QUEUE/NSLOTS and Slurm's SLURM_JOB_PARTITION tell a job.
    env.update(HEBI_JOB_QUEUE=spec.queue, HEBI_JOB_CORES=str(spec.cores), HOME="/tmp")
    amounts = {"cpu": str(spec.cores)} | ({"memory": f"{spec.memory_mb}Mi"} if spec.memory_mb else {})
    argv = [config.python, "-c", WRAPPER, str(spec.stdout), str(spec.stderr), str(spec.workdir), *spec.command]
    container = {
        "name": "job",
        "image": config.image,
        "imagePullPolicy": config.pull_policy,
        "command": [_escape(part) for part in argv],
        "workingDir": "/tmp",
        "env": [{"name": key, "value": _escape(value)} for key, value in sorted(env.items())],
        "resources": {"requests": dict(amounts), "limits": dict(amounts)},
        "volumeMounts": mounts,
        # The wrapper's own failure (a root not mounted, a file not writable) shows in the Pod's status.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {"runAsUser": uid, "runAsGroup": gid, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
    }
    security = {"runAsUser": uid, "runAsGroup": gid, "fsGroup": gid, "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"}}
    extra_groups = sorted({int(g) for g in groups} - {gid})
    if extra_groups:
        security["supplementalGroups"] = extra_groups
    pod_spec = {"restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
                "terminationGracePeriodSeconds": config.kill_grace, "securityContext": security,
                "containers": [container], "volumes": volumes}
    if config.service_account:
        pod_spec["serviceAccountName"] = config.service_account
    if config.node_selectors.get(spec.queue):
        pod_spec["nodeSelector"] = dict(config.node_selectors[spec.queue])
    if config.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in config.tolerations]
    if config.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in config.image_pull_secrets]
    job_spec = {"backoffLimit": 0, "activeDeadlineSeconds": int(spec.time_limit), "suspend": bool(suspend),
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec}}
    if config.keep_finished:
        job_spec["ttlSecondsAfterFinished"] = config.keep_finished
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {USER_ANNOTATION: user, NAME_ANNOTATION: spec.name, QUEUE_ANNOTATION: spec.queue}},
            "spec": job_spec}


# -- pure: what a Job and its Pods say ------------------------------------------------------------------


def _time(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _condition(obj: dict, kind: str) -> dict | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def is_finished(job: dict) -> bool:
    return _condition(job, "Complete") is not None or _condition(job, "Failed") is not None


def _terminated(pod: dict) -> dict | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if "terminated" in (status.get("state") or {}):
            return status["state"]["terminated"]
    return None


def _quantity(value) -> float:
    """A Kubernetes quantity ("500m", "4", "8Gi") as a number."""
    suffixes = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20,
                "Gi": 2**30, "Ti": 2**40}
    found = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value).strip())
    if not found or found.group(2) not in suffixes:
        return 0.0
    return float(found.group(1)) * suffixes[found.group(2)]


def pod_requests(pod: dict) -> dict[str, float]:
    total: dict[str, float] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, 0.0) + _quantity(value)
    return total


def _matches(node: dict, selector: dict[str, str]) -> bool:
    labels = node["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _usable(node: dict) -> bool:
    ready = _condition(node, "Ready") is not None
    return ready and not (node.get("spec") or {}).get("unschedulable")


def beyond_every_node(requests: dict[str, float], nodes: list[dict]) -> str:
    """Why no node could ever run a Pod asking for ``requests`` (empty: one could, once free)."""
    if not nodes:
        return "no node matches its queue"
    for node in nodes:
        allocatable = {k: _quantity(v) for k, v in ((node.get("status") or {}).get("allocatable") or {}).items()}
        if all(value <= allocatable.get(name, 0.0) for name, value in requests.items() if value > 0):
            return ""
    largest = {name: max(_quantity(((n.get("status") or {}).get("allocatable") or {}).get(name, 0)) for n in nodes)
               for name in requests}
    parts = []
    for name, value in sorted(requests.items()):
        if value > largest[name]:
            parts.append(f"{_amount(name, value)} (the largest node has {_amount(name, largest[name])})")
    return "it asks for more than any node has: " + ", ".join(parts)


def _amount(name: str, value: float) -> str:
    if name == "cpu":
        return f"{value:g} cores"
    if name == "memory":
        return f"{value / 2**20:.0f} MB of memory"
    if name == GPU:
        return f"{value:g} GPUs"
    return f"{value:g} {name}"


def job_status(job: dict, pods: list[dict], cancel_requested: bool, *, held_message: str = "",
               nodes: list[dict] | None = None) -> BackendStatus:
    """A hebi state from the Job and its Pods (``nodes``: to tell a Pod that can never fit)."""
    status = job.get("status") or {}
    started = job_started = _time(status.get("startTime"))
    pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)
    finished = _terminated(pod) if pod is not None else None
    complete, failed = _condition(job, "Complete"), _condition(job, "Failed")
    if complete is not None or failed is not None:
        ended_at = _time((complete or failed).get("lastTransitionTime"))
        # The Job's clock (which the deadline counts) includes the Pod's start-up; the run is the container's.
        job_wall = max(ended_at - job_started, 0.0) if ended_at is not None and job_started is not None else None
        wall = job_wall
        if finished is not None and None not in (_time(finished.get("startedAt")), _time(finished.get("finishedAt"))):
            started = _time(finished["startedAt"])
            wall = max(_time(finished["finishedAt"]) - started, 0.0)
        if complete is not None:
            return BackendStatus(ENDED, started_at=started, end=JobEnd(JobState.FINISHED, exit_code=0, wall_time=wall))
        if failed.get("reason") == "DeadlineExceeded":
            return BackendStatus(ENDED, started_at=started, end=JobEnd(
                JobState.TIMEOUT, wall_time=job_wall, message="killed at its time limit (activeDeadlineSeconds)"))
        if cancel_requested:
            return BackendStatus(ENDED, started_at=started, end=JobEnd(JobState.CANCELLED, wall_time=wall))
        return BackendStatus(ENDED, started_at=started, end=_failure(finished, failed, wall))
    if (job.get("spec") or {}).get("suspend"):
        return BackendStatus(QUEUED, message=held_message)
    if pod is None:
        return BackendStatus(QUEUED)
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Pending":
        return BackendStatus(QUEUED, message=pending_message(pod, nodes))
    running_since = None
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        running_since = _time(((container.get("state") or {}).get("running") or {}).get("startedAt")) or running_since
    return BackendStatus(RUNNING, started_at=running_since or started or _time(pod["status"].get("startTime")))


def pending_message(pod: dict, nodes: list[dict] | None) -> str:
    scheduled = next((c for c in pod["status"].get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        never = ""
        if nodes is not None:
            selector = (pod.get("spec") or {}).get("nodeSelector") or {}
            never = beyond_every_node(pod_requests(pod), [n for n in nodes if _matches(n, selector) and _usable(n)])
        if never:
            return f"waiting: no node can ever fit it: {never}; cancel it and ask for less"
        return f"waiting: no node can fit it now: {scheduled.get('message', '')}".rstrip(": ")
    for container in pod["status"].get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return f"waiting: {waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    return ""


def _failure(terminated: dict | None, condition: dict, wall: float | None) -> JobEnd:
    if terminated is None:
        return JobEnd(JobState.FAILED, wall_time=wall,
                      message=f"Kubernetes ended the job: {condition.get('message') or condition.get('reason')}")
    code = terminated.get("exitCode")
    reason = terminated.get("reason") or ""
    sig = None
    if terminated.get("signal"):
        sig = signal_name(terminated["signal"])
    elif code is not None and code > 128:
        sig = signal_name(code - 128)
    message = ""
    if reason == "OOMKilled":
        message = "killed: it used more memory than it asked for"
    elif reason not in ("Error", "Completed", ""):
        message = (terminated.get("message") or reason).strip()[-300:]
    elif (code or 0) == 127 and terminated.get("message"):
        message = terminated["message"].strip()[-300:]  # the wrapper could not start the program
    return JobEnd(JobState.FAILED, exit_code=None if sig else code, signal=sig, wall_time=wall, message=message)


# -- the backend -------------------------------------------------------------------------------------


#: Seconds a count of the user's running Jobs is used for the next submissions.
RUNNING_COUNT_SECONDS = 2.0

class KubernetesJobsBackend:
    name = "kubernetes"

    @classmethod
    def from_config(cls, jobs, state_dir: Path) -> KubernetesJobsBackend:
        queues = [mode.queue for mode in (jobs.preview, jobs.full) if mode.backend == "kubernetes"]
        return cls(jobs.kubernetes, queues=list(dict.fromkeys([*queues, *jobs.kubernetes.node_selectors])))

    def __init__(self, config, queues: list[str] | None = None, user: str | None = None):
        self.config = config
        self.queues = queues or []
        self.user = user or os.environ.get("HEBI_SESSION_USER") or getpass.getuser()
        if config.run_as_user is not None:
            self.uid = config.run_as_user
            self.gid = config.run_as_group if config.run_as_group is not None else config.run_as_user
            self.groups: tuple[int, ...] = ()
        else:
            self.uid = os.getuid()
            self.gid = config.run_as_group if config.run_as_group is not None else os.getgid()
            self.groups = tuple(os.getgroups())
        self.namespace = ""
        self._api = None
        self._lock = threading.Lock()
        #: The user's Jobs that run (not suspended, not finished) as last counted, and when: a sweep of
        #: many submissions lists them once, not once per job (bench/jobs). Only this session makes the
        #: user's Jobs, so adding the ones it makes keeps the count; one that ended meanwhile at worst
        #: makes the next Job suspended, and the poll resumes it.
        self._running: set[str] | None = None
        self._running_at = 0.0
        #: The nodes, re-read at most every 30 s (only to tell jobs that can never fit).
        self._nodes: tuple[float, list[dict] | None] = (0.0, None)

    # -- talking to the API server -------------------------------------------------------------------

    def _client(self):
        if self._api is None:
            try:
                api, self.namespace = connect(self.config.kubeconfig, self.config.context, self.config.namespace)
            except NoCluster as err:
                if "not installed" in str(err):
                    raise ClusterUnavailable(f"{err} (pip install 'hebi-api[kubernetes]')") from None
                raise ClusterUnavailable("no Kubernetes cluster: set jobs.kubernetes.kubeconfig, or give the session "
                                         f"pod a ServiceAccount token ({err})") from None
            from kubernetes import client
            self._api = (client.BatchV1Api(api), client.CoreV1Api(api))
        return self._api

    def _call(self, api: int, method: str, *args, **kwargs) -> dict:
        """One API call, its JSON answer. Unreachable, 5xx, 401/403 -> ClusterUnavailable; the 4xx of a
        bad object -> _Refused (the caller decides)."""
        import urllib3
        from kubernetes.client.exceptions import ApiException
        target = getattr(self._client()[api], method)
        try:
            answer = target(*args, _preload_content=False, _request_timeout=(5, self.config.request_timeout), **kwargs)
        except ApiException as err:
            message = _message(err)
            if err.status >= 500 or err.status in (401, 429):
                raise ClusterUnavailable(f"the Kubernetes API server answered {err.status}: {message}") from None
            raise _Refused(err.status, message) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ClusterUnavailable(f"the Kubernetes API server cannot be reached: {err}") from None
        return json.loads(answer.data or b"{}")

    def _list_jobs(self) -> list[dict]:
        try:
            return self._call(0, "list_namespaced_job", self.namespace, label_selector=user_selector(self.user))["items"]
        except _Refused as err:
            raise ClusterUnavailable(f"the jobs cannot be listed: {err}") from None

    def _list_pods(self) -> list[dict]:
        try:
            return self._call(1, "list_namespaced_pod", self.namespace, label_selector=user_selector(self.user))["items"]
        except _Refused as err:
            raise ClusterUnavailable(f"the jobs' pods cannot be listed: {err}") from None

    def _list_nodes(self, fresh: bool = False) -> list[dict] | None:
        """The cluster's nodes; None when the session may not list them (a ClusterRole is needed)."""
        read_at, nodes = self._nodes
        if fresh or time.monotonic() - read_at > 30:
            try:
                nodes = self._call(1, "list_node")["items"]
            except _Refused:
                nodes = None
            self._nodes = (time.monotonic(), nodes)
        return nodes

    # -- interface -----------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        self._client()
        with self._lock:
            suspend = False
            if self.config.max_parallel:
                if self._running is None or time.monotonic() - self._running_at > RUNNING_COUNT_SECONDS:
                    self._running = {job["metadata"]["name"] for job in self._list_jobs()
                                     if not is_finished(job) and not job["spec"].get("suspend")}
                    self._running_at = time.monotonic()
                suspend = len(self._running) >= self.config.max_parallel
            try:
                body = make_job(spec, self.config, user=self.user, uid=self.uid, gid=self.gid, groups=self.groups,
                                suspend=suspend)
            except ValueError as err:
                raise SubmitRejected(str(err)) from None
            try:
                created = self._call(0, "create_namespaced_job", self.namespace, body)
            except _Refused as err:
                if err.status == 403:
                    raise ClusterUnavailable(f"the session may not create Jobs in {self.namespace}: {err}") from None
                raise SubmitRejected(f"Kubernetes refused the job: {err}") from None
            if not suspend and self._running is not None:
                self._running.add(created["metadata"]["name"])
        return created["metadata"]["name"]

    def statuses(self, jobs: Iterable[JobRef]) -> dict[str, BackendStatus]:
        refs = list(jobs)
        if not refs:
            return {}
        with self._lock:
            listed = {job["metadata"]["name"]: job for job in self._list_jobs()}
            self._resume(listed)
            self._running = None  # counted afresh at the next submission
        pods: dict[str, list[dict]] = {}
        for pod in self._list_pods():
            owner = (pod["metadata"].get("labels") or {}).get(JOB_NAME_LABEL)
            if owner:
                pods.setdefault(owner, []).append(pod)
        unschedulable = any(pending_message(p, None).startswith("waiting: no node")
                            for group in pods.values() for p in group if p["status"].get("phase") == "Pending")
        nodes = self._list_nodes() if unschedulable else None
        held = self._held_message(listed)
        result: dict[str, BackendStatus] = {}
        for ref in refs:
            job = listed.get(ref.backend_id)
            own_pods = pods.get(ref.backend_id, [])
            if job is not None and job["metadata"].get("annotations", {}).get(NAME_ANNOTATION, ref.name) != ref.name:
                job = None  # another job of the same name (the registry was replaced)
            if job is None:
                if any(p["status"].get("phase") not in ("Succeeded", "Failed") for p in own_pods):
                    result[ref.backend_id] = BackendStatus(RUNNING, message="stopping")  # deleted, its Pod stops
                elif ref.cancel_requested:
                    result[ref.backend_id] = BackendStatus(ENDED, end=JobEnd(JobState.CANCELLED))
                else:
                    result[ref.backend_id] = BackendStatus(MISSING)
                continue
            result[ref.backend_id] = job_status(job, own_pods, ref.cancel_requested, held_message=held, nodes=nodes)
        return result

    def _resume(self, listed: dict[str, dict]) -> None:
        """Un-suspend the oldest suspended Jobs while fewer than ``max_parallel`` of the user's run."""
        if not self.config.max_parallel:
            return
        active = [job for job in listed.values() if not is_finished(job)]
        running = sum(not job["spec"].get("suspend") for job in active)
        waiting = sorted((job for job in active if job["spec"].get("suspend")),
                         key=lambda job: (job["metadata"].get("creationTimestamp") or "", job["metadata"]["name"]))
        for job in waiting[:max(self.config.max_parallel - running, 0)]:
            try:
                self._call(0, "patch_namespaced_job", job["metadata"]["name"], self.namespace, {"spec": {"suspend": False}})
            except _Refused:
                continue  # deleted meanwhile (cancelled)
            job["spec"]["suspend"] = False

    def _held_message(self, listed: dict[str, dict]) -> str:
        if not self.config.max_parallel:
            return "waiting: suspended until the cluster's queueing (e.g. Kueue) admits it"
        running = sum(not is_finished(job) and not job["spec"].get("suspend") for job in listed.values())
        return (f"waiting: {running} of your jobs are running, at most {self.config.max_parallel} run at once "
                "(jobs.kubernetes.max_parallel)")

    def cancel(self, ref: JobRef) -> None:
        try:
            self._call(0, "delete_namespaced_job", ref.backend_id, self.namespace, body={"propagationPolicy": "Background"})
        except _Refused as err:
            if err.status == 404:
                return
            raise ClusterUnavailable(f"Kubernetes did not delete the job: {err}") from None

    def availability(self) -> list[QueueInfo]:
        """Per queue: the cores and GPUs of its nodes (allocatable) against those the Pods on them request,
        and what waits: Pods no node took yet and the user's suspended Jobs. Without the right to list
        nodes, the user's share instead: ``max_parallel`` slots and the jobs running."""
        nodes = self._list_nodes(fresh=True)
        jobs = self._list_jobs()
        held: dict[str, int] = {}
        for job in jobs:
            if job["spec"].get("suspend") and not is_finished(job):
                queue = (job["metadata"].get("annotations") or {}).get(QUEUE_ANNOTATION, "")
                held[queue] = held.get(queue, 0) + 1
        if nodes is None:
            running = sum(not is_finished(job) and not job["spec"].get("suspend") for job in jobs)
            total = self.config.max_parallel or max(running, 1)
            return [QueueInfo(queue, used=running, free=max(total - running, 0), total=total,
                              pending=held.get(queue, 0)) for queue in self.queues]
        try:
            pods = self._call(1, "list_pod_for_all_namespaces",
                              field_selector="status.phase!=Succeeded,status.phase!=Failed")["items"]
        except _Refused:
            pods = [p for p in self._call(1, "list_namespaced_pod", self.namespace)["items"]
                    if p["status"].get("phase") not in ("Succeeded", "Failed")]
        requested: dict[str, dict[str, float]] = {}
        unplaced: list[dict] = []
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if not node:
                unplaced.append(pod)
                continue
            used = requested.setdefault(node, {})
            for name, value in pod_requests(pod).items():
                used[name] = used.get(name, 0.0) + value
        queues = []
        for queue in self.queues:
            selector = self.config.node_selectors.get(queue, {})
            chosen = [n for n in nodes if _usable(n) and _matches(n, selector)]

            allocatable = {name: math.floor(sum(_quantity((n["status"].get("allocatable") or {}).get(name, 0))
                                                for n in chosen)) for name in ("cpu", GPU)}
            in_use = {name: math.ceil(sum(requested.get(n["metadata"]["name"], {}).get(name, 0.0) for n in chosen))
                      for name in ("cpu", GPU)}
            total, gpus = allocatable["cpu"], allocatable[GPU]
            used, used_gpus = min(in_use["cpu"], total), min(in_use[GPU], gpus)
            idle = sum(not requested.get(n["metadata"]["name"], {}).get("cpu") for n in chosen)
            waiting = sum(_matches({"metadata": {"labels": selector}}, (p.get("spec") or {}).get("nodeSelector") or {})
                          for p in unplaced)
            queues.append(QueueInfo(queue, used=used, free=total - used, total=total, available=bool(chosen),
                                    nodes=len(chosen), free_nodes=idle, gpus=gpus, free_gpus=gpus - used_gpus,
                                    pending=waiting + held.get(queue, 0)))
        return queues

    def close(self) -> None:
        if self._api is not None:
            self._api[0].api_client.close()
            self._api = None


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _message(err) -> str:
    try:
        return json.loads(err.body).get("message", "") or str(err.reason)
    except (TypeError, ValueError, AttributeError):
        return str(err.reason)
