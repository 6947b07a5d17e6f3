"""The fake's one node: a scheduler that knows only this node's capacity, a PVC provisioner, and a
kubelet that runs each pod for real with ``podman kube play``.

Podman 4.3 cannot resolve ``env[].valueFrom``, ``$(VAR)``, Secret or ConfigMap volumes, so the kubelet does
that itself and hands podman a resolved copy of the pod: its own loopback address 127.0.0.N, host
network, hostPath volumes only, restartPolicy Never (the kubelet restarts crashed containers itself, with
the real back-off, so CrashLoopBackOff looks as it does in a cluster). It runs the readiness probes and
writes pod status and Events the way a real kubelet and scheduler write them.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

from pod_launcher.podman import KUBE_NETWORK

from .errors import ApiError
from .resources import RESOURCES
from .store import Change, Store, now

PODS = RESOURCES[("", "pods")]
EVENTS = RESOURCES[("", "events")]
SECRETS = RESOURCES[("", "secrets")]
CONFIGMAPS = RESOURCES[("", "configmaps")]
PVCS = RESOURCES[("", "persistentvolumeclaims")]
NODES = RESOURCES[("", "nodes")]
REPO = Path(__file__).resolve().parents[2]
MAX_BACKOFF = 300.0
STALE_RESTART = 5.0  # seconds a restarted container may keep showing its old run

_SUFFIXES = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(value) -> float:
    """A Kubernetes quantity ("50m", "64Mi", "1.5G", "2") as a number."""
    found = re.fullmatch(r"\s*([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not found or found.group(2) not in _SUFFIXES:
        raise ValueError(f"quantities must match the regular expression: {value!r}")
    return float(found.group(1)) * _SUFFIXES[found.group(2)]


def expand(text: str, values: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: a defined name is replaced, an undefined one kept, $$ is a $."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else values.get(m.group(1), m.group(0)), text)


@dataclass
class Node:
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    name: str = "fakekube-node"
    gpus: int = 0
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def labels(self) -> dict[str, str]:
        return {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}

    @property
    def allocatable(self) -> dict[str, float]:
        gpus = {"nvidia.com/gpu": float(self.gpus)} if self.gpus else {}
        return {"cpu": quantity(self.cpu), "memory": quantity(self.memory), "pods": float(self.pods)} | gpus

    def manifest(self) -> dict:
        """The Node object its kubelet registers: capacity = allocatable here (nothing is reserved)."""
        amounts = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods)} | (
            {"nvidia.com/gpu": str(self.gpus)} if self.gpus else {})
        return {"metadata": {"name": self.name, "labels": self.labels}, "spec": {},
                "status": {"capacity": dict(amounts), "allocatable": dict(amounts),
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status", "lastHeartbeatTime": now(),
                                           "lastTransitionTime": now()}],
                           "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                         {"type": "Hostname", "address": self.name}],
                           "nodeInfo": {"architecture": "amd64", "bootID": self.uid, "containerRuntimeVersion": "podman://4.3",
                                        "kernelVersion": os.uname().release, "kubeProxyVersion": "",
                                        "kubeletVersion": "v1.33.0", "machineID": self.uid, "operatingSystem": "linux",
                                        "osImage": "fakekube", "systemUUID": self.uid}}}


def pod_requests(pod: dict) -> dict[str, float]:
    """What the scheduler counts: the sum of the containers' requests, or the largest init container's."""
    spec = pod.get("spec") or {}
    total: dict[str, float] = {}
    for container in spec.get("containers", []):
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = total.get(name, 0) + quantity(value)
    for container in spec.get("initContainers", []):
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total.get(name, 0), quantity(value))
    return total


class PodProblem(Exception):
    """Why a pod cannot go on yet: the Event and the container waiting state the kubelet writes."""

    def __init__(self, reason: str, message: str, event_reason: str = "Failed", waiting: str | None = None,
                 container: str | None = None, event_message: str | None = None):
        super().__init__(message)
        self.reason, self.message, self.event_reason = reason, message, event_reason
        self.waiting = waiting
        self.container = container
        self.event_message = event_message or message


@dataclass
class ContainerRun:
    name: str
    image: str
    probe: dict | None
    state: dict = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""
    started_at: int = 0
    runs: list[tuple[int, int]] = field(default_factory=list)  # (started, finished) of earlier runs
    backoff: float = 0.0
    restart_at: float | None = None
    restarted_at: float | None = None  # when podman was last asked to start it again
    probe_successes: int = 0
    probe_failures: int = 0


@dataclass
class PodRun:
    uid: str
    namespace: str
    name: str
    ip: str
    folder: Path
    podman_name: str
    restart_policy: str
    containers: dict[str, ContainerRun]
    started: bool = False
    start_time: str = ""
    terminating: bool = False
    done: bool = False
    tasks: list[asyncio.Task] = field(default_factory=list)


class Kubelet:
    def __init__(self, store: Store, node: Node, base: Path, *, pod_ips: tuple[int, int] = (200, 249),
                 crash_backoff: float = 10.0, containers_conf: str | None = None):
        self.store = store
        self.node = node
        self.base = base
        self.pod_ips = pod_ips
        self.crash_backoff = crash_backoff
        self.containers_conf = containers_conf or str(REPO / "images" / "containers.conf")
        self.cluster_id = uuid.uuid4().hex[:8]
        self.runs: dict[str, PodRun] = {}
        self.pending: set[tuple[str, str]] = set()
        self.podman = shutil.which("podman")
        self._events: dict[tuple, str] = {}
        self._tasks: set[asyncio.Task] = set()
        self._monitor: asyncio.Task | None = None
        store.listeners.append(self._on_change)

    # -- life ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.store.create_cluster_object(NODES, self.node.manifest())
        self._monitor = asyncio.get_running_loop().create_task(self._watch_containers())

    async def stop(self) -> None:
        """Every pod this kubelet started is removed, and podman's bridge network if it appeared."""
        tasks = [t for t in [self._monitor, *self._tasks, *(t for r in self.runs.values() for t in r.tasks)] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for run in list(self.runs.values()):
            await self._remove_pod(run)
        self.runs.clear()
        if self.podman:
            # Also a pod whose kube play was cut short by the stop.
            _, out, _ = await self._podman("pod", "ps", "-q", "--filter", f"label=fakekube.cluster={self.cluster_id}")
            for pod in out.split():
                await self._podman("pod", "rm", "-f", pod)
            await self._remove_kube_network()

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- reacting to the store --------------------------------------------------------------------------

    def _on_change(self, rtype, change: Change) -> None:
        meta = change.obj["metadata"]
        if rtype is PVCS and change.type == "ADDED":
            self._spawn(self._provision(meta["namespace"], meta["name"]))
        elif rtype is PVCS and change.type == "DELETED":
            shutil.rmtree(self.base / "volumes" / f"pvc-{meta['uid']}", ignore_errors=True)
        if rtype is not PODS:
            return
        key = (meta["namespace"], meta["name"])
        run = self.runs.get(meta["uid"])
        if change.type == "ADDED" and not change.obj["spec"].get("nodeName"):
            self.pending.add(key)
            self._spawn(self._schedule_pending())
        elif change.type == "ADDED" and change.obj["spec"]["nodeName"] == self.node.name:
            self._spawn(self._run(change.obj))  # bound by its creator: the scheduler is bypassed
        elif change.type == "MODIFIED" and meta.get("deletionTimestamp") and run and not run.terminating:
            run.terminating = True
            self._spawn(self._terminate(run, meta.get("deletionGracePeriodSeconds", 30)))
        elif change.type == "DELETED":
            self.pending.discard(key)
            if run and not run.terminating:
                run.terminating = True
                self._spawn(self._terminate(run, 0))
            self._spawn(self._schedule_pending())

    # -- the scheduler ----------------------------------------------------------------------------------

    async def _schedule_pending(self) -> None:
        await asyncio.sleep(0)
        for namespace, name in sorted(self.pending):
            pod = self.store.find(PODS, namespace, name)
            if pod is None or pod["spec"].get("nodeName"):
                self.pending.discard((namespace, name))
                continue
            reasons = self._unfit(pod)
            if reasons:
                message = f"0/1 nodes are available: {reasons}. preemption: 0/1 nodes are available: " + (
                    "1 No preemption victims found for incoming pod." if "Insufficient" in reasons
                    else "1 Preemption is not helpful for scheduling.")
                self._set_condition(pod, "PodScheduled", "False", "Unschedulable", message)
                self._event(pod, "FailedScheduling", message, "Warning", component="default-scheduler")
                continue
            self.pending.discard((namespace, name))
            bound = self._write(pod, lambda p: p["spec"].__setitem__("nodeName", self.node.name))
            if bound is None:
                continue
            self._set_condition(bound, "PodScheduled", "True")
            self._event(bound, "Scheduled", f"Successfully assigned {namespace}/{name} to {self.node.name}",
                        component="default-scheduler")
            self._spawn(self._run(bound))

    def _unfit(self, pod: dict) -> str:
        for volume in pod["spec"].get("volumes", []):
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and self.store.find(PVCS, pod["metadata"]["namespace"], claim) is None:
                return f'persistentvolumeclaim "{claim}" not found'
        selector = pod["spec"].get("nodeSelector") or {}
        if any(self.node.labels.get(k) != v for k, v in selector.items()):
            return "1 node(s) didn't match Pod's node affinity/selector"
        used: dict[str, float] = {"pods": 0}
        for other in self.store.list(PODS, None, lambda p: p["spec"].get("nodeName") == self.node.name
                                     and p["status"].get("phase") not in ("Succeeded", "Failed")):
            used["pods"] += 1
            for name, value in pod_requests(other).items():
                used[name] = used.get(name, 0) + value
        wanted = pod_requests(pod) | {"pods": 1}
        allocatable = self.node.allocatable
        short = sorted(name for name, value in wanted.items()
                       if value > 0 and used.get(name, 0) + value > allocatable.get(name, 0))
        if "pods" in short:
            return "1 Too many pods"
        return ", ".join(f"1 Insufficient {name}" for name in short)

    # -- the PVC provisioner -----------------------------------------------------------------------------

    async def _provision(self, namespace: str, name: str) -> None:
        claim = self.store.find(PVCS, namespace, name)
        if claim is None:
            return
        volume = f"pvc-{claim['metadata']['uid']}"
        folder = self.base / "volumes" / volume
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o777)  # as local-path provisioners make them: any pod's uid may write

        def bind(pvc):
            pvc["spec"]["volumeName"] = volume
            pvc["status"] = {"phase": "Bound", "accessModes": pvc["spec"].get("accessModes", []),
                             "capacity": {"storage": ((pvc["spec"].get("resources") or {}).get("requests") or {})
                                          .get("storage", "1Gi")}}
        self.store.internal_update(PVCS, namespace, name, bind)

    # -- running a pod ---------------------------------------------------------------------------------

    def _address(self) -> str:
        """A 127.0.0.N no other pod has, of this kubelet or of another fake cluster on the machine (each
        claims its addresses with a file, taken back from a process that is gone)."""
        low, high = self.pod_ips
        for n in range(low, high + 1):
            if _claim(f"127.0.0.{n}"):
                return f"127.0.0.{n}"
        raise PodProblem("FailedCreatePodSandBox", f"fakekube: no free loopback address in 127.0.0.{low}-{high}")

    async def _run(self, pod: dict) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        containers = {c["name"]: ContainerRun(c["name"], c["image"], c.get("readinessProbe")) for c in spec["containers"]}
        run = PodRun(uid=meta["uid"], namespace=meta["namespace"], name=meta["name"], ip=self._address(),
                     folder=self.base / "pods" / meta["uid"], podman_name=f"fk{self.cluster_id}-{meta['name']}"[:60],
                     restart_policy=spec.get("restartPolicy", "Always"), containers=containers, start_time=now())
        self.runs[run.uid] = run
        run.folder.mkdir(parents=True, exist_ok=True)
        self._write_status(run)
        delay = 2.0
        while not run.terminating:
            pod = self.store.find(PODS, run.namespace, run.name)
            if pod is None:
                return
            try:
                await self._start_pod(run, pod)
                break
            except PodProblem as problem:
                self._problem(run, pod, problem)
            except (OSError, ValueError, KeyError, TypeError) as err:
                # The fake's own failure (e.g. not root, so no chown): shown as the pod's, not swallowed.
                self._problem(run, pod, PodProblem("CreateContainerError", f"fakekube: {type(err).__name__}: {err}"))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 20)

    def _problem(self, run: PodRun, pod: dict, problem: PodProblem) -> None:
        targets = [problem.container] if problem.container else list(run.containers)
        for name in targets:
            run.containers[name].state = {"waiting": {"reason": problem.waiting or problem.reason,
                                                      "message": problem.message}}
        self._write_status(run)
        field_path = f"spec.containers{{{problem.container}}}" if problem.container else None
        self._event(pod, problem.event_reason, problem.event_message, "Warning", field_path=field_path)

    async def _start_pod(self, run: PodRun, pod: dict) -> None:
        if not self.podman:
            raise PodProblem("FailedCreatePodSandBox", "fakekube: podman is not installed "
                             "(scripts/install-system.sh podman)")
        volumes = self._volumes(run, pod)
        await self._pull(run, pod)
        containers = [self._resolve(pod, c, run, volumes) for c in pod["spec"]["containers"]]
        init = [self._resolve(pod, c, run, volumes) for c in pod["spec"].get("initContainers", [])]
        security = dict(pod["spec"].get("securityContext") or {})
        if security.get("fsGroup") is not None:
            # A real kubelet adds the fsGroup to every container's groups; podman 4.3 does not, but it
            # does apply supplementalGroups.
            security["supplementalGroups"] = sorted({*security.get("supplementalGroups", []), security["fsGroup"]})
        resolved = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": run.podman_name, "labels": {"fakekube.cluster": self.cluster_id}},
                    "spec": {"hostNetwork": True, "restartPolicy": "Never", "securityContext": security,
                             "containers": [c for c, _ in containers],
                             **({"initContainers": [c for c, _ in init]} if init else {}),
                             "volumes": [v for _, vs in [*containers, *init] for v in vs]}}
        manifest = run.folder / "pod.yaml"
        manifest.write_text(yaml.safe_dump(resolved, sort_keys=False))
        await self._podman("pod", "rm", "-f", run.podman_name)
        code, _, err = await self._podman("kube", "play", str(manifest))
        await self._remove_kube_network()
        if run.terminating:  # deleted while podman was starting it: _terminate found nothing to stop
            await self._podman("pod", "rm", "-f", run.podman_name)
            return
        if code != 0:
            await self._podman("pod", "rm", "-f", run.podman_name)
            raise PodProblem("CreateContainerError", err.strip()[-400:] or "podman kube play failed",
                             event_message=f"Error: {err.strip()[-400:]}")
        run.started = True
        states = await self._container_states(run)
        for name, container in run.containers.items():
            self._event(pod, "Created", f"Created container {name}", field_path=f"spec.containers{{{name}}}")
            self._event(pod, "Started", f"Started container {name}", field_path=f"spec.containers{{{name}}}")
            self._observe(run, container, states.get(name))
            if container.probe:
                run.tasks.append(self._spawn(self._probe(run, container)))
            liveness = next(c for c in pod["spec"]["containers"] if c["name"] == name).get("livenessProbe")
            if liveness:
                run.tasks.append(self._spawn(self._liveness(run, container, liveness)))
        self._write_status(run)

    # -- volumes and environment, which podman cannot resolve ----------------------------------------------

    def _volumes(self, run: PodRun, pod: dict) -> dict[str, tuple[Path, bool]]:
        """Each volume as a folder (or file) on this machine, and whether it is read-only."""
        namespace = run.namespace
        security = pod["spec"].get("securityContext") or {}
        group = security.get("fsGroup")
        made = {}
        for volume in pod["spec"].get("volumes", []):
            name = volume["name"]
            where = run.folder / "volumes" / name
            if "secret" in volume or "configMap" in volume:
                source = volume.get("secret") or volume.get("configMap")
                rtype = SECRETS if "secret" in volume else CONFIGMAPS
                object_name = source.get("secretName") if rtype is SECRETS else source.get("name")
                obj = self.store.find(rtype, namespace, object_name)
                if obj is None:
                    if source.get("optional"):
                        obj = {"data": {}}
                    else:
                        kind = "secret" if rtype is SECRETS else "configmap"
                        raise PodProblem("FailedMount", f'MountVolume.SetUp failed for volume "{name}" : '
                                         f'{kind} "{object_name}" not found', event_reason="FailedMount")
                files = _data(rtype, obj)
                if source.get("items"):
                    chosen = {}
                    for item in source["items"]:
                        if item["key"] not in files:
                            if source.get("optional"):
                                continue
                            raise PodProblem("FailedMount", f'MountVolume.SetUp failed for volume "{name}" : '
                                             f"configmap references non-existent config key: {item['key']}",
                                             event_reason="FailedMount")
                        chosen[item["path"]] = (files[item["key"]], item.get("mode"))
                else:
                    chosen = {key: (value, None) for key, value in files.items()}
                _write_atomic(where, chosen, source.get("defaultMode", 0o644), group)
                made[name] = (where, True)
            elif "emptyDir" in volume:
                where.mkdir(parents=True, exist_ok=True)
                os.chmod(where, 0o777)  # the kubelet's emptyDir: world-writable, so any runAsUser may write
                made[name] = (where, False)
            elif "hostPath" in volume:
                made[name] = (self._host_path(name, volume["hostPath"]), False)
            elif "persistentVolumeClaim" in volume:
                claim = self.store.find(PVCS, namespace, volume["persistentVolumeClaim"]["claimName"])
                if claim is None or claim.get("status", {}).get("phase") != "Bound":
                    raise PodProblem("FailedMount", f'Unable to attach or mount volumes: unmounted volumes=[{name}]: '
                                     "timed out waiting for the condition", event_reason="FailedMount")
                folder = self.base / "volumes" / claim["spec"]["volumeName"]
                if group is not None:
                    os.chown(folder, -1, group)
                    os.chmod(folder, 0o2775)  # fsGroup ownership, as a block volume's driver applies it
                made[name] = (folder, bool(volume["persistentVolumeClaim"].get("readOnly")))
            elif "nfs" in volume:
                export = self.base / "nfs" / volume["nfs"]["server"] / volume["nfs"]["path"].lstrip("/")
                if not export.is_dir():
                    raise PodProblem("FailedMount", f'MountVolume.SetUp failed for volume "{name}" : mount failed: '
                                     f"exit status 32: mount.nfs: access denied by server while mounting "
                                     f"{volume['nfs']['server']}:{volume['nfs']['path']}", event_reason="FailedMount")
                made[name] = (export, bool(volume["nfs"].get("readOnly")))
            else:
                raise PodProblem("FailedMount", f'fakekube does not support the volume "{name}" '
                                 f"({', '.join(k for k in volume if k != 'name')})", event_reason="FailedMount")
        return made

    def _host_path(self, name: str, source: dict) -> Path:
        path = Path(source["path"])
        kind = source.get("type", "")
        if kind == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate" and not path.exists():
            path.touch()
        checks = {"Directory": path.is_dir, "File": path.is_file, "Socket": path.is_socket}
        if kind in checks and not checks[kind]():
            raise PodProblem("FailedMount", f'MountVolume.SetUp failed for volume "{name}" : hostPath type check '
                             f"failed: {path} is not a {kind.lower()}", event_reason="FailedMount")
        return path

    def _env(self, pod: dict, container: dict, run: PodRun) -> dict[str, str]:
        namespace = run.namespace
        values: dict[str, str] = {}
        for source in container.get("envFrom", []):
            ref = source.get("secretRef") or source.get("configMapRef")
            rtype = SECRETS if "secretRef" in source else CONFIGMAPS
            obj = self.store.find(rtype, namespace, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise self._config_error(container, f'{"secret" if rtype is SECRETS else "configmap"} "{ref["name"]}" not found')
            for key, value in _data(rtype, obj).items():
                values[source.get("prefix", "") + key] = value.decode(errors="replace")
        for entry in container.get("env", []):
            if "value" in entry or "valueFrom" not in entry:
                values[entry["name"]] = expand(entry.get("value", ""), values)
                continue
            value = self._value_from(pod, container, run, entry["valueFrom"])
            if value is not None:
                values[entry["name"]] = value
        return values

    def _value_from(self, pod: dict, container: dict, run: PodRun, source: dict) -> str | None:
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            meta = pod["metadata"]
            fields = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
                      "spec.nodeName": self.node.name, "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                      "status.hostIP": "127.0.0.1", "status.hostIPs": "127.0.0.1", "status.podIP": run.ip,
                      "status.podIPs": run.ip}
            found = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
            if found:
                return (meta.get(found.group(1)) or {}).get(found.group(2), "")
            if path not in fields:
                raise self._config_error(container, f'unsupported fieldPath: "{path}"')
            return fields[path]
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            what, _, resource = ref["resource"].partition(".")
            value = ((container.get("resources") or {}).get(what) or {}).get(resource)
            if value is None:
                value = self.node.allocatable.get(resource, 0)
            divisor = quantity(ref.get("divisor", "1"))
            return str(math.ceil(quantity(value) / divisor))
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
        rtype = SECRETS if "secretKeyRef" in source else CONFIGMAPS
        kind = "secret" if rtype is SECRETS else "configmap"
        obj = self.store.find(rtype, run.namespace, ref["name"])
        if obj is None:
            if ref.get("optional"):
                return None
            raise self._config_error(container, f'{kind} "{ref["name"]}" not found')
        data = _data(rtype, obj)
        if ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise self._config_error(container, f"couldn't find key {ref['key']} in {rtype.kind} {run.namespace}/{ref['name']}")
        return data[ref["key"]].decode(errors="replace")

    def _config_error(self, container: dict, message: str) -> PodProblem:
        return PodProblem("CreateContainerConfigError", message, container=container["name"],
                          event_message=f"Error: {message}")

    def _resolve(self, pod: dict, container: dict, run: PodRun, volumes: dict) -> tuple[dict, list[dict]]:
        """The container as podman can run it: plain env values, expanded argv, hostPath mounts."""
        env = self._env(pod, container, run)
        resolved = {"name": container["name"], "image": container["image"], "imagePullPolicy": "Never"}
        for key in ("command", "args"):
            if key in container:
                resolved[key] = [expand(part, env) for part in container[key]]
        if "workingDir" in container:
            resolved["workingDir"] = container["workingDir"]
        resolved["env"] = [{"name": k, "value": v} for k, v in env.items()]
        for key in ("resources", "securityContext", "stdin", "tty"):
            if key in container:
                resolved[key] = container[key]
        mounts, host_volumes = [], []
        for i, mount in enumerate(container.get("volumeMounts", [])):
            folder, read_only = volumes[mount["name"]]
            source = folder / mount["subPath"] if mount.get("subPath") else folder
            name = f"{container['name']}-m{i}"[:63]
            host_volumes.append({"name": name, "hostPath": {"path": os.path.realpath(source)}})
            mounts.append({"name": name, "mountPath": mount["mountPath"],
                           "readOnly": bool(mount.get("readOnly")) or read_only})
        resolved["volumeMounts"] = mounts
        return resolved, host_volumes

    async def _pull(self, run: PodRun, pod: dict) -> None:
        for container in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]:
            image, policy = container["image"], container.get("imagePullPolicy", "IfNotPresent")
            name = container["name"]
            where = f"spec.containers{{{name}}}"
            present = (await self._podman("image", "exists", image))[0] == 0
            if present:
                if policy == "Always":
                    self._event(pod, "Pulling", f'Pulling image "{image}"', field_path=where)
                    self._event(pod, "Pulled", f'Successfully pulled image "{image}" in 0s (0s including waiting)',
                                field_path=where)
                else:
                    self._event(pod, "Pulled", f'Container image "{image}" already present on machine', field_path=where)
                continue
            if policy == "Never":
                message = f'Container image "{image}" is not present with pull policy of Never'
                raise PodProblem("ErrImageNeverPull", message, event_reason="ErrImageNeverPull", container=name)
            # No registry is reachable from here (and tests may not try): a pull fails as it would offline.
            self._event(pod, "Pulling", f'Pulling image "{image}"', field_path=where)
            error = (f'Failed to pull image "{image}": rpc error: code = Unknown desc = fakekube: image "{image}" is not '
                     "on the node and no registry is reachable")
            run.containers[name].state = {"waiting": {"reason": "ErrImagePull", "message": error}}
            self._write_status(run)
            self._event(pod, "Failed", error, "Warning", field_path=where)
            self._event(pod, "Failed", "Error: ErrImagePull", "Warning", field_path=where)
            await asyncio.sleep(1)
            self._event(pod, "BackOff", f'Back-off pulling image "{image}"', field_path=where)
            raise PodProblem("ImagePullBackOff", f'Back-off pulling image "{image}"', waiting="ImagePullBackOff",
                             container=name, event_message="Error: ImagePullBackOff")

    # -- watching the containers -------------------------------------------------------------------------

    async def _container_states(self, run: PodRun | None = None) -> dict[str, dict]:
        """podman's view of the containers of one pod (by container name), or of every pod this kubelet
        runs (by "<podman pod>-<container>"): one ``podman ps`` for all, the machine has few cores."""
        wanted = ("--filter", f"pod={run.podman_name}") if run else ("--filter", f"name=^fk{self.cluster_id}-")
        code, out, _ = await self._podman("ps", "-a", "--format", "json", *wanted)
        if code != 0:
            return {}
        states = {}
        for container in json.loads(out or "[]") or []:
            for name in container.get("Names", []):
                if run is None:
                    states[name] = container
                elif name.startswith(f"{run.podman_name}-"):
                    states[name.removeprefix(f"{run.podman_name}-")] = container
        return states

    async def _watch_containers(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1)
            runs = [r for r in self.runs.values() if r.started and not r.terminating and not r.done]
            if not runs:
                continue
            try:
                every = await self._container_states()
            except (OSError, ValueError):
                continue
            for run in runs:
                states = {name.removeprefix(f"{run.podman_name}-"): state for name, state in every.items()
                          if name.startswith(f"{run.podman_name}-")}
                changed = False
                for container in run.containers.values():
                    if container.restart_at is not None:
                        if loop.time() >= container.restart_at and not run.terminating:
                            container.restart_at = None
                            code, _, err = await self._podman("start", f"{run.podman_name}-{container.name}")
                            if code != 0:
                                self._restart_failed(run, container, err.strip() or f"podman start: exit {code}")
                                changed = True
                                continue
                            container.restarted_at = loop.time()
                            container.restart_count += 1
                            pod = self.store.find(PODS, run.namespace, run.name)
                            if pod is not None:
                                where = f"spec.containers{{{container.name}}}"
                                self._event(pod, "Pulled", f'Container image "{container.image}" already present on '
                                            "machine", field_path=where)
                                self._event(pod, "Created", f"Created container {container.name}", field_path=where)
                                self._event(pod, "Started", f"Started container {container.name}", field_path=where)
                            changed = True
                        continue
                    changed |= self._observe(run, container, states.get(container.name))
                if changed:
                    self._write_status(run)

    def _observe(self, run: PodRun, container: ContainerRun, state: dict | None) -> bool:
        """Takes in podman's view of one container; True when the pod's status must be written."""
        if state is None:
            return False
        container.container_id = f"podman://{state.get('Id', '')}"
        if state.get("State") == "running":
            started = int(state.get("StartedAt") or 0)
            if "running" in container.state and container.started_at == started:
                return False
            container.started_at = started
            container.started = True
            container.restarted_at = None
            container.state = {"running": {"startedAt": _stamp(started)}}
            container.ready = container.probe is None
            return True
        if state.get("State") not in ("exited", "stopped") or "terminated" in container.state \
                or container.restart_at is not None:
            return False
        code = int(state.get("ExitCode") or 0)
        started, finished = int(state.get("StartedAt") or 0), int(state.get("ExitedAt") or 0)
        if (started, finished) in container.runs:
            # Still the run seen before: a restart podman accepted did not take. Seen once in a busy
            # full run (the pod never reached CrashLoopBackOff); a kubelet tries again after the back-off.
            waited = asyncio.get_running_loop().time() - (container.restarted_at or 0)
            if container.restarted_at is not None and waited > STALE_RESTART:
                self._restart_failed(run, container, "the container did not start again")
                return True
            return False
        container.runs.append((started, finished))
        container.restarted_at = None
        container.started = True
        terminated = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": _stamp(started), "finishedAt": _stamp(finished),
                                     "containerID": container.container_id}}
        container.ready = False
        restart = run.restart_policy == "Always" or (run.restart_policy == "OnFailure" and code != 0)
        if not restart:
            container.state = terminated
            return True
        container.last_state = terminated
        pod = self.store.find(PODS, run.namespace, run.name)
        loop = asyncio.get_running_loop()
        if container.backoff == 0:
            # The first restart is at once; later ones wait 10 s, 20 s, ... up to 5 min (the kubelet's back-off).
            container.restart_at = loop.time()
            container.backoff = self.crash_backoff
            container.state = {"waiting": {"reason": "ContainerCreating"}}
        else:
            container.restart_at = loop.time() + container.backoff
            message = (f"back-off {container.backoff:.0f}s restarting failed container={container.name} "
                       f"pod={run.name}_{run.namespace}({run.uid})")
            container.state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
            container.backoff = min(container.backoff * 2, MAX_BACKOFF)
            if pod is not None:
                self._event(pod, "BackOff", f"Back-off restarting failed container {container.name} in pod "
                            f"{run.name}_{run.namespace}({run.uid})", "Warning",
                            field_path=f"spec.containers{{{container.name}}}")
        return True

    def _restart_failed(self, run: PodRun, container: ContainerRun, why: str) -> None:
        container.restarted_at = None
        container.backoff = max(container.backoff, self.crash_backoff)
        container.restart_at = asyncio.get_running_loop().time() + container.backoff
        container.state = {"waiting": {"reason": "CrashLoopBackOff", "message": (
            f"back-off {container.backoff:.0f}s restarting failed container={container.name} "
            f"pod={run.name}_{run.namespace}({run.uid}): {why[:300]}")}}
        container.backoff = min(container.backoff * 2, MAX_BACKOFF)
        pod = self.store.find(PODS, run.namespace, run.name)
        if pod is not None:
            self._event(pod, "BackOff", f"Back-off restarting failed container {container.name}: {why[:300]}",
                        "Warning", field_path=f"spec.containers{{{container.name}}}")

    async def _probe(self, run: PodRun, container: ContainerRun) -> None:
        probe = container.probe
        await asyncio.sleep(probe.get("initialDelaySeconds", 0))
        while not run.terminating:
            if "running" in container.state:
                ok = await self._try_probe(run, probe, container.name)
                if ok:
                    container.probe_successes, container.probe_failures = container.probe_successes + 1, 0
                else:
                    container.probe_successes, container.probe_failures = 0, container.probe_failures + 1
                ready = container.ready
                if ok and container.probe_successes >= probe.get("successThreshold", 1):
                    ready = True
                elif not ok and container.probe_failures >= probe.get("failureThreshold", 3):
                    ready = False
                if ready != container.ready:
                    container.ready = ready
                    self._write_status(run)
                    if not ready:
                        pod = self.store.find(PODS, run.namespace, run.name)
                        if pod is not None:
                            self._event(pod, "Unhealthy", "Readiness probe failed", "Warning",
                                        field_path=f"spec.containers{{{container.name}}}")
            await asyncio.sleep(probe.get("periodSeconds", 10))

    async def _liveness(self, run: PodRun, container: ContainerRun, probe: dict) -> None:
        """A container failing its liveness probe ``failureThreshold`` times is stopped; the restart
        policy and back-off do the rest, as with a crash."""
        await asyncio.sleep(probe.get("initialDelaySeconds", 0))
        failures = 0
        while not run.terminating:
            if "running" in container.state:
                failures = 0 if await self._try_probe(run, probe, container.name) else failures + 1
                if failures >= probe.get("failureThreshold", 3):
                    failures = 0
                    pod = self.store.find(PODS, run.namespace, run.name)
                    if pod is not None:
                        where = f"spec.containers{{{container.name}}}"
                        self._event(pod, "Unhealthy", "Liveness probe failed", "Warning", field_path=where)
                        self._event(pod, "Killing", f"Container {container.name} failed liveness probe, will be "
                                    "restarted", field_path=where)
                    grace = (pod or {}).get("spec", {}).get("terminationGracePeriodSeconds", 30)
                    await self._podman("stop", "-t", str(min(grace, 10)), f"{run.podman_name}-{container.name}")
            await asyncio.sleep(probe.get("periodSeconds", 10))

    async def _try_probe(self, run: PodRun, probe: dict, container: str) -> bool:
        timeout = probe.get("timeoutSeconds", 1)
        pod = self.store.find(PODS, run.namespace, run.name)
        if pod is None:
            return False

        def port_of(port):
            if isinstance(port, int) or str(port).isdigit():
                return int(port)
            for c in pod["spec"]["containers"]:
                for p in c.get("ports", []):
                    if p.get("name") == port:
                        return p["containerPort"]
            return 0
        try:
            if "tcpSocket" in probe:
                host = probe["tcpSocket"].get("host") or run.ip
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port_of(probe["tcpSocket"]["port"])), timeout)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return True
            if "httpGet" in probe:
                get = probe["httpGet"]
                url = f"http://{get.get('host') or run.ip}:{port_of(get['port'])}{get.get('path', '/')}"
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                        session.get(url, headers=headers, allow_redirects=False) as answer:
                    return 200 <= answer.status < 400
            if "exec" in probe:
                code, _, _ = await asyncio.wait_for(
                    self._podman("exec", f"{run.podman_name}-{container}", *probe["exec"]["command"]), timeout)
                return code == 0
        except (OSError, TimeoutError, aiohttp.ClientError):
            return False
        return True  # a grpc probe is not run: counted as passing

    # -- stopping ----------------------------------------------------------------------------------------

    async def _terminate(self, run: PodRun, grace: int) -> None:
        for task in run.tasks:
            task.cancel()
        pod = self.store.find(PODS, run.namespace, run.name)
        if pod is not None and run.started:
            for name in run.containers:
                self._event(pod, "Killing", f"Stopping container {name}", field_path=f"spec.containers{{{name}}}")
        await self._remove_pod(run, grace)
        self.runs.pop(run.uid, None)
        if pod is not None and pod["metadata"]["uid"] == run.uid:
            self.store.finish_deletion(PODS, run.namespace, run.name)
        self._spawn(self._schedule_pending())

    async def _remove_pod(self, run: PodRun, grace: int = 0) -> None:
        if run.started and self.podman:
            await self._podman("pod", "stop", "-t", str(max(0, min(grace, 10))), run.podman_name)
            await self._podman("pod", "rm", "-f", run.podman_name)
        run.done = True
        shutil.rmtree(run.folder, ignore_errors=True)
        _release(run.ip)

    async def logs(self, pod: dict, container: str, tail: int | None = None, previous: bool = False) -> str:
        run = self.runs.get(pod["metadata"]["uid"])
        if run is None or not run.started or container not in run.containers:
            state = run.containers[container].state if run and container in run.containers else {}
            reason = state.get("waiting", {}).get("reason", "ContainerCreating")
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting '
                           f"to start: {reason}")
        current = run.containers[container]
        args = ["logs"]
        if previous:
            if len(current.runs) < (1 if "running" in current.state or current.restart_at else 2):
                raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod '
                               f'"{pod["metadata"]["name"]}" not found')
            began, ended = current.runs[-1] if "running" in current.state or current.restart_at else current.runs[-2]
            args += ["--since", str(began), "--until", str(ended + 1)]
        elif current.runs and current.restart_at is None and "running" in current.state:
            args += ["--since", str(current.started_at)]
        elif current.runs:
            args += ["--since", str(current.runs[-1][0])]
        code, out, _ = await self._podman(*args, f"{run.podman_name}-{container}", merged=True)
        if code != 0:
            return ""
        # Cut here, not with podman's --tail: podman 4.3 counts a line written in two pieces (Python's
        # unbuffered print) as two and drops the first piece.
        return "".join(out.splitlines(keepends=True)[-tail:]) if tail else ("" if tail == 0 else out)

    # -- writing status and events -----------------------------------------------------------------------

    def _write(self, pod: dict, change) -> dict | None:
        return self.store.internal_update(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], change,
                                          uid=pod["metadata"]["uid"])

    def _set_condition(self, pod: dict, kind: str, status: str, reason: str = "", message: str = "") -> None:
        def change(p):
            _condition(p["status"], kind, status, reason, message)
        self._write(pod, change)

    def _write_status(self, run: PodRun) -> None:
        def change(pod):
            status = pod["status"]
            statuses = []
            for name, c in run.containers.items():
                entry = {"name": name, "image": c.image, "imageID": "", "ready": c.ready, "started": "running" in c.state,
                         "restartCount": c.restart_count, "state": c.state, "lastState": c.last_state}
                if c.container_id:
                    entry["containerID"] = c.container_id
                statuses.append(entry)
            status["containerStatuses"] = statuses
            status.update({"hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}], "podIP": run.ip,
                           "podIPs": [{"ip": run.ip}], "startTime": run.start_time})
            running = [c for c in run.containers.values() if "running" in c.state]
            terminated = [c for c in run.containers.values() if "terminated" in c.state]
            if terminated and len(terminated) == len(run.containers):
                failed = any(c.state["terminated"]["exitCode"] != 0 for c in terminated)
                status["phase"] = "Failed" if failed else "Succeeded"
            elif running or any(c.started for c in run.containers.values()):
                status["phase"] = "Running"
            else:
                status["phase"] = "Pending"
            unready = [c.name for c in run.containers.values() if not c.ready]
            _condition(status, "PodReadyToStartContainers", "True" if run.started else "False")
            _condition(status, "Initialized", "True")
            reason = "" if not unready else ("PodCompleted" if status["phase"] == "Succeeded" else "ContainersNotReady")
            message = f"containers with unready status: [{' '.join(unready)}]" if unready and reason != "PodCompleted" else ""
            _condition(status, "ContainersReady", "False" if unready else "True", reason, message)
            _condition(status, "Ready", "False" if unready else "True", reason, message)
            order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
            status["conditions"].sort(key=lambda c: order.index(c["type"]) if c["type"] in order else 9)
        self.store.internal_update(PODS, run.namespace, run.name, change, uid=run.uid)

    def _event(self, obj: dict, reason: str, message: str, kind: str = "Normal", *, component: str = "kubelet",
               field_path: str | None = None) -> None:
        """An Event about ``obj``; the same one again raises its count, as the real event recorder does."""
        meta = obj["metadata"]
        involved = {"kind": obj.get("kind", "Pod"), "namespace": meta["namespace"], "name": meta["name"],
                    "uid": meta["uid"], "apiVersion": obj.get("apiVersion", "v1"),
                    "resourceVersion": meta.get("resourceVersion", "")}
        if field_path:
            involved["fieldPath"] = field_path
        key = (meta["uid"], reason, message, field_path)
        stamp = now()
        existing = self._events.get(key)
        if existing and self.store.find(EVENTS, meta["namespace"], existing) is not None:
            def again(event):
                event["count"] = event.get("count", 1) + 1
                event["lastTimestamp"] = stamp
            self.store.internal_update(EVENTS, meta["namespace"], existing, again)
            return
        name = f"{meta['name']}.{uuid.uuid4().hex[:16]}"
        self._events[key] = name
        source = {"component": component} | ({"host": self.node.name} if component == "kubelet" else {})
        try:
            self.store.create(EVENTS, meta["namespace"], {
                "metadata": {"name": name}, "involvedObject": involved, "reason": reason, "message": message,
                "type": kind, "source": source, "count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp,
                "reportingComponent": component, "reportingInstance": self.node.name if component == "kubelet" else ""},
                validate=False)
        except ApiError:
            pass

    # -- podman ------------------------------------------------------------------------------------------

    async def _podman(self, *args: str, merged: bool = False) -> tuple[int, str, str]:
        """Runs podman; ``merged``: its stderr into its stdout, in order (a container's two streams, as
        ``podman logs`` gives them back, interleave as they were written)."""
        env = dict(os.environ, CONTAINERS_CONF=self.containers_conf)
        process = await asyncio.create_subprocess_exec(
            self.podman or "podman", *args, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if merged else asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(), 120)
        except TimeoutError:
            process.kill()
            await process.wait()
            return 1, "", f"podman {' '.join(args[:2])} did not finish within 120 s"
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        return process.returncode, out.decode(errors="replace"), (err or b"").decode(errors="replace")

    async def _remove_kube_network(self) -> None:
        if (await self._podman("network", "exists", KUBE_NETWORK))[0] == 0:
            await self._podman("network", "rm", "-f", KUBE_NETWORK)


def _claims() -> Path:
    folder = Path(tempfile.gettempdir()) / "fakekube-addresses"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _claim(address: str) -> bool:
    path = _claims() / address
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        try:
            owner = int(path.read_text() or 0)
            os.kill(owner, 0)
            return False
        except (ValueError, ProcessLookupError, FileNotFoundError):
            path.unlink(missing_ok=True)  # its process is gone
            return _claim(address)
        except PermissionError:
            return False
    with os.fdopen(descriptor, "w") as out:
        out.write(str(os.getpid()))
    return True


def _release(address: str) -> None:
    path = _claims() / address
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text()) == os.getpid():
            path.unlink()


def _data(rtype, obj: dict) -> dict[str, bytes]:
    if rtype is SECRETS:
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    return data | {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}


def _write_atomic(folder: Path, files: dict[str, tuple[bytes, int | None]], default_mode: int, group: int | None) -> None:
    """The kubelet's atomic writer: the files in a timestamped folder, ``..data`` pointing at it, and each
    key a link through ``..data``. With an fsGroup the files are root:fsGroup and group-readable, as the
    kubelet's volume ownership makes them; without, root's."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    payload = folder / stamp
    payload.mkdir()
    for relative, (content, mode) in files.items():
        target = payload / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        wanted = default_mode if mode is None else mode
        if group is not None:
            os.chown(target, 0, group)
            wanted |= 0o440
        os.chmod(target, wanted)
        top = relative.split("/")[0]
        link = folder / top
        if not link.exists() and not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    if group is not None:
        os.chown(payload, 0, group)
    os.chmod(payload, 0o755 if group is None else 0o2755)
    data = folder / "..data"
    temporary = folder / "..data_tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(stamp)
    os.replace(temporary, data)


def _stamp(unix: int) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if unix else now()


def _condition(status: dict, kind: str, value: str, reason: str = "", message: str = "") -> None:
    conditions = status.setdefault("conditions", [])
    entry = next((c for c in conditions if c["type"] == kind), None)
    if entry is None:
        entry = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": now()}
        conditions.append(entry)
    elif entry["status"] != value:
        entry["status"] = value
        entry["lastTransitionTime"] = now()
    for key, text in (("reason", reason), ("message", message)):
        if text:
            entry[key] = text
        else:
            entry.pop(key, None)
