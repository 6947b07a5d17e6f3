"""The fake's etcd and watch cache: every object of every type, one global resourceVersion counter, a
bounded history of changes per type (older resourceVersions are 410 Gone, as in the real watch cache),
the watchers, graceful deletion, finalizers and the garbage collector of ownerReferences.

Everything here runs on the FakeCluster's event loop thread; nothing blocks.
"""
from __future__ import annotations

import asyncio
import copy
import datetime
import random
import string
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import jsonpatch

from . import resources
from .errors import ApiError, already_exists, bad_request, conflict, gone, not_found
from .resources import RESOURCES, ResourceType
from .selectors import Predicate

Key = tuple[str, str]  # (namespace, name)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (strategic merge patches are applied this way too: lists are replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class Change:
    rv: int
    type: str  # ADDED MODIFIED DELETED
    obj: dict
    old: dict | None


@dataclass(eq=False)
class Watcher:
    rtype: ResourceType
    namespace: str | None
    match: Predicate
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    #: Set by faults: a stalled stream sends nothing again, ever (a dead connection never recovers).
    stalled: bool = False

    def offer(self, change: Change) -> None:
        ns = change.obj["metadata"].get("namespace")
        if self.namespace is not None and ns != self.namespace:
            return
        event = translate(change, self.match)
        if event is not None:
            self.queue.put_nowait(event)

    def close(self) -> None:
        self.queue.put_nowait(None)


def translate(change: Change, match: Predicate) -> tuple[str, dict] | None:
    """A change as a filtered watch sees it: an object entering the selection is ADDED, leaving it DELETED."""
    new = match(change.obj)
    old = change.old is not None and match(change.old)
    if change.type == "MODIFIED":
        if new and old:
            return ("MODIFIED", change.obj)
        if new:
            return ("ADDED", change.obj)
        if old:
            return ("DELETED", change.obj)
        return None
    return (change.type, change.obj) if new else None


class Store:
    def __init__(self, namespaces: set[str], kubernetes_version: str, history: int = 500):
        self.namespaces = set(namespaces)
        self.kubernetes_version = kubernetes_version
        self.history_size = history
        #: Like etcd's revision, never 0 (which a client sends to mean "any version").
        self.rv = 1000
        self.objects: dict[tuple[str, str], dict[Key, dict]] = {k: {} for k in RESOURCES}
        self.history: dict[tuple[str, str], deque[Change]] = {k: deque() for k in RESOURCES}
        #: Per type: events after this resourceVersion are all in the history; older ones are 410.
        self.oldest: dict[tuple[str, str], int] = {k: self.rv for k in RESOURCES}
        self.watchers: set[Watcher] = set()
        #: In-process controllers (the kubelet): called with (rtype, change) after every change.
        self.listeners: list[Callable[[ResourceType, Change], None]] = []
        self.gc_delay = 0.05
        self._service_ips = 0

    # -- reading ---------------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict:
        found = self.objects[rtype.key].get((namespace, name))
        if found is None:
            raise not_found(rtype.plural, name)
        return copy.deepcopy(found)

    def find(self, rtype: ResourceType, namespace: str, name: str) -> dict | None:
        found = self.objects[rtype.key].get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(self, rtype: ResourceType, namespace: str | None, match: Predicate) -> list[dict]:
        items = [obj for (ns, _), obj in sorted(self.objects[rtype.key].items())
                 if (namespace is None or ns == namespace) and match(obj)]
        return copy.deepcopy(items)

    def check_resource_version(self, rtype: ResourceType, rv: str | None) -> int | None:
        """A watch's starting point: None (send the current state first) or the integer; 410 when older
        than the history window."""
        if rv in (None, "", "0"):
            return None
        try:
            start = int(rv)
        except ValueError:
            raise bad_request(f'invalid resource version "{rv}"') from None
        if start < self.oldest[rtype.key]:
            raise gone(f"too old resource version: {start} ({self.oldest[rtype.key] + 1})")
        return start

    def replay(self, rtype: ResourceType, since: int) -> list[Change]:
        return [c for c in self.history[rtype.key] if c.rv > since]

    # -- writing ---------------------------------------------------------------------------------------

    def _commit(self, rtype: ResourceType, kind: str, obj: dict, old: dict | None) -> dict:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if kind == "DELETED":
            self.objects[rtype.key].pop(key, None)
        else:
            self.objects[rtype.key][key] = obj
        change = Change(self.rv, kind, copy.deepcopy(obj), copy.deepcopy(old) if old is not None else None)
        history = self.history[rtype.key]
        history.append(change)
        while len(history) > self.history_size:
            self.oldest[rtype.key] = history.popleft().rv
        for watcher in list(self.watchers):
            if watcher.rtype is rtype:
                watcher.offer(change)
        for listener in self.listeners:
            listener(rtype, change)
        return copy.deepcopy(obj)

    def compact(self) -> None:
        """Forget every change so far: any older resourceVersion is now 410 (etcd compaction, or a
        restarted API server's empty watch cache)."""
        for key in RESOURCES:
            self.history[key].clear()
            self.oldest[key] = self.rv

    def _service_ip(self) -> str:
        # No kube-proxy: a ClusterIP is only data. It is on loopback so nothing ever leaves the machine.
        self._service_ips += 1
        return f"127.1.{self._service_ips // 250}.{self._service_ips % 250 + 1}"

    def _prepare(self, rtype: ResourceType, namespace: str, body: dict) -> dict:
        if not isinstance(body, dict):
            raise bad_request(f"{rtype.kind} in version \"{rtype.version}\" cannot be handled as a {rtype.kind}")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion", rtype.api_version) != rtype.api_version or obj.get("kind", rtype.kind) != rtype.kind:
            raise bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API "
                              f"version ({rtype.api_version})" if obj.get("kind", rtype.kind) == rtype.kind
                              else f"{obj.get('kind')} in version \"{rtype.version}\" cannot be handled as a {rtype.kind}")
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        meta = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = meta
        if meta.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
        resources.decode_secret(rtype, obj)
        return obj

    def create(self, rtype: ResourceType, namespace: str, body: dict, *, validate: bool = True) -> dict:
        if namespace not in self.namespaces:
            raise not_found("namespaces", namespace)
        obj = self._prepare(rtype, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                             "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(server_field, None)
        resources.default(rtype, obj, self._service_ip)
        if rtype.has_status or rtype.kind == "Pod":
            obj.pop("status", None)
            status = resources.initial_status(rtype, obj)
            if status is not None:
                obj["status"] = status
        if validate:
            resources.validate(rtype, obj, self.kubernetes_version)
        if (namespace, meta["name"]) in self.objects[rtype.key]:
            raise already_exists(rtype.plural, meta["name"])
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["generation"] = 1
        if rtype.kind == "Job":
            resources.job_selector(obj)
        return self._commit(rtype, "ADDED", obj, None)

    def create_cluster_object(self, rtype: ResourceType, body: dict) -> dict:
        """An object of a cluster-scoped type (a Node, registered by its kubelet): no namespace."""
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        meta = obj.setdefault("metadata", {})
        if ("", meta["name"]) in self.objects[rtype.key]:
            raise already_exists(rtype.plural, meta["name"])
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        return self._commit(rtype, "ADDED", obj, None)

    def update(self, rtype: ResourceType, namespace: str, name: str, body: dict, *, subresource: str = "",
               validate: bool = True) -> dict:
        current = self.objects[rtype.key].get((namespace, name))
        if current is None:
            raise not_found(rtype.plural, name)
        obj = self._prepare(rtype, namespace, body)
        meta = obj["metadata"]
        if meta.get("name", name) != name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        wanted = meta.get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, name)
        meta["name"] = name
        if subresource == "status":
            # Only the status changes through /status; everything else through the main resource.
            obj = copy.deepcopy(current) | {"status": obj.get("status", {})}
        elif rtype.has_status:
            obj["status"] = copy.deepcopy(current.get("status"))
            if obj["status"] is None:
                obj.pop("status")
        for kept in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if kept in current["metadata"]:
                obj["metadata"][kept] = current["metadata"][kept]
            else:
                obj["metadata"].pop(kept, None)
        if rtype.kind == "Pod":
            resources.default(rtype, obj, self._service_ip)
            resources.check_pod_update(current, obj)
        elif rtype.kind == "Job":
            resources.default(rtype, obj, self._service_ip)
            resources.check_job_update(current, obj)
        elif rtype.kind == "Service":
            obj.setdefault("spec", {}).setdefault("clusterIP", current.get("spec", {}).get("clusterIP"))
            resources.default(rtype, obj, self._service_ip)
        else:
            resources.default(rtype, obj, self._service_ip)
        if validate:
            resources.validate(rtype, obj, self.kubernetes_version)
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if obj == current:
            return copy.deepcopy(current)  # a no-op write changes nothing, not even the resourceVersion
        if _spec(obj) != _spec(current):
            obj["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers") \
                and not self._waits_for_kubelet(rtype, obj):
            return self._remove(rtype, obj)
        return self._commit(rtype, "MODIFIED", obj, current)

    def internal_update(self, rtype: ResourceType, namespace: str, name: str, change: Callable[[dict], None], *,
                        uid: str | None = None) -> dict | None:
        """A controller's write (the scheduler's binding, the kubelet's status): ``change`` edits a copy of
        the object in place. Nothing when the object is gone (or is another one of the same name)."""
        current = self.objects[rtype.key].get((namespace, name))
        if current is None or (uid is not None and current["metadata"]["uid"] != uid):
            return None
        obj = copy.deepcopy(current)
        change(obj)
        if obj == current:
            return copy.deepcopy(current)
        return self._commit(rtype, "MODIFIED", obj, current)

    def patch(self, rtype: ResourceType, namespace: str, name: str, content_type: str, patch, *,
              subresource: str = "") -> dict:
        current = self.get(rtype, namespace, name)
        if content_type == "application/json-patch+json":
            try:
                patched = jsonpatch.apply_patch(current, patch)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
                raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {err}",
                               {"name": name, "kind": rtype.plural}) from None
            except (TypeError, ValueError, KeyError, IndexError) as err:
                raise bad_request(f"invalid JSON patch: {err}") from None
        elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(patch, dict):
                raise bad_request("a merge patch must be a JSON object")
            patched = merge_patch(current, patch)
        else:
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                           "media types include: application/json-patch+json, application/merge-patch+json, "
                           "application/strategic-merge-patch+json")
        if not isinstance(patched, dict):
            raise bad_request("the patch does not give an object")
        # A patch names a resourceVersion only to make itself conditional; otherwise it applies to the latest.
        wanted = (patched.get("metadata") or {}).get("resourceVersion")
        if wanted in (None, current["metadata"]["resourceVersion"]):
            patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.update(rtype, namespace, name, patched, subresource=subresource)

    def delete(self, rtype: ResourceType, namespace: str, name: str, *, grace: int | None = None,
               propagation: str = "Background", preconditions: dict | None = None) -> dict:
        current = self.objects[rtype.key].get((namespace, name))
        if current is None:
            raise not_found(rtype.plural, name)
        meta = current["metadata"]
        for what, wanted in (preconditions or {}).items():
            key = {"uid": "uid", "resourceVersion": "resourceVersion"}.get(what)
            if key and wanted and wanted != meta.get(key):
                raise ApiError(409, "Conflict", f"Precondition failed: {what} in precondition: {wanted}, "
                               f"{what} in object meta: {meta.get(key)}", {"name": name, "kind": rtype.plural})
        obj = copy.deepcopy(current)
        if propagation == "Orphan":
            obj["metadata"]["_orphan"] = True  # read back by _collect; never stored
        graceful = self._waits_for_kubelet(rtype, obj)
        if grace is None:
            grace = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30) if rtype.kind == "Pod" else 0
        if graceful and grace > 0:
            if "deletionTimestamp" in meta:
                return copy.deepcopy(current)
            at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace)
            obj["metadata"]["deletionTimestamp"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            obj["metadata"]["deletionGracePeriodSeconds"] = grace
            obj["metadata"].pop("_orphan", None)
            return self._commit(rtype, "MODIFIED", obj, current)
        if meta.get("finalizers"):
            if "deletionTimestamp" not in meta:
                obj["metadata"]["deletionTimestamp"] = now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                obj["metadata"].pop("_orphan", None)
                return self._commit(rtype, "MODIFIED", obj, current)
            return copy.deepcopy(current)
        return self._remove(rtype, obj)

    def _waits_for_kubelet(self, rtype: ResourceType, obj: dict) -> bool:
        """A pod on a node that has not finished is deleted by its kubelet, once it stopped it."""
        return (rtype.kind == "Pod" and bool(obj.get("spec", {}).get("nodeName"))
                and obj.get("status", {}).get("phase") not in ("Succeeded", "Failed"))

    def finish_deletion(self, rtype: ResourceType, namespace: str, name: str) -> None:
        """The kubelet stopped the pod: it is removed now (its DELETED event)."""
        current = self.objects[rtype.key].get((namespace, name))
        if current is not None:
            self._remove(rtype, copy.deepcopy(current))

    def _remove(self, rtype: ResourceType, obj: dict) -> dict:
        orphan = obj["metadata"].pop("_orphan", False)
        removed = self._commit(rtype, "DELETED", obj, None)
        uid = obj["metadata"]["uid"]
        try:
            loop = asyncio.get_running_loop()
            loop.call_later(self.gc_delay, self._collect, obj["metadata"]["namespace"], uid, orphan)
        except RuntimeError:
            self._collect(obj["metadata"]["namespace"], uid, orphan)
        return removed

    def _collect(self, namespace: str, uid: str, orphan: bool) -> None:
        """The garbage collector: dependents whose owners are all gone are deleted (Background), or lose
        the reference (Orphan). Asynchronous, as in a real cluster."""
        alive = {o["metadata"]["uid"] for objects in self.objects.values() for o in objects.values()}
        for key, objects in self.objects.items():
            rtype = RESOURCES[key]
            for (ns, name), obj in list(objects.items()):
                owners = obj["metadata"].get("ownerReferences") or []
                if ns != namespace or not any(o.get("uid") == uid for o in owners):
                    continue
                try:
                    if orphan:
                        kept = [o for o in owners if o.get("uid") != uid]
                        self.patch(rtype, ns, name, "application/merge-patch+json",
                                   {"metadata": {"ownerReferences": kept or None}})
                    elif not any(o.get("uid") in alive for o in owners):
                        self.delete(rtype, ns, name)
                except ApiError:
                    pass  # gone meanwhile


def _spec(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
