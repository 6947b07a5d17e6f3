"""The ``kubernetes`` launcher: each user's session as a Pod through the Kubernetes API.

Per user, in ``launcher.kubernetes.namespace``: a Secret (the session secret and its configuration), the
Pod (objects.make_pod in cluster mode: its own IP, bound through ``$(POD_IP)``), a ClusterIP Service
owned by the Pod, a NetworkPolicy that lets only the gateway's pods in, and optionally the user's PVC
(kept across sessions). Every object carries the installation's labels and the raw user name, so a new
gateway finds every session again from the API alone: no record, no timer.

What the launcher knows of pods comes from one SessionInformer (list + watch, informer.py); start()
waits on it and reads the start's progress and its failures from the pod's own status and events. The
API calls are exactly those kubernetes/deploy's Role grants (docs/admin.md, Kubernetes launcher).
"""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import urllib3
import yaml

from hebi_common.atomic import atomic_write
from hebi_common.config import HebiConfig, KubeProfileConfig
from hebi_common.identity import Identity, check_username, sign_identity
from hebi_common.kube import NoCluster, connect
from hebi_common.session import StateFolderError, session_state_dir

from .base import STEPS, Launcher, LauncherError, Profile, Progress, SessionInfo
from .informer import Event, Gone, SessionInformer, Stalled, timestamp
from .objects import (
    APP_LABEL,
    INSTANCE_LABEL,
    PROFILE_ANNOTATION,
    USER_ANNOTATION,
    MountedRoot,
    PodSettings,
    make_network_policy,
    make_pod,
    make_pvc,
    make_secret,
    make_service,
    pod_name,
    volume_source,
)
from .spec import SESSION, probe

log = logging.getLogger(__name__)

LAST_PROFILES = "last-profiles.json"
#: Waiting reasons of a container whose image cannot be had.
IMAGE_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
#: Where a session's state folder is inside its pod when session.state_dir does not say.
POD_STATE_BASE = "/var/lib/hebi/sessions"
#: Lines of a crashing container's log that its failure shows.
CRASH_LINES = 15


# -- what a pod's status and events say (pure) ---------------------------------------------------------

def _condition(pod: dict, kind: str) -> dict:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def _latest(events: list[Event], *reasons: str) -> Event | None:
    found = [e for e in events if e.reason in reasons]
    return max(found, key=lambda e: e.at) if found else None


def is_ready(pod: dict) -> bool:
    return _condition(pod, "Ready").get("status") == "True" and bool((pod.get("status") or {}).get("podIP"))


def failure_of(pod: dict, events: list[Event]) -> tuple[str, str, str] | None:
    """Why the pod cannot serve, from its own status and events: (reason, container, message), or None
    while it may still come up."""
    status = pod.get("status") or {}
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        event = _latest(events, "FailedScheduling")
        message = scheduled.get("message") or (event.message if event else "no node can run it")
        return "Unschedulable", "", f"the session cannot be scheduled: {message}"
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason, name = waiting.get("reason", ""), container.get("name", "")
        if reason in IMAGE_REASONS:
            image = container.get("image", "")
            detail = waiting.get("message") or (_latest(events, "Failed").message if _latest(events, "Failed") else "")
            # ErrImageNeverPull: the image is not on the node and the pull policy (Never) forbids fetching it.
            why = "is not on the node and may not be pulled" if reason == "ErrImageNeverPull" else "cannot be pulled"
            return reason, name, f"the image {image} of the session's {name} {why} ({reason})" + (
                f": {detail}" if detail else "")
        if reason == "CrashLoopBackOff":
            ended = (container.get("lastState") or {}).get("terminated") or {}
            code = ended.get("exitCode")
            return reason, name, f"the session's {name} keeps stopping (CrashLoopBackOff" + (
                f", exit code {code}" if code is not None else "") + ")"
        if reason in ("CreateContainerConfigError", "CreateContainerError", "RunContainerError"):
            return reason, name, f"the session's {name} cannot be created ({reason}): {waiting.get('message', '')}"
    if status.get("phase") in ("Failed", "Succeeded"):
        return status.get("reason") or "Failed", "", f"the session's pod ended: {status.get('message') or status.get('phase')}"
    return None


def progress_of(pod: dict, events: list[Event]) -> list[Progress]:
    """The steps a pod's start has reached, oldest step first, each at the time it was first reached."""
    created = timestamp(pod["metadata"].get("creationTimestamp"))
    reached: dict[str, Progress] = {"requested": Progress("requested", "session requested", created)}

    def reach(step: str, message: str, at: float) -> None:
        first = reached.get(step)
        reached[step] = Progress(step, message, min(at, first.at) if first else at)  # type: ignore[arg-type]

    scheduled = _condition(pod, "PodScheduled")
    for reason, step in (("Scheduled", "scheduled"), ("Pulling", "pulling"), ("Pulled", "pulled"), ("Started", "started")):
        for event in sorted((e for e in events if e.reason == reason), key=lambda e: e.at):
            reach(step, event.message, event.at)
    if scheduled.get("status") == "True" and "scheduled" not in reached:
        reach("scheduled", "scheduled", timestamp(scheduled.get("lastTransitionTime")) or created)
    if is_ready(pod):
        ready = _condition(pod, "Ready")
        reach("ready", "session ready", timestamp(ready.get("lastTransitionTime")) or created)
    failed = failure_of(pod, events)
    if failed:
        reach("failed", failed[2], time.time())
    return [reached[s] for s in STEPS if s in reached]


# -- the launcher -----------------------------------------------------------------------------------

class KubernetesLauncher(Launcher):
    name = "kubernetes"

    def __init__(self, config: HebiConfig, config_path: str | None = None):
        self.config = config
        self.settings = config.launcher.kubernetes
        self.instance = self.settings.instance
        self._lock = threading.Lock()
        self._informer: SessionInformer | None = None
        self._api = None
        self.namespace = ""
        #: (pod uid, secret) per pod name: the secret changes only with a new pod.
        self._secrets: dict[str, tuple[str, str]] = {}
        #: The watch answers being read, so close() can end them.
        self._watching: set = set()
        #: The progress of a start that failed (its pod is removed), until the next start.
        self._failed: dict[str, list[Progress]] = {}

    # -- the API ------------------------------------------------------------------------------------

    def _client(self):
        if self._api is None:
            try:
                api, self.namespace = connect(self.settings.kubeconfig, self.settings.context, self.settings.namespace)
            except NoCluster as err:
                raise LauncherError("the kubernetes launcher has no cluster: set launcher.kubernetes.kubeconfig, or run "
                                    f"the gateway in a cluster with a ServiceAccount ({err})") from None
            from kubernetes import client
            self._api = (client.CoreV1Api(api), client.NetworkingV1Api(api))
        return self._api

    def _call(self, method: str, *args, api: int = 0, tries: int = 4, **kwargs) -> dict:
        """One API call, its answer as JSON. 5xx answers and lost connections are tried again; other
        errors raise ApiError with the server's status."""
        from kubernetes.client.exceptions import ApiException
        target = getattr(self._client()[api], method)
        delay = 0.2
        for attempt in range(tries):
            try:
                answer = target(*args, _preload_content=False, _request_timeout=(10, 30), **kwargs)
                data = answer.data
                return json.loads(data) if data and method != "read_namespaced_pod_log" else {"text": data.decode(
                    errors="replace")} if method == "read_namespaced_pod_log" else {}
            except ApiException as err:
                if err.status < 500 or attempt == tries - 1:
                    raise ApiError(err.status, _message(err)) from None
            except (urllib3.exceptions.HTTPError, OSError) as err:
                if attempt == tries - 1:
                    raise LauncherError(f"the Kubernetes API server cannot be reached: {err}") from None
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _list_all(self, method: str, keep: Callable[[dict], bool] | None = None, **selectors) -> dict:
        """Every object, page by page (a namespace full of events is never one answer), keeping only
        those ``keep`` accepts; the resourceVersion of the list's snapshot."""
        items, token, version = [], None, ""
        while True:
            page = self._call(method, self.namespace, limit=500, _continue=token, **selectors) if token else \
                self._call(method, self.namespace, limit=500, **selectors)
            version = version or page["metadata"]["resourceVersion"]
            items += [i for i in page.get("items") or [] if keep is None or keep(i)]
            token = page["metadata"].get("continue")
            if not token:
                return {"items": items, "metadata": {"resourceVersion": version}}

    def _watch(self, method: str, selectors: dict) -> Callable[[str, float], Iterator[bytes]]:
        from kubernetes.client.exceptions import ApiException

        def watch(version: str, seconds: float) -> Iterator[bytes]:
            try:
                answer = getattr(self._client()[0], method)(
                    self.namespace, watch=True, resource_version=version, allow_watch_bookmarks=True,
                    timeout_seconds=int(seconds), _preload_content=False,
                    # The read timeout is the stall detector: nothing at all for this long ends the watch.
                    _request_timeout=(10, self.settings.stall_timeout), **selectors)
            except ApiException as err:
                if err.status == 410:
                    raise Gone(_message(err)) from None
                raise
            except urllib3.exceptions.ReadTimeoutError:
                raise Stalled(f"no answer to a watch within {self.settings.stall_timeout:.0f} s") from None
            self._watching.add(answer)
            try:
                pending = b""
                for chunk in answer.stream(amt=None, decode_content=False):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    yield from (line for line in lines if line.strip())
                if pending.strip():
                    yield pending
            except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError) as err:
                if "timed out" in str(err) or isinstance(err, urllib3.exceptions.ReadTimeoutError):
                    raise Stalled(f"nothing, not even a bookmark, for {self.settings.stall_timeout:.0f} s") from None
                raise
            finally:
                self._watching.discard(answer)
                answer.release_conn()
        return watch

    def informer(self) -> SessionInformer:
        with self._lock:
            if self._informer is None:
                self._client()
                prefix = f"hebi-{self.instance}-"
                pods = {"label_selector": f"app={APP_LABEL},{INSTANCE_LABEL}={self.instance}"}
                events = {"field_selector": "involvedObject.kind=Pod"}
                informer = SessionInformer(
                    lambda: self._list_all("list_namespaced_pod", **pods), self._watch("list_namespaced_pod", pods),
                    lambda: self._list_all("list_namespaced_event",
                                           lambda e: (e.get("involvedObject") or {}).get("name", "").startswith(prefix),
                                           **events),
                    self._watch("list_namespaced_event", events), pod_prefix=prefix,
                    watch_timeout=self.settings.watch_timeout, stall_timeout=self.settings.stall_timeout,
                    backoff_max=self.settings.backoff_max, events_per_pod=self.settings.events_per_pod)
                if not informer.start(wait=min(30.0, self.config.launcher.start_timeout)):
                    detail = informer.pod_reflector.detail
                    informer.stop()
                    raise LauncherError(f"the Kubernetes API server did not list the session pods: {detail or 'no answer'}")
                self._informer = informer
            return self._informer

    def close(self) -> None:
        if self._informer is not None:
            self._informer.stop(wake=self._end_watches)
            self._informer = None

    def _end_watches(self) -> None:
        for answer in list(self._watching):
            with contextlib.suppress(Exception):  # already ended: nothing to wake
                answer.shutdown()

    # -- the interface ------------------------------------------------------------------------------

    def profiles(self) -> list[Profile]:
        return [Profile(p.name, p.display_name or p.name, p.description, p.default) for p in self.settings.profiles]

    def last_profile(self, user: str) -> str | None:
        chosen = self._last_profiles().get(check_username(user))
        return chosen if chosen in {p.name for p in self.settings.profiles} else None

    def health(self) -> dict:
        try:
            return self.informer().health()
        except LauncherError as err:
            return {"ok": False, "detail": str(err)}

    def start(self, identity: Identity, profile: str | None = None) -> SessionInfo:
        user = self.check_container_start(identity, profile)
        informer = self.informer()
        current = self.status(user)
        if current.state == "running":
            return current
        deadline = time.monotonic() + self.config.launcher.start_timeout
        name = pod_name(self.instance, user)
        existing = informer.pod(name)
        if current.state == "starting" and existing is not None:
            # Started already (by another gateway thread, the CLI, or before a gateway restart): wait for it.
            return self._wait_until_answering(identity, deadline)
        if existing is not None:
            self._remove(user, wait_until=deadline)  # failed, or still being deleted
        chosen = self._choose(user, profile)
        self._failed.pop(user, None)
        informer.forget_events(name)

        secret = secrets.token_urlsafe(32)
        config_yaml = yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False)
        pod = make_pod(SESSION, identity, self._pod_settings(identity, chosen))
        if self.settings.pvc is not None:
            pvc = self.settings.pvc
            self._create("persistent_volume_claim", make_pvc(self.instance, user, pvc.size, pvc.access_modes,
                                                             pvc.storage_class), keep=True)
        self._create("secret", make_secret(self.instance, user, secret, config_yaml))
        try:
            created = self._call("create_namespaced_pod", self.namespace, pod)
        except ApiError as err:
            if err.status != 409:
                self._remove(user)
                raise LauncherError(f"the Kubernetes API refused the session pod of {user}: {err}") from None
            # Created at once by another start: wait for that one.
            return self._wait_until_answering(identity, deadline)
        uid = created["metadata"]["uid"]
        self._secrets[name] = (uid, secret)
        port = SESSION.router.port
        self._create("service", make_service(self.instance, user, created, port))
        self._create("network_policy", make_network_policy(self.instance, user, self.settings.gateway_labels, port), api=1)
        if profile is not None:
            self._remember_profile(user, profile)  # the user's own choice, pre-selected next time
        return self._wait_until_answering(identity, deadline, uid)

    def stop(self, user: str) -> bool:
        return self._remove(check_username(user))

    def status(self, user: str) -> SessionInfo:
        user = check_username(user)
        pod = self.informer().pod(pod_name(self.instance, user))
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return SessionInfo(user=user, state="stopped", backend=self.name)
        return self._info(pod)

    def list(self) -> list[SessionInfo]:
        pods = [p for p in self.informer().all_pods() if not p["metadata"].get("deletionTimestamp")]
        return sorted((self._info(p) for p in pods), key=lambda s: s.user)

    def logs(self, user: str, lines: int = 100) -> str:
        name = pod_name(self.instance, check_username(user))
        parts = []
        if self.informer().pod(name) is None and self._direct_pod(name) is None:
            return f"no logs for {user}: no session pod"
        for part in SESSION.parts:
            try:
                text = self._call("read_namespaced_pod_log", name, self.namespace, container=part.name,
                                  tail_lines=lines)["text"]
            except ApiError as err:
                text = f"(no log: {err})"
            parts.append(f"==> {part.name} <==\n" + text.rstrip())
        return "\n\n".join(parts)

    def progress(self, user: str) -> list[Progress]:
        user = check_username(user)
        name = pod_name(self.instance, user)
        pod = self.informer().pod(name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return list(self._failed.get(user, []))
        return progress_of(pod, self._events(pod))

    # -- the pieces ---------------------------------------------------------------------------------

    def _info(self, pod: dict) -> SessionInfo:
        meta = pod["metadata"]
        user = (meta.get("annotations") or {}).get(USER_ANNOTATION, "")
        base = {"user": user, "backend": self.name, "started_at": timestamp(meta.get("creationTimestamp")) or None}
        failed = failure_of(pod, self._events(pod))
        if failed:
            return SessionInfo(state="failed", detail=f"{failed[2]}; see pod_launcher logs -u {user}", **base)
        if not is_ready(pod):
            steps = progress_of(pod, self._events(pod))
            return SessionInfo(state="starting", detail=steps[-1].message, **base)
        secret = self._secret_of(pod)
        if not secret:
            return SessionInfo(state="failed", detail=f"the Secret {meta['name']} of the session is missing", **base)
        if self.settings.connect == "service":
            host = f"{meta['name']}.{self.namespace}.svc"
        else:
            host = pod["status"]["podIP"]
        profile = (meta.get("annotations") or {}).get(PROFILE_ANNOTATION)
        return SessionInfo(state="running", url=f"http://{host}:{SESSION.router.port}", secret=secret,
                           detail=f"pod {meta['name']} on {pod['status']['podIP']}"
                                  + (f", profile {profile}" if profile else ""), **base)

    def _events(self, pod: dict) -> list[Event]:
        return self.informer().events(pod["metadata"]["name"], pod["metadata"].get("uid", ""))

    def _secret_of(self, pod: dict) -> str:
        name, uid = pod["metadata"]["name"], pod["metadata"].get("uid", "")
        known = self._secrets.get(name)
        if known and known[0] == uid:
            return known[1]
        secret = self._read_secret(name)
        if secret:
            self._secrets[name] = (uid, secret)
        return secret

    def _read_secret(self, name: str) -> str:
        try:
            data = self._call("read_namespaced_secret", name, self.namespace).get("data") or {}
        except ApiError as err:
            if err.status == 404:
                return ""
            raise LauncherError(f"the Secret {name} cannot be read: {err}") from None
        return base64.b64decode(data.get("secret", "")).decode()

    def _create(self, kind: str, body: dict, api: int = 0, keep: bool = False) -> None:
        """Create an object. One of the name left from an earlier session (409) is kept (``keep``: the
        user's PVC) or replaced by this one."""
        name = body["metadata"]["name"]
        for attempt in range(2):
            try:
                self._call(f"create_namespaced_{kind}", self.namespace, body, api=api)
                return
            except ApiError as err:
                if err.status != 409 or keep:
                    if err.status == 409:
                        return
                    raise LauncherError(f"the Kubernetes API refused the {body['kind']} {name}: {err}") from None
                if attempt == 1:
                    raise LauncherError(f"the {body['kind']} {name} of an earlier session is still there: {err}") from None
            try:
                self._call(f"delete_namespaced_{kind}", name, self.namespace, api=api)
            except ApiError as err:
                if err.status != 404:
                    raise LauncherError(f"could not replace the {body['kind']} {name}: {err}") from None

    def _remove(self, user: str, wait_until: float | None = None) -> bool:
        """Delete the user's pod and what belongs to it (the PVC stays); optionally wait until it is gone,
        so a new pod of the same name can be created."""
        name = pod_name(self.instance, user)
        had = self.informer().pod(name) is not None
        for method, api in (("delete_namespaced_pod", 0), ("delete_namespaced_service", 0),
                            ("delete_namespaced_secret", 0), ("delete_namespaced_network_policy", 1)):
            try:
                self._call(method, name, self.namespace, api=api)
            except ApiError as err:
                if err.status != 404:
                    raise LauncherError(f"could not delete {name} ({method.split('_')[-1]}): {err}") from None
                if method == "delete_namespaced_pod":
                    had = False
        self._secrets.pop(name, None)
        while wait_until is not None and time.monotonic() < wait_until:
            try:
                if self._direct_pod(name) is None:
                    break
            except LauncherError:  # the API server is away for a moment: ask again
                pass
            self.informer().wait(0.5)
        return had

    def _choose(self, user: str, profile: str | None) -> KubeProfileConfig | None:
        offered = {p.name: p for p in self.settings.profiles}
        if not offered:
            return None
        name = profile or self.last_profile(user) or next((p.name for p in self.settings.profiles if p.default),
                                                          self.settings.profiles[0].name)
        return offered[name]

    def _last_profiles(self) -> dict[str, str]:
        try:
            return json.loads((Path(self.settings.state_dir) / LAST_PROFILES).read_text())
        except (OSError, ValueError):
            return {}

    def _remember_profile(self, user: str, profile: str) -> None:
        choices = self._last_profiles()
        if choices.get(user) == profile:
            return
        folder = Path(self.settings.state_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            with atomic_write(folder / LAST_PROFILES, 0o600, text=True) as out:
                json.dump(choices | {user: profile}, out)
        except OSError as err:  # the session starts anyway; only the pre-selection is lost
            log.warning("could not remember the profile of %s in %s: %s", user, folder, err)

    def _pod_settings(self, identity: Identity, profile: KubeProfileConfig | None) -> PodSettings:
        user = identity.user
        try:
            state_dir = session_state_dir(self.config, user, identity.home, Path(POD_STATE_BASE) / user)
        except StateFolderError as err:
            raise LauncherError(f"the session of {user} was not started: {err}") from None
        if self.settings.state is not None:
            state_source, _ = volume_source(self.settings.state, identity)
        elif self.settings.pvc is not None:
            state_source = {"persistentVolumeClaim": {"claimName": pod_name(self.instance, user)}}
        else:
            state_source = {"emptyDir": {}}
        roots = []
        for name, root in sorted(self.config.session.roots.items()):
            path = root.path.replace("{user}", user).replace("{home}", identity.home or "")
            configured = self.settings.roots.get(name)
            source, sub_path = volume_source(configured, identity) if configured else (None, "")
            roots.append(MountedRoot(name, path, path, root.writable, source=source, sub_path=sub_path))
        mounts = []
        for path, volume in sorted(self.settings.mounts.items()):
            source, sub_path = volume_source(volume, identity)
            mounts.append(MountedRoot(path.strip("/").replace("/", "-"), path, path, False, source=source,
                                      sub_path=sub_path))
        images = self.settings.images.model_dump()
        resources, annotations, node_selector, tolerations = {}, {}, {}, ()
        if profile is not None:
            images |= profile.images
            annotations[PROFILE_ANNOTATION] = profile.name
            node_selector, tolerations = dict(profile.node_selector), tuple(profile.tolerations)
            if profile.requests or profile.limits:
                resources["api"] = {
                    "limits": {"cpu": self.settings.cpu_limit, "memory": self.settings.memory_limit} | profile.limits,
                    "requests": {"cpu": "50m", "memory": "64Mi"} | profile.requests}
        groups = tuple(int(g) for g in identity.groups if str(g).isdigit())
        return PodSettings(
            instance=self.instance, address="", images=images, roots=tuple(roots), state_dir=str(state_dir),
            config_file="", secret_file="", body_timeout=self.config.gateway.body_idle_timeout,
            cpu_limit=self.settings.cpu_limit, memory_limit=self.settings.memory_limit,
            pull_policy=self.settings.pull_policy, network="cluster", session_secret=pod_name(self.instance, user),
            state_source=state_source, part_resources=resources, node_selector=node_selector, tolerations=tolerations,
            image_pull_secrets=tuple(self.settings.image_pull_secrets), supplemental_groups=groups,
            extra_annotations=annotations, extra_mounts=tuple(mounts))

    def _container_log(self, name: str, container: str, lines: int) -> str | None:
        try:
            return self._call("read_namespaced_pod_log", name, self.namespace, container=container,
                              tail_lines=lines)["text"]
        except (ApiError, LauncherError):
            return None

    def _fail(self, user: str, pod: dict | None, message: str) -> LauncherError:
        """Remove a session that could not start, keeping its progress (ending in the reason) to show."""
        steps = progress_of(pod, self._events(pod)) if pod else []
        steps = [s for s in steps if s.step != "failed"] + [Progress("failed", message, time.time())]
        self._remove(user)
        self._failed[user] = steps
        return LauncherError(message)

    def _wait_until_answering(self, identity: Identity, deadline: float, uid: str = "") -> SessionInfo:
        """Wait for the pod of ``uid`` (any, when not given: the first seen) to serve."""
        user = identity.user
        name = pod_name(self.instance, user)
        informer = self.informer()
        last, expected = "no answer yet", uid
        deleted = f"the session pod of {user} was deleted while it started"

        def ours(pod: dict | None) -> dict | None:
            return pod if pod is not None and (not expected or pod["metadata"].get("uid") == expected) else None

        while time.monotonic() < deadline:
            pod = ours(informer.pod(name))
            if pod is None:
                # The watch may be behind (reconnecting, or still showing the pod before this one): the API
                # server knows.
                try:
                    found = self._direct_pod(name)
                except LauncherError:  # the API server is away (restarting): ask again
                    informer.wait(0.5)
                    continue
                pod = ours(found)
                if pod is None:
                    if expected:  # the pod this start made is no longer there, or another replaced it
                        raise self._fail(user, None, deleted)
                    informer.wait(0.5)
                    continue
            if pod["metadata"].get("deletionTimestamp"):
                raise self._fail(user, pod, deleted)
            expected = pod["metadata"].get("uid", "")
            failed = failure_of(pod, self._events(pod))
            if failed:
                reason, container, message = failed
                if reason == "CrashLoopBackOff":
                    tail = self._container_log(name, container, CRASH_LINES) or "(no log)"
                    message += f"; its last lines:\n{tail.rstrip()}"
                raise self._fail(user, pod, message)
            if is_ready(pod):
                info = self._info(pod)
                address, port = info.url.removeprefix("http://").rsplit(":", 1)
                try:
                    header = sign_identity(identity, info.secret)
                    answers = [(path, probe(address, int(port), path, header)) for path in SESSION.readiness_paths]
                    failing = [f"{path}: {answer}" for path, answer in answers if answer != "HTTP 200"]
                    if not failing:
                        return info
                    last = failing[0]
                except OSError as err:
                    last = str(err)
                time.sleep(0.1)
            else:
                informer.wait(0.5)
        pod = ours(informer.pod(name))
        steps = progress_of(pod, self._events(pod)) if pod else []
        reached = steps[-1].message if steps else "no pod"
        tail = self.logs(user, CRASH_LINES) if pod else ""
        raise self._fail(user, pod, f"the session of {user} did not start within {self.config.launcher.start_timeout:.0f} s "
                                    f"(last step: {reached}; {last})" + (f"\n{tail}" if tail else ""))

    def _direct_pod(self, name: str) -> dict | None:
        try:
            return self._call("read_namespaced_pod", name, self.namespace)
        except ApiError as err:
            if err.status == 404:
                return None
            raise LauncherError(f"the pod {name} cannot be read: {err}") from None


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def _message(err) -> str:
    try:
        return json.loads(err.body).get("message", "") or err.reason
    except (TypeError, ValueError, AttributeError):
        return str(err.reason)

