"""Kubernetes objects of a session, as pure functions: (contract, identity, settings) -> manifest dict.

The same Pod runs under ``podman kube play`` on one machine (``network="host"``: its own loopback address)
and is sent to a Kubernetes API server by the kubernetes launcher (``network="cluster"``: the pod's own IP,
bound through ``$(POD_IP)``), with the Secret, Service, NetworkPolicy and PVC beside it. Nothing here
touches the system; tests check the dicts and validate them against Kubernetes' schema.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from hebi_common.identity import Identity

from .spec import CONFIG_PATH, SECRET_PATH, TMP, SessionSpec, session_environment

APP_LABEL = "hebi"
USER_LABEL = "hebi/user"
INSTANCE_LABEL = "hebi/instance"
USER_ANNOTATION = "hebi/user-name"
PROFILE_ANNOTATION = "hebi/profile"
#: The longest DNS-1123 label: every object name and label value.
NAME_LIMIT = 63
#: What a name ends with when it was changed to fit (sanitised or cut): a raw name that looks so is
#: changed too, so a changed name can never be another user's raw one.
_HASHED = re.compile(r"-[0-9a-f]{6}$")
#: The variable every container of a cluster pod gets from ``status.podIP`` and binds with ``$(POD_IP)``.
POD_IP = "POD_IP"


@dataclass(frozen=True)
class MountedRoot:
    name: str
    #: Where the configuration names it (and where it appears in the pod) and the folder it really is.
    path: str
    host_path: str
    writable: bool
    #: The volume's source in a cluster (``{"nfs": ...}``, ``{"persistentVolumeClaim": ...}``,
    #: ``{"hostPath": ...}``); None: a hostPath of ``host_path``.
    source: dict | None = None
    sub_path: str = ""


@dataclass(frozen=True)
class PodSettings:
    """Everything about one user's pod that is not the contract or the identity."""

    #: Which hebi installation the pod belongs to (a label), so two never see each other's pods.
    instance: str
    #: The pod's own loopback address; its servers listen there (host network).
    address: str
    images: dict[str, str]
    roots: tuple[MountedRoot, ...]
    state_dir: str
    #: Files on the host, made by the launcher: the session's configuration and its secret (0400, owned
    #: by the user's uid).
    config_file: str
    secret_file: str
    #: Seconds nginx lets a client send nothing of a body (gateway.body_idle_timeout).
    body_timeout: float = 60
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    pull_policy: str = "Never"
    extra_labels: dict[str, str] = field(default_factory=dict)
    #: ``host``: the pod on the host network at ``address`` (podman); ``cluster``: its own IP, ``address``
    #: ignored, the configuration and secret from the Secret ``session_secret`` (kubernetes).
    network: Literal["host", "cluster"] = "host"
    session_secret: str = ""
    #: The state folder's volume source in a cluster (None: a hostPath of ``state_dir``).
    state_source: dict | None = None
    #: A profile's choices: resources replacing a part's (by part name), where the pod may run.
    part_resources: dict[str, dict] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    supplemental_groups: tuple[int, ...] = ()
    extra_annotations: dict[str, str] = field(default_factory=dict)
    #: Further read-only volumes of the session's services, at their own paths: what the job backends
    #: need from the node (a GridEngine install, Slurm's configuration, munge's socket).
    extra_mounts: tuple[MountedRoot, ...] = ()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _fit(raw: str, limit: int = NAME_LIMIT) -> str:
    """``raw`` as a DNS-1123 label of at most ``limit`` characters, the same only when it already is one
    (and does not end like a changed one); else sanitised, cut and given a hash of ``raw``, so two raw
    names never give one label."""
    safe = re.sub(r"[^a-z0-9-]", "-", raw).strip("-") or "user"
    if safe == raw and len(raw) <= limit and not _HASHED.search(raw):
        return raw
    return f"{safe[:limit - 7].rstrip('-')}-{_digest(raw)}"


def safe_name(user: str) -> str:
    """A user name as a DNS label and label value (user names may hold '_', which neither allows)."""
    return _fit(user)


def pod_name(instance: str, user: str) -> str:
    """The name of every object of the user's session (Pod, Secret, Service, NetworkPolicy, PVC: each a
    kind of its own, so one name serves all)."""
    name = f"hebi-{instance}-{safe_name(user)}"
    return name if len(name) <= NAME_LIMIT else f"{name[:NAME_LIMIT - 7].rstrip('-')}-{_digest(f'{instance}/{user}')}"


def labels(instance: str, user: str) -> dict[str, str]:
    return {"app": APP_LABEL, INSTANCE_LABEL: instance, USER_LABEL: safe_name(user)}


def metadata(instance: str, user: str, **more) -> dict:
    return {"name": pod_name(instance, user), "labels": labels(instance, user),
            "annotations": {USER_ANNOTATION: user}} | more


def scratch_volume(pod: str, part: str) -> str:
    """The name of a part's emptyDir (its /tmp). Unique to the pod: podman 4.3 makes an emptyDir a named
    volume of this name, which every pod naming it alike would share."""
    return f"tmp-{part}-{hashlib.sha256(pod.encode()).hexdigest()[:10]}"


def scratch_volumes(pod: dict) -> list[str]:
    return [v["name"] for v in pod["spec"]["volumes"] if "emptyDir" in v]


def _expand(template: str, identity: Identity, gid: int) -> str:
    return template.replace("{user}", identity.user).replace("{uid}", str(identity.uid)).replace("{gid}", str(gid))


def volume_source(volume, identity: Identity) -> tuple[dict, str]:
    """A configured volume (hebi_common.config.KubeVolumeConfig) for one user: its source dict, with
    ``{user}``, ``{uid}`` and ``{gid}`` expanded, and its subPath."""
    gid = identity.uid if identity.gid is None else identity.gid
    if volume.host_path:
        source = {"hostPath": {"path": _expand(volume.host_path, identity, gid), "type": "Directory"}}
    elif volume.claim:
        source = {"persistentVolumeClaim": {"claimName": _expand(volume.claim, identity, gid)}}
    else:
        source = {"nfs": {"server": _expand(volume.nfs_server, identity, gid),
                          "path": _expand(volume.nfs_path, identity, gid)}}
    return source, _expand(volume.sub_path, identity, gid)


def make_pod(spec: SessionSpec, identity: Identity, settings: PodSettings) -> dict:
    if identity.uid is None:
        raise ValueError(f"{identity.user} has no uid: a session in a container runs as its account's uid")
    gid = identity.uid if identity.gid is None else identity.gid
    cluster = settings.network == "cluster"
    if cluster and not settings.session_secret:
        raise ValueError("a pod in a cluster reads its configuration and secret from a Secret: name it")
    address = f"$({POD_IP})" if cluster else settings.address

    def mount(name: str, path: str, read_only: bool, sub_path: str = "") -> dict:
        return {"name": name, "mountPath": path, "readOnly": read_only} | ({"subPath": sub_path} if sub_path else {})

    volumes = [{"name": f"root-{r.name}"} | (r.source or {"hostPath": {"path": r.host_path, "type": "Directory"}})
               for r in settings.roots]
    volumes.append({"name": "state"} | (settings.state_source or {"hostPath": {"path": settings.state_dir,
                                                                               "type": "Directory"}}))
    session_mounts = [mount(f"root-{r.name}", r.path, not r.writable, r.sub_path) for r in settings.roots]
    for index, extra in enumerate(settings.extra_mounts):
        volumes.append({"name": f"mount-{index}"} | (extra.source or {"hostPath": {"path": extra.host_path,
                                                                                    "type": "Directory"}}))
        session_mounts.append(mount(f"mount-{index}", extra.path, True, extra.sub_path))
    session_mounts.append({"name": "state", "mountPath": settings.state_dir})
    if cluster:
        # One Secret holds both files; kubelet writes them 0400 with the pod's fsGroup (group-readable).
        volumes.append({"name": "session", "secret": {"secretName": settings.session_secret, "defaultMode": 0o400,
                                                      "items": [{"key": "secret", "path": "secret"},
                                                                {"key": "hebi.yaml", "path": "hebi.yaml"}]}})
        session_mounts.append({"name": "session", "mountPath": CONFIG_PATH.rsplit("/", 1)[0], "readOnly": True})
    else:
        volumes += [{"name": "config", "hostPath": {"path": settings.config_file, "type": "File"}},
                    {"name": "secret", "hostPath": {"path": settings.secret_file, "type": "File"}}]
        session_mounts += [{"name": "config", "mountPath": CONFIG_PATH, "readOnly": True},
                           {"name": "secret", "mountPath": SECRET_PATH, "readOnly": True}]
    env = session_environment(identity, settings.state_dir, CONFIG_PATH, secret_file=SECRET_PATH, isolated=True)
    name = pod_name(settings.instance, identity.user)
    containers = []
    for part in spec.parts:
        tmp = scratch_volume(name, part.name)
        volumes.append({"name": tmp, "emptyDir": {}})
        mounts = [{"name": tmp, "mountPath": TMP}]
        container = {"name": part.name, "image": settings.images[part.image],
                     "imagePullPolicy": settings.pull_policy}
        if part.app:
            container["command"] = part.command(f"{address}:{part.port}")
            part_env = dict(env, HOME=TMP, **dict(part.env))
        else:
            part_env = spec.web_environment(address, settings.body_timeout)
        if part.session_files:
            mounts = session_mounts + mounts
        env_list = [{"name": k, "value": v} for k, v in sorted(part_env.items())]
        if cluster:
            # First, so that later values and the command can name it: Kubernetes expands $(POD_IP) only
            # from variables defined before.
            env_list.insert(0, {"name": POD_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        # Kubernetes' kubelet probes this; podman runs no probes, so the launcher probes the session.
        probe = {"port": part.port} if cluster else {"host": settings.address, "port": part.port}
        containers.append(container | {
            "env": env_list,
            "volumeMounts": mounts,
            "readinessProbe": {"tcpSocket": probe, "periodSeconds": 2},
            "resources": settings.part_resources.get(part.name) or {
                "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
                "requests": {"cpu": "50m", "memory": "64Mi"}},
            "securityContext": {
                "runAsUser": identity.uid, "runAsGroup": gid, "runAsNonRoot": True,
                "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]}},
        })
    security = {"runAsUser": identity.uid, "runAsGroup": gid, "fsGroup": gid,
                "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    if settings.supplemental_groups:
        security["supplementalGroups"] = sorted(set(settings.supplemental_groups))
    pod_spec = {
        # On one machine the session's servers listen on the pod's own loopback address: no bridge
        # network at all. In a cluster the pod has its own IP.
        "hostNetwork": not cluster,
        "restartPolicy": "Always",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": security,
        "containers": containers,
        "volumes": volumes,
    }
    if settings.node_selector:
        pod_spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in settings.tolerations]
    if settings.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in settings.image_pull_secrets]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name,
                     "labels": labels(settings.instance, identity.user) | settings.extra_labels,
                     "annotations": {USER_ANNOTATION: identity.user} | settings.extra_annotations},
        "spec": pod_spec,
    }


def make_secret(instance: str, user: str, secret: str, config_yaml: str) -> dict:
    """The session's secret and its configuration (which may hold other secrets, so not a ConfigMap)."""
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata(instance, user),
            "data": {"secret": b64(secret), "hebi.yaml": b64(config_yaml)}}


def owned_by(pod: dict) -> list[dict]:
    """ownerReferences to a created Pod, so that deleting the Pod deletes what it owns."""
    return [{"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}]


def make_service(instance: str, user: str, pod: dict, port: int) -> dict:
    """A ClusterIP Service for the session's router, owned by its Pod."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": metadata(instance, user, ownerReferences=owned_by(pod)),
            "spec": {"type": "ClusterIP", "selector": labels(instance, user),
                     "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]}}


def make_network_policy(instance: str, user: str, gateway_labels: dict[str, str], port: int) -> dict:
    """Only the gateway's pods reach the session, and only on its router's port."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata(instance, user),
            "spec": {"podSelector": {"matchLabels": labels(instance, user)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": dict(gateway_labels)}}],
                                  "ports": [{"protocol": "TCP", "port": port}]}]}}


def make_pvc(instance: str, user: str, size: str, access_modes: list[str], storage_class: str = "") -> dict:
    """The user's own claim for the session's state, kept across sessions."""
    spec = {"accessModes": list(access_modes), "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata(instance, user), "spec": spec}
