"""Kubernetes objects of a session, as pure functions: (contract, identity, settings) -> manifest dict.

The same Pod runs under ``podman kube play`` on one machine and will be sent to a Kubernetes API server
by the kubernetes launcher. Nothing here touches the system; tests check the dicts and validate them
against Kubernetes' schema.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from hebi_common.identity import Identity

from .spec import CONFIG_PATH, SECRET_PATH, TMP, SessionSpec, session_environment

APP_LABEL = "hebi"
USER_LABEL = "hebi/user"
INSTANCE_LABEL = "hebi/instance"
USER_ANNOTATION = "hebi/user-name"


@dataclass(frozen=True)
class MountedRoot:
    name: str
    #: Where the configuration names it (and where it appears in the pod) and the folder it really is.
    path: str
    host_path: str
    writable: bool


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


def safe_name(user: str) -> str:
    """A user name as a DNS label and label value (user names may hold '_', which neither allows)."""
    safe = re.sub(r"[^a-z0-9-]", "-", user).strip("-") or "user"
    return safe if safe == user else f"{safe}-{hashlib.sha256(user.encode()).hexdigest()[:6]}"


def pod_name(instance: str, user: str) -> str:
    return f"hebi-{instance}-{safe_name(user)}"


def labels(instance: str, user: str) -> dict[str, str]:
    return {"app": APP_LABEL, INSTANCE_LABEL: instance, USER_LABEL: safe_name(user)}


def scratch_volume(pod: str, part: str) -> str:
    """The name of a part's emptyDir (its /tmp). Unique to the pod: podman 4.3 makes an emptyDir a named
    volume of this name, which every pod naming it alike would share."""
    return f"tmp-{part}-{hashlib.sha256(pod.encode()).hexdigest()[:10]}"


def scratch_volumes(pod: dict) -> list[str]:
    return [v["name"] for v in pod["spec"]["volumes"] if "emptyDir" in v]


def make_pod(spec: SessionSpec, identity: Identity, settings: PodSettings) -> dict:
    if identity.uid is None:
        raise ValueError(f"{identity.user} has no uid: a session in a container runs as its account's uid")
    gid = identity.uid if identity.gid is None else identity.gid
    volumes = [{"name": f"root-{r.name}", "hostPath": {"path": r.host_path, "type": "Directory"}}
               for r in settings.roots]
    volumes += [{"name": "state", "hostPath": {"path": settings.state_dir, "type": "Directory"}},
                {"name": "config", "hostPath": {"path": settings.config_file, "type": "File"}},
                {"name": "secret", "hostPath": {"path": settings.secret_file, "type": "File"}}]
    session_mounts = [{"name": f"root-{r.name}", "mountPath": r.path, "readOnly": not r.writable}
                      for r in settings.roots]
    session_mounts += [{"name": "state", "mountPath": settings.state_dir},
                       {"name": "config", "mountPath": CONFIG_PATH, "readOnly": True},
                       {"name": "secret", "mountPath": SECRET_PATH, "readOnly": True}]
    env = session_environment(identity, settings.state_dir, CONFIG_PATH, secret_file=SECRET_PATH)
    name = pod_name(settings.instance, identity.user)
    containers = []
    for part in spec.parts:
        tmp = scratch_volume(name, part.name)
        volumes.append({"name": tmp, "emptyDir": {}})
        mounts = [{"name": tmp, "mountPath": TMP}]
        container = {"name": part.name, "image": settings.images[part.image],
                     "imagePullPolicy": settings.pull_policy}
        if part.app:
            container["command"] = part.command(f"{settings.address}:{part.port}")
            part_env = dict(env, HOME=TMP)
        else:
            part_env = spec.web_environment(settings.address, settings.body_timeout)
        if part.session_files:
            mounts = session_mounts + mounts
        containers.append(container | {
            "env": [{"name": k, "value": v} for k, v in sorted(part_env.items())],
            "volumeMounts": mounts,
            # Kubernetes' kubelet probes this; podman runs no probes, so the launcher probes the session.
            "readinessProbe": {"tcpSocket": {"host": settings.address, "port": part.port},
                               "periodSeconds": 2},
            "resources": {"limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
                          "requests": {"cpu": "50m", "memory": "64Mi"}},
            "securityContext": {
                "runAsUser": identity.uid, "runAsGroup": gid, "runAsNonRoot": True,
                "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]}},
        })
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name,
                     "labels": labels(settings.instance, identity.user) | settings.extra_labels,
                     "annotations": {USER_ANNOTATION: identity.user}},
        "spec": {
            # The session's servers listen on the pod's own loopback address: no bridge network at all.
            "hostNetwork": True,
            "restartPolicy": "Always",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"runAsUser": identity.uid, "runAsGroup": gid, "fsGroup": gid,
                                "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": containers,
            "volumes": volumes,
        },
    }
